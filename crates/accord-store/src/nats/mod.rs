//! The NATS JetStream backend: the log is one JetStream stream (replicated
//! across a cluster), one subject per agreement, position = stream sequence.
//! Appends are conditional on the subject's last sequence
//! (`Nats-Expected-Last-Subject-Sequence`), carry the command id as
//! `Nats-Msg-Id`, and go as one atomic batch when there are several. Each
//! node follows the stream into a local replica (see [`replica`]) that
//! answers reads, the stream index and the command index, so that a retry
//! is answered `duplicate = true` long after the server's duplicate window.

mod batch;
mod connect;
mod follower;
mod import;
mod outgoing;
mod publish;
mod quarantine;
mod replica;
mod replica_check;
mod stream_check;
mod subject;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use accord_domain::RecordedEvent;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::ImportSource;
use crate::import_gate::ImportGate;
use crate::published_head::LatestCheckpoint;
use crate::tree::reader::TreeReader;
use crate::{
    AppendItem, AppendOutcome, CheckpointKeys, CommandRecord, CommitObserver, EventLog, LogStats,
    Quarantined, RawRecord, SignedCheckpoint, StoreError, TreeHash,
};
use connect::Connected;
pub use connect::redacted as redacted_nats_servers;
use follower::Freshness;
use quarantine::QuarantineBook;
use replica::Replica;

/// How to reach the stream and where to keep the node's replica.
#[derive(Clone)]
pub struct NatsOptions {
    /// Comma-separated server URLs, such as `nats://10.0.0.1:4222,nats://10.0.0.2:4222`.
    pub servers: String,
    /// The JetStream stream holding the log.
    pub stream: String,
    /// Copies of the stream the cluster keeps (1, or 3 in production).
    pub replicas: usize,
    /// Directory of this node's replica.
    pub replica_path: PathBuf,
    /// Bytes of sled's page cache for the replica.
    pub cache_capacity_bytes: u64,
    /// How long a request to NATS may take.
    pub request_timeout: Duration,
    /// How long the server itself remembers a command id (`Nats-Msg-Id`)
    /// for a new stream; the replica's command index covers the rest.
    pub duplicate_window: Duration,
    /// Told about every append the stream acknowledged (one "group" per
    /// publish, its acknowledgement time as the "fsync"), and about a
    /// replica that cannot follow the stream.
    pub observer: Option<Arc<dyn CommitObserver>>,
    /// How the node proves who it is to NATS, and whom it trusts.
    pub security: NatsSecurity,
    /// The key the replica's checkpoints are signed with, and the keys an
    /// existing replica's checkpoint may be signed by.
    pub keys: CheckpointKeys,
}

/// Credentials and TLS for the connection to NATS. A user and password go
/// in the server URLs (`nats://USER:PASSWORD@HOST:PORT`).
#[derive(Clone, Debug, Default)]
pub struct NatsSecurity {
    /// A `.creds` file (JWT and nkey seed) from `nsc` or the operator.
    pub creds_file: Option<PathBuf>,
    /// A file holding an nkey seed (`SU...`).
    pub nkey_file: Option<PathBuf>,
    /// PEM authority to trust for the servers' TLS certificates; TLS is
    /// then required.
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate and key, for servers that verify clients.
    pub tls_client: Option<(PathBuf, PathBuf)>,
}

impl NatsOptions {
    /// Returns the defaults for `servers`, with the replica in
    /// `replica_path` signed with `keys`.
    pub fn new(
        servers: impl Into<String>,
        replica_path: impl Into<PathBuf>,
        keys: CheckpointKeys,
    ) -> Self {
        Self {
            servers: servers.into(),
            stream: "ACCORD".into(),
            replicas: 1,
            replica_path: replica_path.into(),
            cache_capacity_bytes: crate::DEFAULT_CACHE_BYTES,
            request_timeout: Duration::from_secs(5),
            duplicate_window: Duration::from_secs(120),
            observer: None,
            security: NatsSecurity::default(),
            keys,
        }
    }
}

