//! The indexer thread: writes full windows of the tail to the tree, one at
//! a time, in the order they filled. For each window: its stream chunks
//! and its command run with plain inserts (no batch: nothing else waits on
//! them, and sled's batches take a process-wide lock), a sync, the manifest
//! that moves `indexed` past the window, a sync, and only then the window
//! leaves memory.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use super::LogIndex;
use super::runs::{Manifest, Run, command_hash};
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
    thread: Option<JoinHandle<()>>,
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
            thread: None,
        };
        writer.spawn()?;
        for window in sealed {
            writer.hand_over(window)?;
        }
        Ok(writer)
    }

    fn spawn(&mut self) -> Result<(), StoreError> {
        let (sender, windows) = sync_channel(1);
        let index = self.index.clone();
        let db = self.db.clone();
        let keys_written = self.keys_written.clone();
        let thread = std::thread::Builder::new()
            .name("accord-indexer".into())
            .spawn(move || run(&index, &db, windows, keys_written.as_ref()))
            .map_err(|error| StoreError::failed("cannot start the indexer", error))?;
        self.sender = Some(sender);
        self.thread = Some(thread);
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

    /// Writes the whole tail to disk and waits until it is: the index on
    /// disk then covers every record (a clean close, and tests).
    pub(crate) fn write_all(&mut self) -> Result<(), StoreError> {
        if let Some(window) = self.index.seal_now() {
            self.hand_over(window)?;
        }
        self.stop();
        self.index.check()?;
        self.spawn()
    }

    /// Waits for the indexer to finish what it was handed, forgets every
    /// entry, and starts it again (the log was emptied).
    pub(crate) fn clear(&mut self) -> Result<(), StoreError> {
        self.stop();
        self.index.clear();
        self.spawn()
    }

    fn stop(&mut self) {
        self.sender = None;
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            self.index
                .fail(StoreError::Unavailable("the indexer panicked".into()));
        }
    }
}

impl Drop for IndexWriter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(
    index: &LogIndex,
    db: &SyncedDb,
    windows: Receiver<Arc<Window>>,
    keys_written: Option<&KeysWritten>,
) {
    while let Ok(window) = windows.recv() {
        match write_window(index, db, &window) {
            Ok((manifest, run, keys)) => {
                index.written(&window, manifest, run);
                if let Some(keys_written) = keys_written {
                    keys_written(keys);
                }
            }
            Err(error) => {
                index.fail(error);
                return;
            }
        }
    }
}

/// Writes `window` durably and returns the manifest that covers it.
fn write_window(
    index: &LogIndex,
    db: &SyncedDb,
    window: &Window,
) -> Result<(Manifest, Option<Run>, usize), StoreError> {
    let tree = index.tree();
    let mut manifest = index.manifest();
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
        let entries = window
            .commands
            .iter()
            .map(|(command_id, position)| (command_hash(command_id), *position))
            .collect();
        let (run, keys) = Run::write(tree, manifest.next_run, entries)?;
        written += keys;
        manifest.runs.push((run.id, run.entries));
        manifest.next_run += 1;
        Some(run)
    };
    db.sync()?;
    manifest.indexed = window.last;
    tree.insert(keys::INDEX_MANIFEST, manifest.encode())?;
    db.sync()?;
    Ok((manifest, run, written + 1))
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
