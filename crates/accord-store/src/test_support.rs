//! For tests only (feature `test-support`): damage a stopped log on purpose,
//! so that tests can prove that verification finds it.

use std::path::Path;

use crate::{CheckpointKeys, StoreError};

/// The signing key of tests that open logs in process: fixed, so that a
/// test can reopen what it wrote.
pub fn test_keys() -> CheckpointKeys {
    CheckpointKeys::new([0x42; 32], [])
}
use crate::tree::index::runs::{self, Manifest, command_hash};
use crate::tree::{blocks, keys};

/// Opens the stopped log in `path` for surgery. No background flusher, so
/// that dropping `db` releases the directory almost at once; "almost":
/// sled's I/O threads let go of the directory's lock a moment after the
/// last handle is dropped, so a second surgery right after a first one
/// waits for it (up to 10 s) instead of failing.
pub(crate) fn open_log(path: &Path) -> Result<(::sled::Db, ::sled::Tree), StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let db = loop {
        match ::sled::Config::new().path(path).flush_every_ms(None).open() {
            Err(::sled::Error::Io(error))
                if (error.kind() == std::io::ErrorKind::WouldBlock
                    || error.to_string().contains("could not acquire lock"))
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            opened => break opened?,
        }
    };
    let tree = db.open_tree("log")?;
    Ok((db, tree))
}

/// Flips one byte in the middle of the record at `position` of the stopped
/// log in `path` (the server's `DATA_DIR/log`).
pub fn corrupt_record(path: &Path, position: u64) -> Result<(), StoreError> {
    let (db, tree) = open_log(path)?;
    let no_record = || StoreError::Corrupt(format!("no record at position {position}"));
    let block = blocks::block_at(&tree, position)?.ok_or_else(no_record)?;
    // Rewrite the block holding it with that record's middle byte flipped.
    let mut packer = blocks::BlockPacker::default();
    let mut found = false;
    for entry in block.records() {
        let (at, record) = entry?;
        let mut bytes = record.to_vec();
        if at == position {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x5a;
            found = true;
        }
        packer.push(at, &bytes);
    }
    if !found {
        return Err(no_record());
    }
    for (first, value) in packer.finish() {
        tree.insert(keys::event_key(first), value)?;
    }
    db.flush()?;
    Ok(())
}

/// The stored signed checkpoint of the stopped log in `path`, as bytes.
pub fn stored_checkpoint(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let (_db, tree) = open_log(path)?;
    Ok(tree.get(keys::CHECKPOINT)?.map(|value| value.to_vec()))
}

/// Replaces (or with `None` removes) the stored signed checkpoint of the
/// stopped log in `path`, as a forger with write access to the data
/// directory but without the key could.
pub fn replace_checkpoint(path: &Path, checkpoint: Option<&[u8]>) -> Result<(), StoreError> {
    let (db, tree) = open_log(path)?;
    match checkpoint {
        Some(bytes) => tree.insert(keys::CHECKPOINT, bytes)?,
        None => tree.remove(keys::CHECKPOINT)?,
    };
    db.flush()?;
    Ok(())
}

/// The command index runs of the stopped log in `tree`, after checking
/// that its index tail is on disk (a clean stop writes it).
fn runs_on_disk(tree: &::sled::Tree) -> Result<Vec<u64>, StoreError> {
    let manifest = tree
        .get(keys::INDEX_MANIFEST)?
        .map(|bytes| Manifest::decode(&bytes))
        .transpose()?
        .unwrap_or_default();
    let head = blocks::last_block(tree)?
        .map(|block| {
            block
                .records()
                .filter_map(Result::ok)
                .map(|(at, _)| at)
                .max()
        })
        .unwrap_or_default()
        .unwrap_or_default();
    if manifest.indexed != head {
        return Err(StoreError::Corrupt(format!(
            "the index covers positions up to {} of {head}: stop the server cleanly first",
            manifest.indexed
        )));
    }
    Ok(manifest.runs.iter().map(|run| run.id).collect())
}

/// Points the command index entry of `command_id` in the stopped log in
/// `path` at `position` (or removes it with `None`).
pub fn repoint_command(
    path: &Path,
    command_id: &str,
    position: Option<u64>,
) -> Result<(), StoreError> {
    let (db, tree) = open_log(path)?;
    let hash = command_hash(command_id);
    let mut found = false;
    for run in runs_on_disk(&tree)? {
        runs::edit_entry(&tree, run, hash, |entries| {
            let before = entries.len();
            entries.retain(|(entry, _)| *entry != hash);
            found |= entries.len() != before;
            if let (true, Some(position)) = (entries.len() != before, position) {
                entries.push((hash, position));
            }
        })?;
    }
    if !found {
        return Err(StoreError::Corrupt(format!("no command {command_id:?}")));
    }
    db.flush()?;
    Ok(())
}

/// Removes the stream-index chunk of `agreement_id` that starts at
/// `first_version` from the stopped log in `path`.
pub fn remove_stream_chunk(
    path: &Path,
    agreement_id: &str,
    first_version: u64,
) -> Result<(), StoreError> {
    let (db, tree) = open_log(path)?;
    runs_on_disk(&tree)?;
    tree.remove(keys::stream_key(agreement_id, first_version))?
        .ok_or_else(|| {
            StoreError::Corrupt(format!("no chunk of {agreement_id} at {first_version}"))
        })?;
    db.flush()?;
    Ok(())
}

/// Adds index entries that no record accounts for to the stopped log in
/// `path`: a command id never used, pointing at `position`, and a chunk of
/// `agreement_id` at `first_version` holding `position`.
pub fn add_stray_index_entries(
    path: &Path,
    agreement_id: &str,
    first_version: u64,
    position: u64,
) -> Result<(), StoreError> {
    let (db, tree) = open_log(path)?;
    let run = runs_on_disk(&tree)?
        .last()
        .copied()
        .ok_or_else(|| StoreError::Corrupt("the log has no command index run".into()))?;
    let hash = command_hash("stray-command");
    runs::edit_entry(&tree, run, hash, |entries| entries.push((hash, position)))?;
    tree.insert(
        keys::stream_key(agreement_id, first_version),
        crate::tree::stream_index::encode_chunk(&[position]),
    )?;
    db.flush()?;
    Ok(())
}
