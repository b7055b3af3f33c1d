//! The indexer thread writes full windows of the tail to the tree, one at
//! a time, in the order they filled. For each window: its stream chunks
//! and its command run with plain inserts (no batch: nothing else waits on
//! them, and sled's batches take a process-wide lock), a sync, the manifest
//! that moves `indexed` past the window, a sync, and only then the window
//! leaves memory.
//!
//! The merger thread keeps the number of command runs a lookup asks
//! logarithmic in the log: whenever [`MERGE_FANOUT`] runs share a tier it
//! merges them into one of the next tier (a page of each in memory), syncs,
//! lists the new run instead of them, and removes their keys once no lookup
//! holds them. It runs beside the indexer, so a long merge never holds up a
//! window, and stops between pages when the log closes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::LogIndex;
use super::runs::{MERGE_FANOUT, Run, RunMeta, command_hash};
use super::window::{IndexEntry, Window};
use crate::StoreError;
use crate::durable::SyncedDb;
use crate::tree::keys;
use crate::tree::stream_index::encode_chunk;

/// Positions per stored stream chunk at most; chunks also start at every
/// version that is a multiple of it (plus one), so that a window written
/// again after a crash writes the same keys and leaves no stale chunk.
const CHUNK_POSITIONS: u64 = 512;

/// Told how many keys the indexer wrote, for the store-writes metric.
pub(crate) type KeysWritten = Arc<dyn Fn(usize) + Send + Sync>;

/// The writer's handle on the indexer: adds entries, hands full windows
/// over (waiting while two are queued, so the tail stays bounded), and
/// stops the thread when dropped, after it wrote what was handed over.
pub(crate) struct IndexWriter {
    index: LogIndex,
    db: Arc<SyncedDb>,
    keys_written: Option<KeysWritten>,
    sender: Option<SyncSender<Arc<Window>>>,
    threads: Vec<JoinHandle<()>>,
    /// Tells the merger to stop between pages.
    stopping: Arc<AtomicBool>,
}

impl IndexWriter {
    /// Starts the indexer of `index` and hands it `sealed` (full windows
    /// found at open).
    pub(crate) fn start(
        index: LogIndex,
        db: Arc<SyncedDb>,
        sealed: Vec<Arc<Window>>,
        keys_written: Option<KeysWritten>,
    ) -> Result<Self, StoreError> {
        let mut writer = Self {
            index,
            db,
            keys_written,
            sender: None,
            threads: Vec::new(),
            stopping: Arc::new(AtomicBool::new(false)),
        };
        writer.spawn()?;
        for window in sealed {
            writer.hand_over(window)?;
        }
        Ok(writer)
    }

    fn spawn(&mut self) -> Result<(), StoreError> {
        let (sender, windows) = sync_channel(1);
        let (wake_merger, wakes) = sync_channel(1);
        self.stopping = Arc::new(AtomicBool::new(false));
        let (index, db) = (self.index.clone(), self.db.clone());
        let keys_written = self.keys_written.clone();
        let indexer = std::thread::Builder::new()
            .name("accord-indexer".into())
            .spawn(move || run_indexer(&index, &db, windows, &wake_merger, keys_written.as_ref()))
            .map_err(|error| StoreError::failed("cannot start the indexer", error))?;
        self.threads.push(indexer);
        let (index, db) = (self.index.clone(), self.db.clone());
        let keys_written = self.keys_written.clone();
        let stopping = self.stopping.clone();
        let merger = std::thread::Builder::new()
            .name("accord-merger".into())
            .spawn(move || run_merger(&index, &db, wakes, &stopping, keys_written.as_ref()))
            .map_err(|error| StoreError::failed("cannot start the index merger", error))?;
        self.threads.push(merger);
        self.sender = Some(sender);
        Ok(())
    }

    /// The index it writes.
    pub(crate) fn index(&self) -> &LogIndex {
        &self.index
    }