/// How long a replica may stay far behind the stream (or unheard from)
/// before the node says it is degraded (the follower checks every 2 s on a
/// quiet stream).
const FRESH_WITHIN: Duration = Duration::from_secs(10);

/// An event log on a NATS JetStream stream, read through this node's replica.
pub struct NatsLog {
    connected: Connected,
    options: NatsOptions,
    replica: Arc<Mutex<Replica>>,
    reader: TreeReader,
    freshness: Arc<Freshness>,
    failure: watch::Receiver<Option<StoreError>>,
    /// Stops the follower on `close`.
    stop: CancellationToken,
    /// Stops it when the log is dropped without `close`.
    _stop_on_drop: DropGuard,
    follower: Mutex<Option<JoinHandle<()>>>,
    closed: AtomicBool,
    /// Open unless an import runs on this node: its appends are refused meanwhile.
    imports: ImportGate,
    checkpoint: LatestCheckpoint,
    /// The last stream sequence the replica applied (a quarantined message
    /// included): what syncs wait for.
    followed: watch::Receiver<u64>,
    quarantine: QuarantineBook,
}

impl NatsLog {
    /// Connects, checks the server, creates the stream if missing, opens the
    /// replica and starts following the stream from the replica's head.
    pub async fn open(options: NatsOptions) -> Result<Self, StoreError> {
        let connected = connect::connect(&options).await?;
        let (replica, reader) = replica_check::open_replica(
            &connected.stream,
            &options.replica_path,
            options.cache_capacity_bytes,
            &options.keys,
        )
        .await?;
        let checkpoint = replica.latest_checkpoint();
        let followed = replica.watch_followed();
        let quarantine = replica.quarantine();
        let replica = Arc::new(Mutex::new(replica));
        let freshness = Arc::new(Freshness::default());
        let (failure_sender, failure) = watch::channel(None);
        let stop = CancellationToken::new();
        let follower = tokio::spawn(follower::follow(
            connected.stream.clone(),
            Arc::clone(&replica),
            Arc::clone(&freshness),
            failure_sender,
            stop.clone(),
        ));
        tracing::info!(
            servers = %connect::redacted(&options.servers),
            stream = %options.stream,
            server_version = %connected.server_version,
            atomic_batches = connected.atomic_batches,
            "event log on NATS JetStream"
        );
        let log = Self {
            connected,
            options,
            replica,
            reader,
            freshness,
            failure,
            stop: stop.clone(),
            _stop_on_drop: stop.drop_guard(),
            follower: Mutex::new(Some(follower)),
            closed: AtomicBool::new(false),
            imports: ImportGate::default(),
            checkpoint,
            followed,
            quarantine,
        };
        log.catch_up().await?;
        Ok(log)
    }

    /// Waits, however long it takes, until the replica holds what the
    /// stream held at open, logging progress: a new node copies the whole
    /// stream before it serves.
    async fn catch_up(&self) -> Result<(), StoreError> {
        let asked_at = Instant::now();
        let target = self.stream_state().await?.last_sequence;
        let mut failure = self.failure.clone();
        loop {
            let head = *self.followed.borrow();
            if head >= target {
                break;
            }
            tracing::info!(
                replica = head,
                stream = target,
                "replica catching up with the stream"
            );
            tokio::select! {
                _ = tokio::time::timeout(Duration::from_secs(5), self.wait_followed(target)) => {}
                _ = failure.wait_for(Option::is_some) => return self.check_usable(),
            }
        }
        self.freshness.mark(asked_at);
        Ok(())
    }

    /// Waits until the replica has applied stream sequence `position`.
    async fn wait_followed(&self, position: u64) -> Result<(), StoreError> {
        let mut followed = self.followed.clone();
        followed
            .wait_for(|followed| *followed >= position)
            .await
            .map(|_| ())
            .map_err(|_| StoreError::Unavailable("the replica stopped".into()))
    }

    /// The stream's state as its leader reports it.
    async fn stream_state(&self) -> Result<async_nats::jetstream::stream::State, StoreError> {
        let info = self
            .connected
            .stream
            .get_info()
            .await
            .map_err(|error| StoreError::failed("stream info", error))?;
        Ok(info.state)
    }

