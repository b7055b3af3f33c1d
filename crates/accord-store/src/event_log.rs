//! The contract every log backend fulfils: the embedded sled log and NATS JetStream.

use accord_domain::{Event, EventMetadata, ExpectedVersion, RecordedEvent, Timestamp};
use tokio::sync::watch;

/// A hash of the log's Merkle tree (SHA-256).
pub type TreeHash = [u8; 32];

use crate::{DigestKeys, IndexDigest, SignedCheckpoint, StoreError};

/// A digest of a command's content, to tell a retry from a reused id.
pub type Fingerprint = [u8; 16];

/// One event to append.
#[derive(Debug, Clone)]
pub struct AppendItem {
    /// The agreement's stream.
    pub agreement_id: String,
    /// What the stream must be at before this event.
    pub expected: ExpectedVersion,
    /// The idempotency key.
    pub command_id: String,
    /// Digest of the command, compared when the id was seen before.
    pub fingerprint: Fingerprint,
    /// Correlation, causation and actor.
    pub metadata: EventMetadata,
    /// The event.
    pub event: Event,
}

/// Where an appended (or previously appended) event stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendOutcome {
    /// The agreement.
    pub agreement_id: String,
    /// Version within the agreement.
    pub version: u64,
    /// Position in the global log.
    pub position: u64,
    /// When the log recorded it.
    pub recorded_at: Timestamp,
    /// True when the command id was seen before and nothing was appended.
    pub duplicate: bool,
}

impl AppendOutcome {
    /// Where `event` stands; `duplicate` marks a command seen before.
    pub fn of(event: &RecordedEvent, duplicate: bool) -> Self {
        Self {
            agreement_id: event.agreement_id.clone(),
            version: event.version,
            position: event.position,
            recorded_at: event.recorded_at,
            duplicate,
        }
    }
}

/// What the log remembers of a command id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandRecord {
    /// Digest of the command first recorded under the id.
    pub fingerprint: Fingerprint,
    /// Its outcome, marked as a duplicate.
    pub outcome: AppendOutcome,
}

/// A record as stored: its position and its framed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// Position in the log.
    pub position: u64,
    /// `[schema version][crc32c][body]`, see [`crate::decode_record`];
    /// read from the log, it shares the stored block's bytes.
    pub bytes: bytes::Bytes,
}

/// Records to import, chunk by chunk, readable more than once (a backend
/// may check them all before it writes the first).
pub trait ImportSource: Send {
    /// The next chunk; None after the last.
    fn next_chunk(&mut self) -> Result<Option<Vec<RawRecord>>, StoreError>;

    /// Starts again from the first chunk.
    fn rewind(&mut self) -> Result<(), StoreError>;
}

/// Chunks of records held in memory.
pub struct ImportChunks {
    chunks: Vec<Vec<RawRecord>>,
    next: usize,
}

impl ImportChunks {
    /// Imports `chunks` in order.
    pub fn new(chunks: Vec<Vec<RawRecord>>) -> Self {
        Self { chunks, next: 0 }
    }
}

impl ImportSource for ImportChunks {
    fn next_chunk(&mut self) -> Result<Option<Vec<RawRecord>>, StoreError> {
        let chunk = self.chunks.get(self.next).cloned();
        self.next += usize::from(chunk.is_some());
        Ok(chunk)
    }

    fn rewind(&mut self) -> Result<(), StoreError> {
        self.next = 0;
        Ok(())
    }
}

/// Figures about the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogStats {
    /// Position of the last durable event.
    pub head_position: u64,
    /// Events in the log.
    pub event_count: u64,
    /// Agreements (streams) in the log.
    pub agreement_count: u64,
    /// Bytes the store occupies on disk.
    pub disk_bytes: u64,
}

/// Messages of a NATS stream kept aside because they are not valid records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Quarantined {
    /// How many.
    pub count: u64,
    /// The latest ones: position and why each was refused.
    pub recent: Vec<(u64, String)>,
}