    /// Adds the entries of records that are durable.
    pub(crate) fn add(&self, entries: Vec<IndexEntry>) -> Result<(), StoreError> {
        self.index.check()?;
        match self.index.add(entries) {
            Some(window) => self.hand_over(window),
            None => Ok(()),
        }
    }

    fn hand_over(&self, window: Arc<Window>) -> Result<(), StoreError> {
        let sent = self.sender.as_ref().map(|sender| sender.send(window));
        match sent {
            Some(Ok(())) => Ok(()),
            _ => {
                self.index.check()?;
                Err(StoreError::Unavailable("the indexer stopped".into()))
            }
        }
    }

    /// Writes the whole tail to disk, waits until it is, and stops: the
    /// index on disk then covers every record (a clean close). Nothing is
    /// indexed after it.
    pub(crate) fn finish(&mut self) -> Result<(), StoreError> {
        if let Some(window) = self.index.seal_now() {
            self.hand_over(window)?;
        }
        self.stop();
        self.index.check()
    }

    /// Waits for the indexer to finish what it was handed, forgets every
    /// entry, and starts it again (the log was emptied).
    pub(crate) fn clear(&mut self) -> Result<(), StoreError> {
        self.stop();
        self.index.clear();
        self.spawn()
    }

    /// Stops both threads: the indexer after the windows it was handed,
    /// the merger between two pages.
    fn stop(&mut self) {
        self.sender = None;
        self.stopping.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            if thread.join().is_err() {
                self.index
                    .fail(StoreError::Unavailable("the indexer panicked".into()));
            }
        }
    }
}

impl Drop for IndexWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run_indexer(
    index: &LogIndex,
    db: &SyncedDb,
    windows: Receiver<Arc<Window>>,
    wake_merger: &SyncSender<()>,
    keys_written: Option<&KeysWritten>,
) {
    while let Ok(window) = windows.recv() {
        match write_window(index, db, &window) {
            Ok(keys) => {
                if let Some(keys_written) = keys_written {
                    keys_written(keys);
                }
                // A wake already pending covers this one.
                let _ = wake_merger.try_send(());
            }
            Err(error) => {
                index.fail(error);
                return;
            }
        }
    }
}

/// Writes `window` durably, lists its run in the manifest and moves
/// `indexed` past it; returns the keys written.
fn write_window(
    index: &LogIndex,
    db: &SyncedDb,
    window: &Arc<Window>,
) -> Result<usize, StoreError> {
    let tree = index.tree();
    let mut written = 0;
    let mut streams: Vec<_> = window.streams.iter().collect();
    streams.sort_unstable_by(|a, b| a.0.cmp(b.0));
    for (agreement_id, run) in streams {
        let mut version = run.first_version;
        for chunk in split_at_boundaries(run.first_version, &run.positions) {
            tree.insert(keys::stream_key(agreement_id, version), encode_chunk(chunk))?;
            version += chunk.len() as u64;
            written += 1;
        }
    }
    let run = if window.commands.is_empty() {
        None
    } else {
        let id = allocate_run(index, db)?;
        let entries = window
            .commands
            .iter()
            .map(|(command_id, position)| (command_hash(command_id), *position))
            .collect();
        let (run, keys) = Run::write(tree, id, entries)?;
        written += keys;
        Some(run)
    };
    db.sync()?;
    let meta = run.as_ref().map(|run| RunMeta {
        id: run.id,
        entries: run.entries,
        tier: 0,
    });
    index.change_manifest(
        db,
        true,
        |manifest| {
            manifest.indexed = window.last;
            manifest.runs.extend(meta);
        },
        |state, _| state.written(window, run),
    )?;
    Ok(written + 2)
}

/// The id of a new run, counted in the manifest before the run's first key
/// is written (so that the open removes what a stop cut short).
fn allocate_run(index: &LogIndex, db: &SyncedDb) -> Result<u64, StoreError> {
    let manifest =
        index.change_manifest(db, false, |manifest| manifest.next_run += 1, |_, _| {})?;
    Ok(manifest.next_run - 1)
}

