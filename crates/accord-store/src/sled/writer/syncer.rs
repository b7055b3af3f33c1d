//! The syncer: a pipelined sync. The writer stages and writes group N+1
//! into sled's memory while this thread syncs group N; a group is answered
//! only after a sync that began after it was written, so nothing is
//! acknowledged before it is durable.
//!
//! The hand-over is a rendezvous: the writer waits with at most one written
//! group while a sync runs, so the requests that arrive meanwhile gather
//! into the next group instead of many small ones, each with its own
//! signed checkpoint. Groups that are waiting when a sync starts share it.
//!
//! After a sync the syncer adds each group's index entries to the tail,
//! publishes its head, tells the writer the group is durable (so that the
//! writer stops remembering its commands: the index answers for them now)
//! and answers its callers, group by group in order. A failed sync fails
//! closed: that group and every later one are answered with the error.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{CommitObserver, Reply, WriteFailure};
use crate::durable::SyncedDb;
use crate::published_head::HeadPublisher;
use crate::tree::index::indexer::IndexWriter;
use crate::tree::index::window::IndexEntry;
use crate::tree::open::LogState;
use crate::{AppendOutcome, StoreError};

/// Groups that share one sync at most (the writer has at most one waiting,
/// so this bounds nothing in practice; it keeps the loop finite).
const GROUPS_PER_SYNC: usize = 8;

/// A group written into sled's memory, waiting for its sync.
pub(super) struct WrittenGroup {
    /// The writer's count of groups, from 1.
    pub(super) sequence: u64,
    /// The log after this group.
    pub(super) state: LogState,
    pub(super) entries: Vec<IndexEntry>,
    pub(super) answers: Vec<(Reply, Vec<AppendOutcome>)>,
    /// Refused requests, answered after the group like its accepted ones,
    /// so that the state a caller was refused against can be read at once.
    pub(super) refusals: Vec<(Reply, StoreError)>,
    pub(super) requests: usize,
    pub(super) events: usize,
    /// sled keys the group wrote.
    pub(super) keys: usize,
}

impl WrittenGroup {
    pub(super) fn answer_with(self, error: &StoreError) {
        for (reply, _) in self.answers {
            let _ = reply.send(Err(error.clone()));
        }
        answer_refusals(self.refusals);
    }

    pub(super) fn answer(self) {
        for (reply, outcomes) in self.answers {
            let _ = reply.send(Ok(outcomes));
        }
        answer_refusals(self.refusals);
    }
}

fn answer_refusals(refusals: Vec<(Reply, StoreError)>) {
    for (reply, error) in refusals {
        let _ = reply.send(Err(error));
    }
}

/// What the syncer thread shares with the writer.
pub(super) struct SyncerShared {
    pub(super) db: Arc<SyncedDb>,
    pub(super) published: HeadPublisher,
    pub(super) failure: WriteFailure,
    pub(super) observer: Option<Arc<dyn CommitObserver>>,
    /// The sequence of the last group durable and in the index tail.
    pub(super) durable: Arc<AtomicU64>,
}

/// The writer's handle on a running syncer.
pub(super) struct Syncer {
    sender: SyncSender<WrittenGroup>,
    thread: JoinHandle<IndexWriter>,
}

impl Syncer {
    /// Starts a syncer that adds durable groups' entries to `index`.
    pub(super) fn start(shared: SyncerShared, index: IndexWriter) -> Result<Self, StoreError> {
        let (sender, groups) = sync_channel(0);
        let thread = std::thread::Builder::new()
            .name("accord-log-syncer".into())
            .spawn(move || run(&shared, index, &groups))
            .map_err(|error| StoreError::failed("cannot start the log syncer", error))?;
        Ok(Self { sender, thread })
    }

    /// Hands a written group over, waiting while the syncer still holds the
    /// one before it. Gives the group back if the syncer is gone.
    pub(super) fn hand_over(&self, group: WrittenGroup) -> Result<(), Box<WrittenGroup>> {
        self.sender.send(group).map_err(|failed| Box::new(failed.0))
    }

    /// Waits until every group handed over is synced and answered, stops
    /// the thread, and gives the index writer back.
    pub(super) fn stop(self) -> Result<IndexWriter, StoreError> {
        drop(self.sender);
        self.thread
            .join()
            .map_err(|_| StoreError::Unavailable("the log syncer panicked".into()))
    }
}

fn run(shared: &SyncerShared, index: IndexWriter, groups: &Receiver<WrittenGroup>) -> IndexWriter {
    while let Ok(first) = groups.recv() {
        let mut batch = vec![first];
        while batch.len() < GROUPS_PER_SYNC {
            match groups.try_recv() {
                Ok(group) => batch.push(group),
                Err(_) => break,
            }
        }
        sync_and_answer(shared, &index, batch);
    }
    index
}

fn sync_and_answer(shared: &SyncerShared, index: &IndexWriter, batch: Vec<WrittenGroup>) {
    let events: usize = batch.iter().map(|group| group.events).sum();
    let synced = shared.failure.check().and_then(|()| {
        if events == 0 {
            // Only duplicates and refusals: they wait for the groups before
            // them, which were synced before these were handed over.
            return Ok(Duration::ZERO);
        }
        let started = Instant::now();
        shared.db.sync()?;
        Ok(started.elapsed())
    });
    let fsync = match synced {
        Ok(fsync) => fsync,
        Err(error) => {
            fail(shared, &error, events);
            for group in batch {
                group.answer_with(&error);
            }
            return;
        }
    };
    if events > 0
        && let Some(observer) = &shared.observer
    {
        let requests = batch.iter().map(|group| group.requests).sum();
        observer.committed(requests, events, fsync);
        observer.wrote_keys(batch.iter().map(|group| group.keys).sum());
    }
    let mut groups = batch.into_iter();
    while let Some(mut group) = groups.next() {
        // Durable: its index entries join the tail before anyone is
        // answered or can read the new head.
        let entries = std::mem::take(&mut group.entries);
        if let Err(error) = shared.failure.check().and_then(|()| index.add(entries)) {
            let rest: Vec<WrittenGroup> = std::iter::once(group).chain(groups).collect();
            fail(shared, &error, rest.iter().map(|group| group.events).sum());
            for group in rest {
                group.answer_with(&error);
            }
            return;
        }
        if group.events > 0 {
            shared
                .published
                .publish(group.state.head, group.state.checkpoint);
        }
        shared.durable.store(group.sequence, Ordering::Release);
        group.answer();
    }
}

/// Fails the log closed (see `super::fail_closed`).
fn fail(shared: &SyncerShared, error: &StoreError, events: usize) {
    let head = shared.published.head();
    super::fail_closed(
        &shared.failure,
        shared.observer.as_ref(),
        error,
        events,
        head,
    );
}
