//! Start-up: find the head and check it against the signed checkpoint (the
//! indexes are opened and checked by [`crate::tree::index::LogIndex::open`]).

use std::path::Path;

use super::keys;
use crate::tree::blocks::last_block;
use crate::{
    ChainHead, CheckpointError, CheckpointKeys, RecordHash, SignedCheckpoint, StoreError,
    decode_record, record_hash,
};

/// What the writer needs to continue the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogState {
    pub(crate) head: u64,
    pub(crate) last_hash: RecordHash,
    pub(crate) last_recorded_nanos: i64,
    pub(crate) agreement_count: u64,
    /// The signed checkpoint of `head` (`None` only for an empty log).
    pub(crate) checkpoint: Option<SignedCheckpoint>,
}

impl LogState {
    /// The state of an empty log.
    pub(crate) const EMPTY: Self = Self {
        head: 0,
        last_hash: [0; 32],
        last_recorded_nanos: 0,
        agreement_count: 0,
        checkpoint: None,
    };

    /// The chain head this state ends at.
    pub(crate) fn chain_head(&self) -> ChainHead {
        ChainHead {
            position: self.head,
            hash: self.last_hash,
        }
    }
}

/// What to do with a log that holds records but no signed checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnsignedLog {
    /// Refuse to open it: it was written before Accord signed its logs, or
    /// someone removed the checkpoint.
    Refuse,
    /// Sign its head as found: a NATS replica, which is derived from the
    /// stream anyway.
    Adopt,
    /// Sign its head as found, once, after an upgrade from Accord 0.1
    /// (`--adopt-unsigned-log`); a log that is signed already is refused, so
    /// that the flag cannot stay set and sign whatever log it finds later.
    AdoptOnce,
}

/// Reads the head, checks the signed checkpoint against it, and returns
/// both.
///
/// Records and the checkpoint are written by one atomic batch, so a crash
/// leaves either all of a batch or none of it; this check proves it, and
/// that nobody changed the log without the signing key.
pub(crate) fn recover(
    tree: &::sled::Tree,
    keys: &CheckpointKeys,
    unsigned: UnsignedLog,
) -> Result<LogState, StoreError> {
    let mut state = recover_head(tree)?;
    let head = state.chain_head();
    state.checkpoint = match tree.get(keys::CHECKPOINT)? {
        Some(_) if unsigned == UnsignedLog::AdoptOnce => {
            return Err(StoreError::Unsigned(format!(
                "--adopt-unsigned-log is set, but the log (head {}) is signed already: remove the flag (it adopts a log of Accord 0.1 once, and left set it would sign any log whose checkpoint was removed)",
                head.position
            )));
        }
        Some(bytes) => {
            let checkpoint = SignedCheckpoint::decode(&bytes)?;
            checkpoint
                .check(&head, keys)
                .map_err(|error| refuse_checkpoint(&head, error))?;
            Some(checkpoint)
        }
        None if head.position == 0 => None,
        None if unsigned == UnsignedLog::Refuse => {
            return Err(StoreError::Unsigned(format!(
                "the log holds {} records and no signed checkpoint. A data directory of Accord 0.1 looks like this: to upgrade it, start once with --adopt-unsigned-log (it signs the log as it is), then without the flag. If this server wrote and signed this log before, its checkpoint was removed outside Accord: restore it from a backup or an export instead",
                head.position
            )));
        }
        None => {
            tracing::warn!(
                head = head.position,
                "the log has no signed checkpoint; signing its head as found"
            );
            let checkpoint = keys.sign(&head);
            tree.insert(keys::CHECKPOINT, checkpoint.encode())?;
            Some(checkpoint)
        }
    };
    Ok(state)
}

fn refuse_checkpoint(head: &ChainHead, error: CheckpointError) -> StoreError {
    let advice = match error {
        CheckpointError::UntrustedKey { .. } => {
            "if the server's signing key was replaced, pass the old public key with --trusted-key"
        }
        _ => "the log was changed outside Accord; restore it from a backup or an export",
    };
    StoreError::Tampered(format!(
        "the log (head {}) does not match its signed checkpoint: {error}; {advice}",
        head.position
    ))
}

/// Reads the head.
fn recover_head(tree: &::sled::Tree) -> Result<LogState, StoreError> {
    if tree.contains_key(keys::IMPORTING)? {
        tracing::warn!("an import did not finish before the log was closed; emptying the log");
        empty_tree(tree)?;
    }
    let agreement_count = tree
        .get(keys::AGREEMENT_COUNT)?
        .and_then(|bytes| keys::decode_u64(&bytes))
        .unwrap_or(0);
    let Some(block) = last_block(tree)? else {
        return Ok(LogState {
            head: 0,
            last_hash: [0; 32],
            last_recorded_nanos: 0,
            agreement_count,
            checkpoint: None,
        });
    };
    // Only the last record is decoded: a damaged record before it is for
    // VerifyLog to report, not a reason to refuse to start.
    let mut last = None;
    for entry in block.records() {
        last = Some(entry?);
    }
    let (head, bytes) = last.ok_or_else(|| StoreError::Corrupt("empty record block".into()))?;
    let record = decode_record(bytes)?;
    if record.event.position != head {
        return Err(StoreError::Corrupt(format!(
            "record stored at position {head} says position {}",
            record.event.position
        )));
    }
    Ok(LogState {
        head,
        last_hash: record_hash(bytes),
        last_recorded_nanos: record.event.recorded_at.unix_nanos(),
        agreement_count,
        checkpoint: None,
    })
}

/// Turns sled's open error into one that says what to do.
pub(crate) fn explain_open_error(path: &Path, error: ::sled::Error) -> StoreError {
    match &error {
        ::sled::Error::Io(io)
            if io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().contains("could not acquire lock") =>
        {
            StoreError::Unavailable(format!(
                "data directory {} is in use by another process (a running accord-server?); stop it or use a different directory",
                path.display()
            ))
        }
        _ => StoreError::from(error),
    }
}

/// Removes every record and index entry of the log tree, then the import
/// marker: the tree is as new.
pub(crate) fn empty_tree(tree: &::sled::Tree) -> Result<(), StoreError> {
    let mut batch = ::sled::Batch::default();
    for key in tree.iter().keys() {
        let key = key?;
        if key.as_ref() != keys::IMPORTING {
            batch.remove(key);
        }
    }
    tree.apply_batch(batch)?;
    tree.remove(keys::IMPORTING)?;
    Ok(())
}
