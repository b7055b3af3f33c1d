//! For tests only (feature `test-support`): damage a stopped log on purpose,
//! so that tests can prove that verification finds it.

use std::path::Path;

use crate::StoreError;
use crate::{blocks, keys};

/// Flips one byte in the middle of the record at `position` of the stopped
/// log in `path` (the server's `DATA_DIR/log`).
pub fn corrupt_record(path: &Path, position: u64) -> Result<(), StoreError> {
    let db = ::sled::open(path)?;
    let tree = db.open_tree("log")?;
    let no_record = || StoreError::Corrupt(format!("no record at position {position}"));
    let block = blocks::block_at(&tree, position)?.ok_or_else(no_record)?;
    // The record's bytes are a slice of the stored value: flip its middle byte.
    let record = block.get(position)?.ok_or_else(no_record)?;
    let offset = record.as_ptr() as usize - block.value().as_ptr() as usize + record.len() / 2;
    let mut bytes = block.value().to_vec();
    bytes[offset] ^= 0x5a;
    tree.insert(keys::event_key(block.first()), bytes)?;
    db.flush()?;
    Ok(())
}
