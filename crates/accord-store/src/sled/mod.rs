//! The embedded backend: one sled tree holds records and indexes, one writer
//! thread commits groups of appends with a single fsync.

mod writer;

use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::Mutex;
use std::thread::JoinHandle;

use accord_domain::RecordedEvent;
use tokio::sync::{mpsc, oneshot, watch};

use crate::durable::{ContainedDrop, SyncedDb};
use crate::import_gate::ImportGate;
use crate::published_head::{HeadPublisher, LatestCheckpoint};
use crate::tree::index::LogIndex;
use crate::tree::index::indexer::{IndexWriter, KeysWritten};
pub use crate::tree::index::window::DEFAULT_WINDOW_RECORDS;
use crate::tree::reader::TreeReader;
use crate::{
    AppendItem, AppendOutcome, CheckpointKeys, CommandRecord, EventLog, ImportSource, LogStats,
    RawRecord, SignedCheckpoint, StoreError, TreeHash,
};
use writer::{PendingAppend, WriteFailure, Writer, WriterMessage, WriterStore};

use crate::tree::open::{UnsignedLog, explain_open_error, recover};
pub use writer::CommitObserver;

/// Bytes of the log store's page cache unless told otherwise: small enough
/// to keep sustained batch writes under 512 MiB resident, at a few percent
/// more CPU per event than 1 GiB (`BENCHMARKS.md`, "The log's cache").
pub const DEFAULT_CACHE_BYTES: u64 = 256 * 1024 * 1024;

/// How to open a sled log.
#[derive(Clone)]
pub struct SledOptions {
    /// Directory of the sled database.
    pub path: PathBuf,
    /// Bytes of sled's page cache.
    pub cache_capacity_bytes: u64,
    /// Events after which a group commit takes no more appends (one
    /// append larger than this is a group of its own).
    pub max_group_events: usize,
    /// Called after every group commit, for metrics.
    pub observer: Option<Arc<dyn CommitObserver>>,
    /// The key every write's checkpoint is signed with, and the keys an
    /// existing checkpoint may be signed by.
    pub keys: CheckpointKeys,
    /// What to do with a log that has records but no checkpoint.
    pub unsigned: UnsignedLog,
    /// Records of the index tail the indexer writes at a time (see
    /// `tree::index`): more is fewer, larger writes and a longer open after
    /// a crash.
    pub index_window_records: usize,
}

impl SledOptions {
    /// Returns the defaults for a log in `path` signed with `keys`.
    pub fn new(path: impl Into<PathBuf>, keys: CheckpointKeys) -> Self {
        Self {
            path: path.into(),
            cache_capacity_bytes: DEFAULT_CACHE_BYTES,
            max_group_events: 512,
            observer: None,
            keys,
            unsigned: UnsignedLog::Refuse,
            index_window_records: DEFAULT_WINDOW_RECORDS,
        }
    }
}

/// The sled-backed event log.
pub struct SledLog {
    db: ContainedDrop<Arc<SyncedDb>>,
    reader: ContainedDrop<TreeReader>,
    /// Set by the writer when a write failed: nothing is read any more.
    failure: WriteFailure,
    appends: mpsc::Sender<WriterMessage>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    /// Open unless an import runs: appends are refused meanwhile.
    imports: ImportGate,
    checkpoint: LatestCheckpoint,
}

impl SledLog {
    /// Opens (or creates) the log, finds its head and checks that the
    /// indexes agree with the last record.
    pub fn open(options: SledOptions) -> Result<Self, StoreError> {
        let config = ::sled::Config::new()
            .path(&options.path)
            .cache_capacity(options.cache_capacity_bytes)
            .mode(::sled::Mode::HighThroughput);
        let db = SyncedDb::open(config, &options.path)
            .map_err(|error| explain_open_error(&options.path, error))?;
        let db = Arc::new(db);
        let tree = db.db().open_tree("log")?;
        // Opening a tree the first time writes to sled: make it durable too.
        db.sync()?;
        let state = recover(&tree, &options.keys, options.unsigned)?;
        let (index, sealed) = LogIndex::open(&tree, state.head, options.index_window_records)?;
        let frontier = crate::tree::merkle::recover_frontier(&tree, state.head)?;
        // An unfinished import emptied at open (or the checkpoint of an
        // adopted log, or an unfinished index run removed, or the tiles of a
        // log written before the Merkle tree) is durable before anything
        // else.
        db.sync()?;
        let keys_written: Option<KeysWritten> = options
            .observer
            .clone()
            .map(|observer| Arc::new(move |keys: usize| observer.wrote_keys(keys)) as KeysWritten);
        let index_writer = IndexWriter::start(index.clone(), db.clone(), sealed, keys_written)?;
        let (published, head) =
            HeadPublisher::new(options.keys.clone(), state.head, state.checkpoint);
        let checkpoint = published.latest();
        let (appends, requests) = mpsc::channel(16_384);
        let failure = WriteFailure::default();
        let writer = Writer::new(
            WriterStore {
                db: db.clone(),
                tree: tree.clone(),
                index: index_writer,
                frontier,
            },
            state,
            published,
            failure.clone(),
            options.max_group_events,
            options.observer.clone(),
        );
        let writer_thread = std::thread::Builder::new()
            .name("accord-log-writer".into())
            .spawn(move || writer.run(requests))
            .map_err(|error| StoreError::failed("cannot start the writer", error))?;
        Ok(Self {
            db: ContainedDrop::new(db),
            reader: ContainedDrop::new(TreeReader::new(tree, index, head)),
            failure,
            appends,
            writer_thread: Mutex::new(Some(writer_thread)),
            imports: ImportGate::default(),
            checkpoint,
        })
    }
}