    /// The node's connection to NATS, for what else it keeps in the
    /// cluster (the consumer groups).
    pub fn client(&self) -> async_nats::Client {
        self.connected.client.clone()
    }

    /// JetStream over the node's connection.
    pub fn jetstream(&self) -> async_nats::jetstream::Context {
        self.connected.jetstream.clone()
    }

    /// The stream the log is, and the copies the cluster keeps of it.
    pub fn stream(&self) -> (&str, usize) {
        (&self.options.stream, self.options.replicas)
    }

    /// The nats-server version the node is connected to.
    pub fn server_version(&self) -> &str {
        &self.connected.server_version
    }

    /// Refuses reads once the log is closed. A replica that stopped
    /// following the stream (a message that is not an Accord record, say)
    /// still holds a consistent log up to the message before: it is read.
    fn check_open(&self) -> Result<(), StoreError> {
        if self.closed.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable("the log is closed".into()));
        }
        Ok(())
    }

    /// Refuses appends (and reads that need the stream) once the log is
    /// closed or the replica stopped following the stream.
    fn check_usable(&self) -> Result<(), StoreError> {
        self.check_open()?;
        match &*self.failure.borrow() {
            Some(error) => Err(error.clone()),
            None => Ok(()),
        }
    }

    /// Waits until the replica holds every message the stream held when called.
    async fn sync(&self) -> Result<(), StoreError> {
        let asked_at = Instant::now();
        self.wait_applied(self.stream_state().await?.last_sequence)
            .await?;
        self.freshness.mark(asked_at);
        Ok(())
    }

    /// Syncs unless the replica was known complete recently enough that
    /// anything it may lack is still inside the server's duplicate window.
    async fn ensure_fresh(&self) -> Result<(), StoreError> {
        if self.freshness.within(self.connected.duplicate_window / 4) {
            return Ok(());
        }
        self.sync().await
    }

    /// Waits until the replica has applied `position`.
    async fn wait_applied(&self, position: u64) -> Result<(), StoreError> {
        let mut failure = self.failure.clone();
        tokio::select! {
            waited = tokio::time::timeout(self.options.request_timeout, self.wait_followed(position)) => {
                waited.map_err(|_| StoreError::Unavailable(format!(
                    "this node's replica has not reached position {position} within {:?} (it is at {})",
                    self.options.request_timeout,
                    self.reader.head()
                )))?
            }
            _ = failure.wait_for(Option::is_some) => self.check_usable(),
        }
    }
}

#[async_trait::async_trait]
impl EventLog for NatsLog {
    async fn append(&self, items: Vec<AppendItem>) -> Result<Vec<AppendOutcome>, StoreError> {
        self.check_usable()?;
        if items.is_empty() {
            return Ok(Vec::new());
        }
        self.imports.check_append()?;
        self.ensure_fresh().await?;
        let started = Instant::now();
        let outcomes = publish::append(self, &items).await?;
        let appended = outcomes.iter().filter(|outcome| !outcome.duplicate).count();
        if appended > 0
            && let Some(observer) = &self.options.observer
        {
            observer.committed(1, appended, started.elapsed());
        }
        Ok(outcomes)
    }

    async fn read_log(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check_open()?;
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
        self.check_open()?;
        self.reader
            .near_head(from_position, move |reader| {
                reader.read_raw(from_position, max_count)
            })
            .await
    }

    async fn read_positions(&self, positions: &[u64]) -> Result<Vec<RecordedEvent>, StoreError> {
        self.check_open()?;
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
        self.check_open()?;
        let agreement_id = agreement_id.to_owned();
        self.reader
            .off_thread(move |reader| reader.read_stream(&agreement_id, from_version, max_count))
            .await
    }

    async fn tree_root(&self, size: u64) -> Result<TreeHash, StoreError> {
        self.check_open()?;
        self.reader
            .off_thread(move |reader| reader.tree_root(size))
            .await
    }

