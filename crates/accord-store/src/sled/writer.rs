//! The one task that appends: it takes every pending append, checks
//! idempotency keys and expected versions against the latest state, writes
//! the accepted ones in one atomic batch, fsyncs once, and only then answers.
//!
//! A failed write fails closed: the head stays at the last durable position,
//! nothing more is written or read until the log is reopened from disk.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use accord_domain::{RecordedEvent, Timestamp};
use tokio::sync::{mpsc, oneshot};

use crate::ClearingMap;
use crate::durable::SyncedDb;
use crate::published_head::HeadPublisher;
use crate::tree::batch::LogBatch;
use crate::tree::index::indexer::IndexWriter;
use crate::tree::open::LogState;
use crate::{AppendItem, AppendOutcome, Fingerprint, ImportSource, StoreError, encode_record};

mod import;

/// Told about every group commit, for metrics.
pub trait CommitObserver: Send + Sync {
    /// A group of `appends` requests holding `events` events was made durable.
    fn committed(&self, appends: usize, events: usize, fsync: Duration);

    /// A group commit (records in blocks, the counter and the checkpoint)
    /// or the indexer (a window of index entries) wrote `keys` keys into
    /// the log's tree: what the write path costs the store, per event.
    fn wrote_keys(&self, _keys: usize) {}

    /// Writing to the store failed; appends are answered with `error`.
    fn failed(&self, _error: &StoreError) {}
}

type Reply = oneshot::Sender<Result<Vec<AppendOutcome>, StoreError>>;

/// An append waiting for the writer.
pub(crate) struct PendingAppend {
    pub(crate) items: Vec<AppendItem>,
    pub(crate) reply: Reply,
}

/// What the writer is asked to do.
pub(crate) enum WriterMessage {
    Append(PendingAppend),
    Import(
        Box<dyn ImportSource>,
        oneshot::Sender<Result<u64, StoreError>>,
    ),
    Close(oneshot::Sender<Result<(), StoreError>>),
}

/// The first write that failed, shared by the writer and the log's readers:
/// once set, the log refuses reads and writes until it is reopened, since
/// sled's memory may hold a group that never became durable.
#[derive(Clone, Default)]
pub(crate) struct WriteFailure(Arc<OnceLock<StoreError>>);

impl WriteFailure {
    fn set(&self, error: StoreError) {
        let _ = self.0.set(error);
    }

    /// Refuses anything after a failed write.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        match self.0.get() {
            None => Ok(()),
            Some(error) => Err(StoreError::Unavailable(format!(
                "the log is being reopened after a failed write ({error})"
            ))),
        }
    }
}

/// Bytes of stream heads remembered before the cache is dropped and refilled
/// from disk (about 700,000 agreements with ids of 30 characters).
const VERSION_CACHE_BYTES: usize = 64 * 1024 * 1024;

/// What the writer writes to: the database it syncs, the log's tree, and
/// the indexer of its index tail.
pub(crate) struct WriterStore {
    pub(crate) db: Arc<SyncedDb>,
    pub(crate) tree: ::sled::Tree,
    pub(crate) index: IndexWriter,
    /// The Merkle tree's right edge at the head.
    pub(crate) frontier: accord_tlog::Frontier,
}

pub(crate) struct Writer {
    db: Arc<SyncedDb>,
    tree: ::sled::Tree,
    index: IndexWriter,
    state: LogState,
    /// The Merkle tree's right edge at the head (`state.head` leaves).
    frontier: accord_tlog::Frontier,
    stream_versions: ClearingMap<u64>,
    published: HeadPublisher,
    /// Shared with the readers: set once a write failed.
    failure: WriteFailure,
    max_group_events: usize,
    observer: Option<Arc<dyn CommitObserver>>,
}

/// Changes accepted into the group being built, not yet written.
#[derive(Default)]
struct Group {
    writes: LogBatch,
    stream_versions: HashMap<String, u64>,
    commands: HashMap<String, (Fingerprint, AppendOutcome)>,
    answers: Vec<(Reply, Vec<AppendOutcome>)>,
}

impl Writer {
    pub(crate) fn new(
        store: WriterStore,
        state: LogState,
        published: HeadPublisher,
        failure: WriteFailure,
        max_group_events: usize,
        observer: Option<Arc<dyn CommitObserver>>,
    ) -> Self {
        let WriterStore {
            db,
            tree,
            index,
            frontier,
        } = store;
        Self {
            db,
            tree,
            index,
            state,
            frontier,
            stream_versions: ClearingMap::new(VERSION_CACHE_BYTES, |_| 0),
            published,
            failure,
            max_group_events: max_group_events.max(1),
            observer,
        }
    }

