//! The node's replica of the stream: a local sled tree with the same layout
//! as the embedded log (records, stream index, command index), written only
//! by the follower in stream order. Every node derives the same bytes from
//! the same messages: the record gets its position (the stream sequence),
//! the server's timestamp, and the hash of the record before it, so the
//! replica carries the hash chain that `VerifyLog` checks and exports carry.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use accord_domain::{RecordedEvent, Timestamp};
use tokio::sync::watch;

use super::quarantine::QuarantineBook;
use crate::durable::SyncedDb;
use crate::published_head::{HeadPublisher, LatestCheckpoint};
use crate::tree::batch::LogBatch;
use crate::tree::index::LogIndex;
use crate::tree::index::indexer::IndexWriter;
use crate::tree::keys;
use crate::tree::open::{LogState, UnsignedLog, explain_open_error, recover};
use crate::tree::reader::TreeReader;
use crate::{ChainBreak, ChainHead, CheckpointKeys, StoreError, decode_record, encode_record};

/// One stored message, as the follower received it.
pub(crate) struct StreamEntry {
    pub(crate) sequence: u64,
    pub(crate) stored_at_nanos: i64,
    pub(crate) payload: bytes::Bytes,
}

/// Writes the replica.
pub(crate) struct Replica {
    db: Arc<SyncedDb>,
    tree: ::sled::Tree,
    index: IndexWriter,
    /// The last record: the log's head, chain and checkpoint.
    state: LogState,
    published: HeadPublisher,
    /// The last stream sequence applied, a quarantined message included.
    followed: watch::Sender<u64>,
    quarantine: QuarantineBook,
    /// The Merkle tree's right edge at `followed`.
    frontier: accord_tlog::Frontier,
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
        let db = Arc::new(db);
        let tree = db.db().open_tree("replica")?;
        db.sync()?;
        let state = recover(&tree, keys, UnsignedLog::Adopt)?;
        let (index, sealed) = LogIndex::open(&tree, state.head, crate::DEFAULT_WINDOW_RECORDS)?;
        db.sync()?;
        let index_writer = IndexWriter::start(index.clone(), db.clone(), sealed, None)?;
        let (quarantine, last_quarantined) = QuarantineBook::load(&tree)?;
        let positions = state.head.max(last_quarantined);
        let frontier = crate::tree::merkle::recover_frontier(&tree, positions)?;
        let followed = watch::Sender::new(positions);
        let (published, receiver) = HeadPublisher::new(keys.clone(), state.head, state.checkpoint);
        let reader = TreeReader::new(tree.clone(), index, receiver);
        Ok((
            Self {
                db,
                tree,
                index: index_writer,
                state,
                published,
                followed,
                quarantine,
                frontier,
            },
            reader,
        ))
    }

    /// The checkpoint of the last applied batch, as readers see it.
    pub(crate) fn latest_checkpoint(&self) -> LatestCheckpoint {
        self.published.latest()
    }

    /// The last stream sequence applied (a quarantined message included).
    pub(crate) fn followed(&self) -> u64 {
        *self.followed.borrow()
    }

    /// A receiver of the last stream sequence applied.
    pub(crate) fn watch_followed(&self) -> watch::Receiver<u64> {
        self.followed.subscribe()
    }

    /// The quarantined messages.
    pub(crate) fn quarantine(&self) -> QuarantineBook {
        self.quarantine.clone()
    }

    /// Applies messages in stream order as one atomic batch. Messages
    /// already applied (redeliveries) are skipped; lost messages (a gap in
    /// the sequences) are refused; a message that is not the log's next
    /// record is quarantined.
    pub(crate) fn apply(&mut self, entries: &[StreamEntry]) -> Result<(), StoreError> {
        let mut next = self.state.clone();
        let mut followed = self.followed();
        let mut writes = LogBatch::default();
        let mut quarantined = Vec::new();
        let mut versions: HashMap<String, u64> = HashMap::new();
        let mut commands: HashSet<String> = HashSet::new();
        for entry in entries {
            if entry.sequence <= followed {
                continue;
            }
            let chain = ChainHead {
                position: followed,
                hash: next.last_hash,
            };
            if let Err(ChainBreak::Gap { expected, found }) = chain.check_position(entry.sequence) {
                return Err(StoreError::Corrupt(format!(
                    "stream sequences {expected}..{} are missing: Accord's stream must never lose messages",
                    found - 1
                )));
            }
            followed = entry.sequence;
            let (mut event, fingerprint) = match self.check(entry, &versions) {
                Ok(checked) => checked,
                Err(why) => {
                    tracing::error!(
                        sequence = entry.sequence,
                        why,
                        "a message on Accord's subjects is not a valid record; quarantined"
                    );
                    writes.push_quarantined(
                        entry.sequence,
                        keys::quarantine_entry(&why, &entry.payload),
                        &entry.payload,
                    );
                    quarantined.push((entry.sequence, why));
                    continue;
                }
            };
            let current = event.version - 1;
            if current == 0 {
                next.agreement_count += 1;
            }
            event.position = entry.sequence;
            if event.recorded_at.unix_nanos() == 0 {
                event.recorded_at = Timestamp::from_unix_nanos(entry.stored_at_nanos);
            }
            let (bytes, hash) = encode_record(&event, &fingerprint, &next.last_hash);
            // The first record of a command id is its outcome.
            let command_id = &event.metadata.command_id;
            let first = !commands.contains(command_id)
                && self.index.index().command_position(command_id)?.is_none();
            if first {
                commands.insert(command_id.clone());
            }
            writes.push_record(
                entry.sequence,
                &event.agreement_id,
                event.version,
                &bytes,
                first.then_some(command_id.as_str()),
            );
            versions.insert(event.agreement_id.clone(), event.version);
            next.head = entry.sequence;
            next.last_hash = hash;
            next.last_recorded_nanos = event.recorded_at.unix_nanos();
        }
        if followed == self.followed() {
            return Ok(());
        }
        let checkpoint = self.published.sign(&next.chain_head());
        next.checkpoint = Some(checkpoint);
        let write = writes.into_sled_write(
            next.agreement_count,
            &checkpoint,
            &mut self.frontier,
            &self.tree,
        )?;
        self.tree.apply_batch(write.batch)?;
        self.index.add(write.entries)?;
        self.state = next;
        self.quarantine.add(quarantined);
        self.published
            .publish(self.state.head, self.state.checkpoint);
        self.followed.send_replace(followed);
        Ok(())
    }

    /// The event of `entry` and its command's fingerprint if it is the next
    /// record of its agreement; why not otherwise.
    fn check(
        &self,
        entry: &StreamEntry,
        versions: &HashMap<String, u64>,
    ) -> Result<(RecordedEvent, crate::Fingerprint), String> {
        let decoded = decode_record(&entry.payload).map_err(|error| error.to_string())?;
        let event = decoded.event;
        if event.position != 0 && event.position != entry.sequence {
            return Err(format!("the record says position {}", event.position));
        }
        accord_domain::validate_agreement_id(&event.agreement_id)
            .map_err(|error| error.to_string())?;
        let current = match versions.get(&event.agreement_id) {
            Some(version) => *version,
            None => self
                .stored_version(&event.agreement_id)
                .map_err(|error| error.to_string())?,
        };
        if event.version != current + 1 {
            return Err(format!(
                "{} is at version {current}, the message says {}",
                event.agreement_id, event.version
            ));
        }
        if current == 0 && !event.event.opens_agreement() {
            return Err(format!(
                "{}'s first event must be its announcement",
                event.agreement_id
            ));
        }
        Ok((event, decoded.command_fingerprint))
    }

    fn stored_version(&self, agreement_id: &str) -> Result<u64, StoreError> {
        Ok(self.index.index().last_version(agreement_id)?.0)
    }

    /// Writes what is applied to stable storage.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        self.db.sync()
    }
}