impl SledLog {
    /// Refuses reads once a write failed (see `WriteFailure`).
    fn readable(&self) -> Result<(), StoreError> {
        self.failure.check()
    }
}

#[async_trait::async_trait]
impl EventLog for SledLog {
    async fn append(&self, items: Vec<AppendItem>) -> Result<Vec<AppendOutcome>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.imports.check_append()?;
        let (reply, outcome) = oneshot::channel();
        self.appends
            .send(WriterMessage::Append(PendingAppend { items, reply }))
            .await
            .map_err(|_| StoreError::Unavailable("the log is closed".into()))?;
        outcome
            .await
            .map_err(|_| StoreError::Unavailable("the log writer stopped".into()))?
    }

    async fn read_log(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.readable()?;
        self.reader
            .near_head(from_position, move |reader| {
                reader.read_log(from_position, max_count)
            })
            .await
    }

    async fn read_raw(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RawRecord>, StoreError> {
        self.readable()?;
        self.reader
            .near_head(from_position, move |reader| {
                reader.read_raw(from_position, max_count)
            })
            .await
    }

    async fn read_positions(&self, positions: &[u64]) -> Result<Vec<RecordedEvent>, StoreError> {
        self.readable()?;
        let Some(&first) = positions.first() else {
            return Ok(Vec::new());
        };
        let positions = positions.to_vec();
        self.reader
            .near_head(first, move |reader| reader.read_positions(&positions))
            .await
    }

    async fn read_stream(
        &self,
        agreement_id: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.readable()?;
        let agreement_id = agreement_id.to_owned();
        self.reader
            .off_thread(move |reader| reader.read_stream(&agreement_id, from_version, max_count))
            .await
    }

    async fn tree_root(&self, size: u64) -> Result<TreeHash, StoreError> {
        self.readable()?;
        self.reader
            .off_thread(move |reader| reader.tree_root(size))
            .await
    }

    async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<TreeHash>, StoreError> {
        self.readable()?;
        self.reader
            .off_thread(move |reader| reader.inclusion_proof(index, size))
            .await
    }

    async fn tree_tile(
        &self,
        level: u8,
        index: u64,
        width: usize,
    ) -> Result<Vec<TreeHash>, StoreError> {
        self.readable()?;
        self.reader
            .off_thread(move |reader| reader.tree_tile(level, index, width))
            .await
    }

    async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<TreeHash>, StoreError> {
        self.readable()?;
        self.reader
            .off_thread(move |reader| reader.consistency_proof(first, second))
            .await
    }

    async fn stream_positions(
        &self,
        agreement_id: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<u64>, StoreError> {
        self.readable()?;
        let agreement_id = agreement_id.to_owned();
        self.reader
            .off_thread(move |reader| {
                reader.stream_positions(&agreement_id, from_version, max_count)
            })
            .await
    }

    async fn locate(&self, agreement_id: &str, version: u64) -> Result<Option<u64>, StoreError> {
        self.readable()?;
        self.reader.locate(agreement_id, version)
    }

    async fn import(&self, source: Box<dyn ImportSource>) -> Result<u64, StoreError> {
        let _running = self.imports.begin()?;
        let (reply, imported) = oneshot::channel();
        self.appends
            .send(WriterMessage::Import(source, reply))
            .await
            .map_err(|_| StoreError::Unavailable("the log is closed".into()))?;
        imported
            .await
            .map_err(|_| StoreError::Unavailable("the log writer stopped".into()))?
    }

    async fn find_command(&self, command_id: &str) -> Result<Option<CommandRecord>, StoreError> {
        self.readable()?;
        self.reader.find_command(command_id).await
    }

    async fn index_digest(
        &self,
        keys: crate::DigestKeys,
        through: u64,
    ) -> Result<Option<crate::IndexDigest>, StoreError> {
        self.readable()?;
        self.reader
            .off_thread(move |reader| reader.index().digest(&keys, through).map(Some))
            .await
    }

    async fn command_position(&self, command_id: &str) -> Result<Option<u64>, StoreError> {
        self.readable()?;
        self.reader.command_position(command_id)
    }

    fn head(&self) -> u64 {
        self.reader.head()
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.reader.watch_head()
    }

    fn checkpoint(&self) -> Option<SignedCheckpoint> {
        self.checkpoint.get()
    }

    async fn stats(&self) -> Result<LogStats, StoreError> {
        self.readable()?;
        let head = self.head();
        Ok(LogStats {
            head_position: head,
            event_count: head,
            agreement_count: self.reader.agreement_count()?,
            disk_bytes: self.db.db().size_on_disk()?,
        })
    }

    async fn close(&self) -> Result<(), StoreError> {
        let (reply, closed) = oneshot::channel();
        if self.appends.send(WriterMessage::Close(reply)).await.is_ok() {
            closed
                .await
                .map_err(|_| StoreError::Unavailable("the log writer stopped".into()))??;
        }
        let thread = self.writer_thread.lock().take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|error| StoreError::failed("joining the writer", error))?
                .map_err(|_| StoreError::Unavailable("the log writer panicked".into()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