    pub(crate) fn run(mut self, mut requests: mpsc::Receiver<WriterMessage>) {
        let mut close_reply = None;
        while let Some(message) = requests.blocking_recv() {
            let mut pending = Vec::new();
            let mut events = 0;
            let mut import = None;
            match message {
                WriterMessage::Append(append) => {
                    events += append.items.len();
                    pending.push(append);
                }
                WriterMessage::Import(source, reply) => import = Some((source, reply)),
                WriterMessage::Close(reply) => close_reply = Some(reply),
            }
            // A group stops at `max_group_events`, so that callers answered
            // by one group prepare their next requests while the next group
            // is written.
            while close_reply.is_none() && import.is_none() && events < self.max_group_events {
                match requests.try_recv() {
                    Ok(WriterMessage::Append(append)) => {
                        events += append.items.len();
                        pending.push(append);
                    }
                    Ok(WriterMessage::Import(source, reply)) => import = Some((source, reply)),
                    Ok(WriterMessage::Close(reply)) => close_reply = Some(reply),
                    Err(_) => break,
                }
            }
            if !pending.is_empty() {
                self.commit_group(pending);
            }
            if let Some((source, reply)) = import {
                let _ = reply.send(self.import_all(source));
            }
            if close_reply.is_some() {
                break;
            }
        }
        requests.close();
        // Answer whatever arrived after the close request: the log is closed.
        while let Ok(message) = requests.try_recv() {
            match message {
                WriterMessage::Append(append) => {
                    let _ = append
                        .reply
                        .send(Err(StoreError::Unavailable("the log is closed".into())));
                }
                WriterMessage::Import(_, reply) => {
                    let _ = reply.send(Err(StoreError::Unavailable("the log is closed".into())));
                }
                WriterMessage::Close(reply) => {
                    let _ = reply.send(Ok(()));
                }
            }
        }
        // After a failed write sled's memory may hold a group that was never
        // acknowledged: it is not written out on purpose here. A clean close
        // writes the index tail, so that the next open derives nothing.
        let flushed = self
            .failure
            .check()
            .and_then(|()| self.index.finish())
            .and_then(|()| self.db.sync());
        if let Err(error) = &flushed {
            tracing::error!(%error, "final flush of the log failed");
        }
        if let Some(reply) = close_reply {
            let _ = reply.send(flushed);
        }
    }

    fn commit_group(&mut self, pending: Vec<PendingAppend>) {
        if let Err(error) = self.failure.check() {
            for append in pending {
                let _ = append.reply.send(Err(error.clone()));
            }
            return;
        }
        let requests = pending.len();
        let mut group = Group::default();
        let mut next = self.state.clone();
        next.last_recorded_nanos = now_nanos().max(next.last_recorded_nanos);
        // Refusals are answered after the group is durable, so that the state
        // a caller was refused against is one it can read back at once.
        let mut refusals = Vec::new();
        for append in pending {
            match self.stage(&mut group, &mut next, &append.items) {
                Ok(outcomes) => group.answers.push((append.reply, outcomes)),
                Err(error) => refusals.push((append.reply, error)),
            }
        }
        let answer_refusals = |refusals: Vec<(Reply, StoreError)>| {
            for (reply, error) in refusals {
                let _ = reply.send(Err(error));
            }
        };
        let events = group.writes.records();
        if events == 0 {
            for (reply, outcomes) in group.answers {
                let _ = reply.send(Ok(outcomes));
            }
            answer_refusals(refusals);
            return;
        }
        let checkpoint = self.published.sign(&next.chain_head());
        next.checkpoint = Some(checkpoint);
        let staged = std::mem::take(&mut group.writes).into_sled_write(
            next.agreement_count,
            &checkpoint,
            &mut self.frontier,
            &self.tree,
        );
        let mut keys = 0;
        let mut entries = Vec::new();
        let written = staged
            .and_then(|write| {
                keys = write.keys;
                entries = write.entries;
                self.tree.apply_batch(write.batch).map_err(StoreError::from)
            })
            .and_then(|()| {
                let started = Instant::now();
                self.db.sync()?;
                let fsync = started.elapsed();
                // Durable: its index entries join the tail before anyone
                // is answered or can read the new head.
                self.index.add(std::mem::take(&mut entries))?;
                Ok(fsync)
            });
        match written {
            Ok(fsync) => {
                if let Some(observer) = &self.observer {
                    observer.committed(requests, events, fsync);
                    observer.wrote_keys(keys);
                }
                self.state = next;
                self.stream_versions.extend(group.stream_versions);
                self.published
                    .publish(self.state.head, self.state.checkpoint);
                for (reply, outcomes) in group.answers {
                    let _ = reply.send(Ok(outcomes));
                }
                answer_refusals(refusals);
            }
            Err(error) => {
                self.fail(&error, events);
                for (reply, _) in group.answers {
                    let _ = reply.send(Err(error.clone()));
                }
                answer_refusals(refusals);
            }
        }
    }