fn run_merger(
    index: &LogIndex,
    db: &SyncedDb,
    wakes: Receiver<()>,
    stopping: &AtomicBool,
    keys_written: Option<&KeysWritten>,
) {
    // Runs merged into another, kept until no lookup holds them.
    let mut retired: Vec<Arc<Run>> = Vec::new();
    while wakes.recv().is_ok() {
        while let Some(due) = index.manifest().due_merge() {
            if stopping.load(Ordering::Relaxed) {
                return;
            }
            match merge(index, db, &due, stopping) {
                Ok(Some((sources, keys))) => {
                    retired.extend(sources);
                    if let Some(keys_written) = keys_written {
                        keys_written(keys);
                    }
                }
                Ok(None) => return,
                Err(error) => {
                    index.fail(error);
                    return;
                }
            }
        }
        let tree = index.tree();
        let mut kept = Vec::new();
        for run in retired.drain(..) {
            if Arc::strong_count(&run) > 1 {
                kept.push(run);
            } else if let Err(error) = super::runs::remove_run(tree, run.id) {
                index.fail(error);
                return;
            }
        }
        retired = kept;
    }
}

/// The runs a merge replaced, and the keys it wrote.
type Merged = (Vec<Arc<Run>>, usize);

/// Merges the runs `due` into one; `None` when the log closes first.
fn merge(
    index: &LogIndex,
    db: &SyncedDb,
    due: &[RunMeta],
    stopping: &AtomicBool,
) -> Result<Option<Merged>, StoreError> {
    let runs = index.runs();
    let sources: Vec<Arc<Run>> = due
        .iter()
        .map(|meta| {
            runs.iter()
                .find(|run| run.id == meta.id)
                .cloned()
                .ok_or_else(|| {
                    StoreError::Corrupt(format!("command index run {} is not loaded", meta.id))
                })
        })
        .collect::<Result<_, _>>()?;
    drop(runs);
    let id = allocate_run(index, db)?;
    let Some((run, keys)) = Run::merge(index.tree(), id, &sources, stopping)? else {
        return Ok(None);
    };
    db.sync()?;
    let merged = RunMeta {
        id,
        entries: run.entries,
        tier: due[0].tier.saturating_add(1),
    };
    index.change_manifest(
        db,
        true,
        |manifest| {
            manifest.runs.retain(|meta| !due.contains(meta));
            manifest.runs.push(merged);
        },
        |state, _| state.merged(run),
    )?;
    debug_assert_eq!(due.len(), MERGE_FANOUT);
    Ok(Some((sources, keys + 2)))
}

/// Splits the positions of versions `first_version..` into chunks that
/// end before every version `k * CHUNK_POSITIONS + 1`.
fn split_at_boundaries(first_version: u64, positions: &[u64]) -> Vec<&[u64]> {
    let mut chunks = Vec::new();
    let mut rest = positions;
    let mut version = first_version;
    while !rest.is_empty() {
        let to_boundary = CHUNK_POSITIONS - (version - 1) % CHUNK_POSITIONS;
        let (chunk, after) = rest.split_at((to_boundary as usize).min(rest.len()));
        chunks.push(chunk);
        version += chunk.len() as u64;
        rest = after;
    }
    chunks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_end_at_the_same_versions_wherever_a_window_starts() {
        let positions: Vec<u64> = (0..1_200).collect();
        let lengths = |first: u64, count: usize| -> Vec<usize> {
            split_at_boundaries(first, &positions[..count])
                .iter()
                .map(|chunk| chunk.len())
                .collect()
        };
        assert_eq!(lengths(1, 1_200), vec![512, 512, 176]);
        assert_eq!(lengths(500, 100), vec![13, 87]);
        assert_eq!(lengths(513, 3), vec![3]);
        assert!(lengths(7, 0).is_empty());
    }
}
