//! For tests only (feature `test-support`): damage a stopped log on purpose,
//! so that tests can prove that verification finds it.

use std::path::Path;

use crate::StoreError;
use crate::keys;

/// Flips one byte in the middle of the record at `position` of the stopped
/// log in `path` (the server's `DATA_DIR/log`).
pub fn corrupt_record(path: &Path, position: u64) -> Result<(), StoreError> {
    let db = ::sled::open(path)?;
    let tree = db.open_tree("log")?;
    let key = keys::event_key(position);
    let mut bytes = tree
        .get(key)?
        .ok_or_else(|| StoreError::Corrupt(format!("no record at position {position}")))?
        .to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    tree.insert(key, bytes)?;
    db.flush()?;
    Ok(())
}
