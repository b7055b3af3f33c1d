//! The background indexer: writes the stream and command index entries of
//! durable records to the tree in large runs, off the group commit.
//!
//! A group commit writes only its records (one block or a few per group);
//! writing an index entry per event there cost a third of the CPU of a
//! single append and most of its bytes on disk (sled rewrites a page for
//! each scattered key). The indexer takes the entries of many groups at
//! once, writes them with the mark `keys::INDEXED` in one atomic batch and
//! then drops them from the [`IndexTail`] readers consult first. Its batch
//! needs no sync of its own: a crash loses the batch and its mark together,
//! and the next open derives the tail again from the records after the mark.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::writer::WriteFailure;
use crate::StoreError;
use crate::index_tail::{IndexEntry, IndexTail};
use crate::log_batch::LogBatch;

/// Entries written to the tree in one batch at most.
const RUN_EVENTS: usize = 16_384;
/// Entries are written once none arrived for this long, however few.
const IDLE: Duration = Duration::from_millis(50);
/// Entries wait at most this long before they are written.
const MAX_WAIT: Duration = Duration::from_secs(1);
/// Groups handed over and not yet taken before the writer waits: bounds
/// the tail when the indexer falls behind.
const QUEUED_GROUPS: usize = 256;

/// The writer's end of the indexer.
pub(crate) struct Indexer {
    entries: SyncSender<Vec<IndexEntry>>,
    thread: JoinHandle<Result<(), StoreError>>,
}

impl Indexer {
    /// Starts indexing into `tree`; `tail` holds what is not written yet.
    pub(crate) fn start(
        tree: ::sled::Tree,
        tail: Arc<IndexTail>,
        failure: WriteFailure,
    ) -> Result<Self, StoreError> {
        let (entries, received) = std::sync::mpsc::sync_channel(QUEUED_GROUPS);
        let thread = std::thread::Builder::new()
            .name("accord-log-indexer".into())
            .spawn(move || run(&tree, &tail, &failure, &received))
            .map_err(|error| StoreError::failed("cannot start the indexer", error))?;
        Ok(Self { entries, thread })
    }

    /// Hands over the entries of records now durable (already in the tail).
    pub(crate) fn index(&self, entries: Vec<IndexEntry>) {
        // A stopped indexer has failed the log: the entries stay in the tail.
        let _ = self.entries.send(entries);
    }

    /// Writes everything handed over and stops.
    pub(crate) fn finish(self) -> Result<(), StoreError> {
        drop(self.entries);
        self.thread
            .join()
            .map_err(|_| StoreError::Unavailable("the log indexer panicked".into()))?
    }
}

fn run(
    tree: &::sled::Tree,
    tail: &IndexTail,
    failure: &WriteFailure,
    received: &Receiver<Vec<IndexEntry>>,
) -> Result<(), StoreError> {
    let mut run = Vec::new();
    let mut run_started = Instant::now();
    loop {
        let wait = if run.is_empty() {
            MAX_WAIT
        } else {
            IDLE.min(MAX_WAIT.saturating_sub(run_started.elapsed()))
        };
        let closed = match received.recv_timeout(wait) {
            Ok(entries) => {
                if run.is_empty() {
                    run_started = Instant::now();
                }
                run.extend(entries);
                if run.len() < RUN_EVENTS && run_started.elapsed() < MAX_WAIT {
                    continue;
                }
                false
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        if !run.is_empty() {
            if let Err(error) = write_run(tree, tail, &run) {
                tracing::error!(%error, "writing the log's index entries failed; the log refuses reads and writes until it is reopened");
                failure.set(error.clone());
                return Err(error);
            }
            run.clear();
        }
        if closed {
            return Ok(());
        }
    }
}

/// Writes the entries of `run` (consecutive records) and the mark after them.
fn write_run(tree: &::sled::Tree, tail: &IndexTail, run: &[IndexEntry]) -> Result<(), StoreError> {
    let Some(last) = run.last() else {
        return Ok(());
    };
    let mut batch = LogBatch::default();
    for entry in run {
        batch.push_index(entry);
    }
    tree.apply_batch(batch.into_index_batch(last.position))?;
    tail.remove(run);
    Ok(())
}
