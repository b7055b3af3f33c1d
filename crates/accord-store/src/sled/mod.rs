//! The embedded backend: one sled tree holds records and indexes, one writer
//! thread commits groups of appends with a single fsync.

mod open;
mod writer;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use accord_domain::RecordedEvent;
use tokio::sync::{mpsc, oneshot, watch};

use crate::keys;
use crate::{
    AppendItem, AppendOutcome, CommandRecord, EventLog, LogStats, RawRecord, StoreError,
    decode_record,
};
use writer::{PendingAppend, Writer, WriterMessage};

pub use writer::CommitObserver;

/// How to open a sled log.
#[derive(Clone)]
pub struct SledOptions {
    /// Directory of the sled database.
    pub path: PathBuf,
    /// Bytes of sled's page cache.
    pub cache_capacity_bytes: u64,
    /// Most appends taken into one group commit.
    pub max_group_commit: usize,
    /// Called after every group commit, for metrics.
    pub observer: Option<Arc<dyn CommitObserver>>,
}

impl SledOptions {
    /// Returns the defaults for a log in `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            cache_capacity_bytes: 256 * 1024 * 1024,
            max_group_commit: 4_096,
            observer: None,
        }
    }
}

/// The sled-backed event log.
pub struct SledLog {
    db: ::sled::Db,
    tree: ::sled::Tree,
    appends: mpsc::Sender<WriterMessage>,
    head: watch::Receiver<u64>,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
}

impl SledLog {
    /// Opens (or creates) the log, finds its head and checks that the
    /// indexes agree with the last record.
    pub fn open(options: SledOptions) -> Result<Self, StoreError> {
        let db = ::sled::Config::new()
            .path(&options.path)
            .cache_capacity(options.cache_capacity_bytes)
            .mode(::sled::Mode::HighThroughput)
            .open()
            .map_err(|error| open::explain_open_error(&options.path, error))?;
        let tree = db.open_tree("log")?;
        let state = open::recover(&tree)?;
        let (head_sender, head) = watch::channel(state.head);
        let (appends, requests) = mpsc::channel(16_384);
        let writer = Writer::new(
            db.clone(),
            tree.clone(),
            state,
            head_sender,
            options.max_group_commit,
            options.observer.clone(),
        );
        let writer_thread = std::thread::Builder::new()
            .name("accord-log-writer".into())
            .spawn(move || writer.run(requests))
            .map_err(|error| {
                StoreError::Unavailable(format!("cannot start the writer: {error}"))
            })?;
        Ok(Self {
            db,
            tree,
            appends,
            head,
            writer_thread: Mutex::new(Some(writer_thread)),
        })
    }

    fn read_position(&self, position: u64) -> Result<RecordedEvent, StoreError> {
        let bytes = self.tree.get(keys::event_key(position))?.ok_or_else(|| {
            StoreError::Corrupt(format!("index points at missing position {position}"))
        })?;
        Ok(decode_record(&bytes)?.event)
    }

    /// Returns the raw framed bytes at `position`, for verification and export.
    pub fn read_raw_at(&self, position: u64) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .tree
            .get(keys::event_key(position))?
            .map(|bytes| bytes.to_vec()))
    }

    /// Maps up to `max_count` durable records from `from_position` on.
    fn durable_records<T>(
        &self,
        from_position: u64,
        max_count: usize,
        mut map: impl FnMut(u64, ::sled::IVec) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let head = self.head();
        let from_position = from_position.max(1);
        if from_position > head || max_count == 0 {
            return Ok(Vec::new());
        }
        self.tree
            .range(keys::event_key(from_position)..=keys::event_key(head))
            .take(max_count)
            .map(|entry| {
                let (key, bytes) = entry?;
                let position = keys::position_of_event_key(&key)
                    .ok_or_else(|| StoreError::Corrupt("malformed record key".into()))?;
                map(position, bytes)
            })
            .collect()
    }

    async fn wait_until_durable(&self, position: u64) -> Result<(), StoreError> {
        let mut head = self.head.clone();
        head.wait_for(|head| *head >= position)
            .await
            .map(|_| ())
            .map_err(|_| StoreError::Unavailable("the log writer stopped".into()))
    }
}

