//! The node's replica of the stream: a local sled tree with the same layout
//! as the embedded log (records, stream index, command index), written only
//! by the follower in stream order. Every node derives the same bytes from
//! the same messages: the record gets its position (the stream sequence),
//! the server's timestamp, and the hash of the record before it, so the
//! replica carries the hash chain that `VerifyLog` checks and exports carry.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use accord_domain::Timestamp;

use crate::durable::SyncedDb;
use crate::keys;
use crate::log_batch::LogBatch;
use crate::published_head::{HeadPublisher, LatestCheckpoint};
use crate::sled::{LogState, UnsignedLog, explain_open_error, recover};
use crate::tree_reader::{TreeReader, last_version_in};
use crate::{ChainBreak, ChainHead, CheckpointKeys, StoreError, decode_record, encode_record};

/// One stored message, as the follower received it.
pub(crate) struct StreamEntry {
    pub(crate) sequence: u64,
    pub(crate) stored_at_nanos: i64,
    pub(crate) payload: bytes::Bytes,
}

/// Writes the replica.
pub(crate) struct Replica {
    db: SyncedDb,
    tree: ::sled::Tree,
    state: LogState,
    published: HeadPublisher,
    checkpoint: LatestCheckpoint,
}

impl Replica {
    /// Opens the replica in `path` and returns it with a reader. Its
    /// checkpoint must verify with `keys`; a replica without one (written
    /// by Accord 0.1) is signed as found: it is derived from the stream.
    pub(crate) fn open(
        path: &Path,
        cache_bytes: u64,
        keys: &CheckpointKeys,
    ) -> Result<(Self, TreeReader), StoreError> {
        let config = ::sled::Config::new()
            .path(path)
            .cache_capacity(cache_bytes)
            .mode(::sled::Mode::HighThroughput);
        let db = SyncedDb::open(config, path).map_err(|error| explain_open_error(path, error))?;
        let tree = db.db().open_tree("replica")?;
        db.sync()?;
        let state = recover(&tree, keys, UnsignedLog::Adopt)?;
        db.sync()?;
        let (published, receiver, checkpoint) =
            HeadPublisher::new(keys.clone(), state.head, state.checkpoint);
        let reader = TreeReader::new(tree.clone(), receiver);
        Ok((
            Self {
                db,
                tree,
                state,
                published,
                checkpoint,
            },
            reader,
        ))
    }

    /// The checkpoint of the last applied batch, as readers see it.
    pub(crate) fn latest_checkpoint(&self) -> LatestCheckpoint {
        self.checkpoint.clone()
    }

    /// The last applied stream sequence.
    pub(crate) fn head(&self) -> u64 {
        self.state.head
    }

    /// Applies messages in stream order as one atomic batch. Messages at or
    /// below the head (redeliveries) are skipped; a gap is refused.
    pub(crate) fn apply(&mut self, entries: &[StreamEntry]) -> Result<(), StoreError> {
        let mut next = self.state.clone();
        let mut writes = LogBatch::default();
        let mut versions: HashMap<String, u64> = HashMap::new();
        let mut commands: HashSet<String> = HashSet::new();
        for entry in entries {
            if entry.sequence <= next.head {
                continue;
            }
            let chain = ChainHead {
                position: next.head,
                hash: next.last_hash,
            };
            if let Err(ChainBreak::Gap { expected, found }) = chain.check_position(entry.sequence) {
                return Err(StoreError::Corrupt(format!(
                    "stream sequences {expected}..{} are missing: Accord's stream must never lose messages",
                    found - 1
                )));
            }
            let corrupt = |why: String| {
                StoreError::Corrupt(format!("stream message {}: {why}", entry.sequence))
            };
            let decoded =
                decode_record(&entry.payload).map_err(|error| corrupt(error.to_string()))?;
            let mut event = decoded.event;
            if event.position != 0 && event.position != entry.sequence {
                return Err(corrupt(format!(
                    "the record says position {}",
                    event.position
                )));
            }
            let current = match versions.get(&event.agreement_id) {
                Some(version) => *version,
                None => self.stored_version(&event.agreement_id)?,
            };
            if event.version != current + 1 {
                return Err(corrupt(format!(
                    "{} is at version {current}, the message says {}",
                    event.agreement_id, event.version
                )));
            }
            if current == 0 {
                next.agreement_count += 1;
            }
            event.position = entry.sequence;
            if event.recorded_at.unix_nanos() == 0 {
                event.recorded_at = Timestamp::from_unix_nanos(entry.stored_at_nanos);
            }
            let (bytes, hash) =
                encode_record(&event, &decoded.command_fingerprint, &next.last_hash);
            writes.push_record(entry.sequence, &event.agreement_id, event.version, &bytes);
            // The first record of a command id is its outcome.
            let command_id = &event.metadata.command_id;
            if !commands.contains(command_id)
                && self.tree.get(keys::command_key(command_id))?.is_none()
            {
                writes.push_command(command_id, &decoded.command_fingerprint, entry.sequence);
                commands.insert(command_id.clone());
            }
            versions.insert(event.agreement_id.clone(), event.version);
            next.head = entry.sequence;
            next.last_hash = hash;
            next.last_recorded_nanos = event.recorded_at.unix_nanos();
        }
        if next.head == self.state.head {
            return Ok(());
        }
        let checkpoint = self.published.sign(&next.chain_head());
        next.checkpoint = Some(checkpoint);
        self.tree
            .apply_batch(writes.into_sled_batch(next.agreement_count, &checkpoint))?;
        self.state = next;
        self.published
            .publish(self.state.head, self.state.checkpoint);
        Ok(())
    }

    fn stored_version(&self, agreement_id: &str) -> Result<u64, StoreError> {
        Ok(last_version_in(&self.tree, agreement_id)?.0)
    }

    /// Writes what is applied to stable storage.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.db.sync()
    }
}