/// An append-only, gap-free, totally ordered log of agreement events.
///
/// Appends are acknowledged only once durable; reads never return events
/// that are not yet durable.
#[async_trait::async_trait]
pub trait EventLog: Send + Sync + 'static {
    /// Appends all items or none. Items whose command id was seen before with
    /// the same fingerprint are not appended again and come back with
    /// `duplicate = true`.
    async fn append(&self, items: Vec<AppendItem>) -> Result<Vec<AppendOutcome>, StoreError>;

    /// Reads up to `max_count` events from `from_position` (inclusive), and
    /// no more than [`crate::READ_BYTES`] of them (at least one): a batch
    /// shorter than asked for is not the end of the log.
    async fn read_log(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Reads up to `max_count` framed records from `from_position`
    /// (inclusive), undecoded, no more than [`crate::READ_BYTES`] of them (at
    /// least one): for export, verification, and readers that decode on
    /// another thread.
    async fn read_raw(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RawRecord>, StoreError>;

    /// Reads the events at `positions` (ascending, each holding an event:
    /// what an index of the log lists), no more than [`crate::READ_BYTES`]
    /// of them (at least one) and none past the head: the events come back
    /// in order and may stop short of the last position asked for.
    async fn read_positions(&self, positions: &[u64]) -> Result<Vec<RecordedEvent>, StoreError>;

    /// Reads up to `max_count` events of one agreement from `from_version`
    /// (inclusive), no more than [`crate::READ_BYTES`] of them (at least
    /// one): a reader that wants the whole stream reads on from the version
    /// after the last it got, until an empty answer.
    async fn read_stream(
        &self,
        agreement_id: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError>;

    /// The root of the log's Merkle tree (RFC 9162) over its first `size`
    /// positions; `size` at most the head.
    async fn tree_root(&self, size: u64) -> Result<TreeHash, StoreError>;

    /// The inclusion proof of leaf `index` (position `index + 1`) in the
    /// tree of the first `size` positions; `index < size ≤` the head.
    async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<TreeHash>, StoreError>;

    /// The first `width` hashes of tile `index` of level `level` (C2SP
    /// `tlog-tiles`: nodes at tree height `8 · level`), all within the
    /// tree of the head's positions.
    async fn tree_tile(
        &self,
        level: u8,
        index: u64,
        width: usize,
    ) -> Result<Vec<TreeHash>, StoreError>;

    /// The consistency proof from the tree of the first `first` positions
    /// to the tree of the first `second`; `first ≤ second ≤` the head.
    async fn consistency_proof(&self, first: u64, second: u64)
    -> Result<Vec<TreeHash>, StoreError>;

    /// The positions of up to `max_count` events of one agreement from
    /// `from_version` (inclusive), from the stream index, none past the
    /// head: what [`EventLog::read_positions`] then reads.
    async fn stream_positions(
        &self,
        agreement_id: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<u64>, StoreError>;

    /// Returns the position of version `version` of an agreement, from the
    /// stream index.
    async fn locate(&self, agreement_id: &str, version: u64) -> Result<Option<u64>, StoreError>;

    /// Imports an export into this empty log, unchanged (positions, event
    /// ids, timestamps and chain), all or nothing: each record must be the
    /// next of the log. Appends are refused while it runs; on sled a
    /// failure at any point, a crash included, leaves the log empty. On
    /// NATS the records are all checked before the first is published; a
    /// failure of NATS itself midway leaves the ones published so far, and
    /// the error says so. Returns the records imported.
    async fn import(&self, source: Box<dyn ImportSource>) -> Result<u64, StoreError>;

    /// Returns what the log remembers of `command_id`, once durable.
    async fn find_command(&self, command_id: &str) -> Result<Option<CommandRecord>, StoreError>;

    /// Returns the position the command index gives for `command_id`,
    /// without reading the record there (for verification).
    async fn command_position(&self, command_id: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .find_command(command_id)
            .await?
            .map(|command| command.outcome.position))
    }

    /// The digest of the stream and command index entries that point at
    /// positions up to `through`, scanned in key order (for verification);
    /// `None` when this backend cannot scan its indexes, and verification
    /// looks each record's entries up instead.
    async fn index_digest(
        &self,
        _keys: DigestKeys,
        _through: u64,
    ) -> Result<Option<IndexDigest>, StoreError> {
        Ok(None)
    }

    /// Makes reads of `agreement_id` reflect every event of it stored before
    /// the call. Returns whether other writers share the log, so that what
    /// was read of it before the call may have lagged: never for sled (this
    /// process is its only writer), always for NATS (other nodes write).
    async fn catch_up_agreement(&self, _agreement_id: &str) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Returns the position of the last durable event (0 for an empty log).
    fn head(&self) -> u64;

    /// Returns the head of the log as of the call, other writers' events
    /// included: [`EventLog::head`] for sled (the only writer is this
    /// process); on NATS, the stream's last position once this node's
    /// replica holds it.
    async fn caught_up_head(&self) -> Result<u64, StoreError> {
        Ok(self.head())
    }

    /// Why the log cannot serve as it should right now, if it cannot: on
    /// NATS, no connection to the cluster or a replica that has not caught
    /// up with the stream for a while. Cheap; health checks poll it.
    fn degraded(&self) -> Option<String> {
        None
    }

    /// Returns a receiver that sees every new durable head position.
    fn watch_head(&self) -> watch::Receiver<u64>;

    /// Messages kept aside (NATS: published on Accord's subjects by another
    /// client, not valid records); their positions hold no event. Never any
    /// on sled.
    fn quarantined(&self) -> Quarantined {
        Quarantined::default()
    }

    /// How many positions from `from` to `to` (inclusive) are quarantined
    /// messages: a gap in the positions is allowed only where they are.
    async fn quarantined_between(&self, _from: u64, _to: u64) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// Returns the signed checkpoint of the last durable write (`None` for
    /// an empty log). Read before [`EventLog::head`], its position is at or
    /// below the head.
    fn checkpoint(&self) -> Option<SignedCheckpoint>;

    /// Returns figures about the log.
    async fn stats(&self) -> Result<LogStats, StoreError>;

    /// Answers every pending append, flushes, and stops accepting appends.
    async fn close(&self) -> Result<(), StoreError>;
}