    /// Fails closed after a write that did not become durable: the group may
    /// or may not be on disk (sled's memory holds it either way), so the
    /// head stays at the last durable position, readers are refused, and
    /// every later write is refused until the log is reopened from disk.
    fn fail(&mut self, error: &StoreError, events: usize) {
        tracing::error!(%error, events, head = self.state.head, "a write to the log failed; the log refuses reads and writes until it is reopened");
        self.failure.set(error.clone());
        if let Some(observer) = &self.observer {
            observer.failed(error);
        }
    }

    /// Checks one request against the group so far and stages its records.
    /// Nothing of a refused request is staged.
    fn stage(
        &self,
        group: &mut Group,
        next: &mut LogState,
        items: &[AppendItem],
    ) -> Result<Vec<AppendOutcome>, StoreError> {
        let mut staged = next.clone();
        let mut local_versions: Vec<(String, u64)> = Vec::new();
        let mut local_commands: Vec<(String, Fingerprint, AppendOutcome)> = Vec::new();
        let mut records: Vec<(&AppendItem, u64, u64, Vec<u8>)> = Vec::new();
        let mut outcomes = Vec::with_capacity(items.len());
        for item in items {
            let seen = local_commands
                .iter()
                .find(|(command_id, _, _)| *command_id == item.command_id)
                .map(|(_, fingerprint, outcome)| (*fingerprint, outcome.clone()))
                .or_else(|| group.commands.get(&item.command_id).cloned());
            let seen = match seen {
                Some(seen) => Some(seen),
                None => self.stored_command(&item.command_id)?,
            };
            if let Some((fingerprint, outcome)) = seen {
                if fingerprint != item.fingerprint {
                    return Err(StoreError::CommandIdConflict {
                        command_id: item.command_id.clone(),
                    });
                }
                outcomes.push(AppendOutcome {
                    duplicate: true,
                    ..outcome
                });
                continue;
            }

            let current = match local_versions
                .iter()
                .rev()
                .find(|(agreement_id, _)| *agreement_id == item.agreement_id)
            {
                Some((_, version)) => *version,
                None => self.current_version(group, &item.agreement_id)?,
            };
            item.expected
                .check(&item.agreement_id, current)
                .map_err(|_| StoreError::WrongExpectedVersion {
                    agreement_id: item.agreement_id.clone(),
                    expected: item.expected,
                    actual: current,
                })?;
            if current == 0 {
                if !item.event.opens_agreement() {
                    return Err(StoreError::WrongExpectedVersion {
                        agreement_id: item.agreement_id.clone(),
                        expected: item.expected,
                        actual: 0,
                    });
                }
                staged.agreement_count += 1;
            }

            let version = current + 1;
            staged.head += 1;
            let recorded = RecordedEvent {
                position: staged.head,
                agreement_id: item.agreement_id.clone(),
                version,
                event_id: uuid::Uuid::now_v7().into_bytes(),
                recorded_at: Timestamp::from_unix_nanos(staged.last_recorded_nanos),
                metadata: item.metadata.clone(),
                event: item.event.clone(),
            };
            let (bytes, hash) = encode_record(&recorded, &item.fingerprint, &staged.last_hash);
            staged.last_hash = hash;
            records.push((item, staged.head, version, bytes));
            let outcome = AppendOutcome::of(&recorded, false);
            local_versions.push((item.agreement_id.clone(), version));
            local_commands.push((item.command_id.clone(), item.fingerprint, outcome.clone()));
            outcomes.push(outcome);
        }

        *next = staged;
        for (item, position, version, bytes) in records {
            group.writes.push_record(
                position,
                &item.agreement_id,
                version,
                &bytes,
                Some(&item.command_id),
            );
        }
        group.stream_versions.extend(local_versions);
        for (command_id, fingerprint, outcome) in local_commands {
            group.commands.insert(command_id, (fingerprint, outcome));
        }
        Ok(outcomes)
    }

    fn current_version(&self, group: &Group, agreement_id: &str) -> Result<u64, StoreError> {
        if let Some(version) = group.stream_versions.get(agreement_id) {
            return Ok(*version);
        }
        if let Some(version) = self.stream_versions.get(agreement_id) {
            return Ok(*version);
        }
        Ok(self.index.index().last_version(agreement_id)?.0)
    }

    fn stored_command(
        &self,
        command_id: &str,
    ) -> Result<Option<(Fingerprint, AppendOutcome)>, StoreError> {
        Ok(self
            .index
            .index()
            .find_command(command_id)?
            .map(|found| (found.fingerprint, AppendOutcome::of(&found.event, true))))
    }
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