#[async_trait::async_trait]
impl EventLog for SledLog {
    async fn append(&self, items: Vec<AppendItem>) -> Result<Vec<AppendOutcome>, StoreError> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
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
        self.durable_records(from_position, max_count, |_, bytes| {
            Ok(decode_record(&bytes)?.event)
        })
    }

    async fn read_raw(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RawRecord>, StoreError> {
        self.durable_records(from_position, max_count, |position, bytes| {
            Ok(RawRecord {
                position,
                bytes: bytes.to_vec(),
            })
        })
    }

    async fn read_stream(
        &self,
        agreement_id: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let head = self.head();
        let start = keys::stream_key(agreement_id, from_version.max(1));
        let end = keys::stream_key(agreement_id, u64::MAX);
        let mut events = Vec::new();
        for entry in self.tree.range(start..=end) {
            if events.len() >= max_count {
                break;
            }
            let (_, position) = entry?;
            let position = keys::decode_u64(&position)
                .ok_or_else(|| StoreError::Corrupt("stream index entry too short".into()))?;
            if position > head {
                break;
            }
            events.push(self.read_position(position)?);
        }
        Ok(events)
    }

    async fn locate(&self, agreement_id: &str, version: u64) -> Result<Option<u64>, StoreError> {
        let head = self.head();
        Ok(self
            .tree
            .get(keys::stream_key(agreement_id, version))?
            .and_then(|bytes| keys::decode_u64(&bytes))
            .filter(|position| *position <= head))
    }

    async fn import(&self, records: Vec<RawRecord>) -> Result<u64, StoreError> {
        let (reply, imported) = oneshot::channel();
        self.appends
            .send(WriterMessage::Import(records, reply))
            .await
            .map_err(|_| StoreError::Unavailable("the log is closed".into()))?;
        imported
            .await
            .map_err(|_| StoreError::Unavailable("the log writer stopped".into()))?
    }

    async fn find_command(&self, command_id: &str) -> Result<Option<CommandRecord>, StoreError> {
        let Some(entry) = self.tree.get(keys::command_key(command_id))? else {
            return Ok(None);
        };
        let (fingerprint, position) = writer::decode_command_entry(&entry)?;
        self.wait_until_durable(position).await?;
        let event = self.read_position(position)?;
        Ok(Some(CommandRecord {
            fingerprint,
            outcome: AppendOutcome {
                agreement_id: event.agreement_id,
                version: event.version,
                position: event.position,
                recorded_at: event.recorded_at,
                duplicate: true,
            },
        }))
    }

    fn head(&self) -> u64 {
        *self.head.borrow()
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }

    async fn stats(&self) -> Result<LogStats, StoreError> {
        let head = self.head();
        let agreement_count = self
            .tree
            .get(keys::AGREEMENT_COUNT)?
            .and_then(|bytes| keys::decode_u64(&bytes))
            .unwrap_or(0);
        Ok(LogStats {
            head_position: head,
            event_count: head,
            agreement_count,
            disk_bytes: self.db.size_on_disk()?,
        })
    }

    async fn close(&self) -> Result<(), StoreError> {
        let (reply, closed) = oneshot::channel();
        if self.appends.send(WriterMessage::Close(reply)).await.is_ok() {
            closed
                .await
                .map_err(|_| StoreError::Unavailable("the log writer stopped".into()))??;
        }
        let thread = self
            .writer_thread
            .lock()
            .map_err(|_| StoreError::Unavailable("writer handle poisoned".into()))?
            .take();
        if let Some(thread) = thread {
            tokio::task::spawn_blocking(move || thread.join())
                .await
                .map_err(|error| StoreError::Unavailable(error.to_string()))?
                .map_err(|_| StoreError::Unavailable("the log writer panicked".into()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