    async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<TreeHash>, StoreError> {
        self.check_open()?;
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
        self.check_open()?;
        self.reader
            .off_thread(move |reader| reader.tree_tile(level, index, width))
            .await
    }

    async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<TreeHash>, StoreError> {
        self.check_open()?;
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
        self.check_open()?;
        let agreement_id = agreement_id.to_owned();
        self.reader
            .off_thread(move |reader| {
                reader.stream_positions(&agreement_id, from_version, max_count)
            })
            .await
    }

    async fn locate(&self, agreement_id: &str, version: u64) -> Result<Option<u64>, StoreError> {
        self.check_open()?;
        self.reader.locate(agreement_id, version)
    }

    async fn import(&self, source: Box<dyn ImportSource>) -> Result<u64, StoreError> {
        self.check_usable()?;
        let _running = self.imports.begin()?;
        import::import(self, source).await
    }

    async fn find_command(&self, command_id: &str) -> Result<Option<CommandRecord>, StoreError> {
        self.check_open()?;
        if let Some(found) = self.reader.find_command(command_id).await? {
            return Ok(Some(found));
        }
        // Another node may have appended it a moment ago.
        self.sync().await?;
        self.reader.find_command(command_id).await
    }

    async fn catch_up_agreement(&self, agreement_id: &str) -> Result<bool, StoreError> {
        self.check_usable()?;
        publish::refresh(self, agreement_id).await?;
        Ok(true)
    }

    async fn index_digest(
        &self,
        keys: crate::DigestKeys,
        through: u64,
    ) -> Result<Option<crate::IndexDigest>, StoreError> {
        self.check_open()?;
        self.reader
            .off_thread(move |reader| reader.index().digest(&keys, through).map(Some))
            .await
    }

    async fn command_position(&self, command_id: &str) -> Result<Option<u64>, StoreError> {
        // The replica's own index: what verification checks the replica against.
        self.check_open()?;
        self.reader.command_position(command_id)
    }

    fn head(&self) -> u64 {
        self.reader.head()
    }

    async fn caught_up_head(&self) -> Result<u64, StoreError> {
        self.check_usable()?;
        self.sync().await?;
        Ok(self.reader.head())
    }

    fn degraded(&self) -> Option<String> {
        if let Some(error) = self.failure.borrow().as_ref() {
            return Some(format!("the replica stopped following the stream: {error}"));
        }
        if self.connected.client.connection_state() != async_nats::connection::State::Connected {
            return Some("not connected to NATS".into());
        }
        if !self.freshness.near_head_within(FRESH_WITHIN) {
            return Some(format!(
                "this node's replica has been more than 10,000 messages behind the stream for {} s",
                FRESH_WITHIN.as_secs()
            ));
        }
        None
    }

    fn watch_head(&self) -> watch::Receiver<u64> {
        self.reader.watch_head()
    }

    fn checkpoint(&self) -> Option<SignedCheckpoint> {
        self.checkpoint.get()
    }

    fn quarantined(&self) -> Quarantined {
        self.quarantine.get()
    }

    async fn quarantined_between(&self, from: u64, to: u64) -> Result<u64, StoreError> {
        self.reader
            .off_thread(move |reader| quarantine::count_between(reader.tree(), from, to))
            .await
    }

    async fn stats(&self) -> Result<LogStats, StoreError> {
        self.check_open()?;
        let state = self.stream_state().await?;
        let head = self.head();
        Ok(LogStats {
            head_position: head,
            event_count: head,
            agreement_count: self.reader.agreement_count()?,
            disk_bytes: state.bytes,
        })
    }

    async fn close(&self) -> Result<(), StoreError> {
        self.closed.store(true, Ordering::Release);
        self.stop.cancel();
        let follower = self.follower.lock().take();
        if let Some(follower) = follower {
            let _ = follower.await;
        }
        let replica = Arc::clone(&self.replica);
        tokio::task::spawn_blocking(move || replica.lock().flush())
            .await
            .map_err(|error| StoreError::failed("replica flush task", error))?
    }
}
