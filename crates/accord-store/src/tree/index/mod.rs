//! The stream and command indexes, kept off the group commit. A group
//! commit writes only record blocks, the agreement counter and the signed
//! checkpoint; the index entries of its records go to the *tail*, windows
//! of entries in memory ([`window`]). When a window is full, the indexer
//! thread ([`indexer`]) writes it to the tree as a few large values — one
//! stream chunk per agreement and a run of the command index ([`runs`]) —
//! with plain inserts, makes them durable, and only then moves the
//! manifest's `indexed` position past it and drops it from memory.
//!
//! The records hold every entry of the tail, so nothing is lost in a crash:
//! the open derives the tail again from the records after `indexed` (at
//! most a few windows). Entries on disk for positions after `indexed` (a
//! window written when the crash came) are ignored and written again.
//!
//! Logs written before the tail have a stream chunk per group and a `c` key
//! per command; they read the same way (the chunks are the same format, the
//! `c` keys are looked up after the runs).

mod bloom;
pub(crate) mod indexer;
pub(crate) mod runs;
pub(crate) mod window;

use std::sync::{Arc, OnceLock};

use accord_domain::RecordedEvent;
use parking_lot::RwLock;

use super::keys;
use crate::tree::blocks::{Block, record_at};
use crate::tree::digest::{DigestKeys, IndexDigest};
use crate::tree::stream_index::{Chunk, chunk_at, last_chunk};
use crate::{Fingerprint, StoreError, decode_record};
use runs::{Manifest, Run, command_hash};
use window::{IndexEntry, StreamRun, Window};

/// The indexes of one log tree: on disk up to `indexed`, in memory after.
#[derive(Clone)]
pub(crate) struct LogIndex(Arc<Inner>);

struct Inner {
    tree: ::sled::Tree,
    state: RwLock<State>,
    /// The log has `c` keys of the command index written before runs.
    legacy_commands: bool,
    /// Set when the indexer failed: the tail can no longer be written.
    failure: OnceLock<StoreError>,
    /// Held while the manifest changes (the indexer and the merger both
    /// change it).
    manifest_lock: parking_lot::Mutex<()>,
    /// Records per window.
    window_records: usize,
}

struct State {
    manifest: Manifest,
    /// Full windows handed to the indexer, oldest first.
    sealed: Vec<Arc<Window>>,
    /// The window records are added to.
    active: Window,
    runs: Arc<Vec<Arc<Run>>>,
}

impl State {
    /// The windows of the tail, oldest first.
    fn windows(&self) -> impl Iterator<Item = &Window> {
        self.sealed
            .iter()
            .map(|window| &**window)
            .chain([&self.active])
    }

    /// The runs of `agreement_id` in the tail, oldest first: its consecutive
    /// versions after the indexed ones.
    fn stream_runs<'s>(&'s self, agreement_id: &'s str) -> impl Iterator<Item = &'s StreamRun> {
        self.windows()
            .filter_map(move |window| window.streams.get(agreement_id))
    }

    /// The first version of `agreement_id` in the tail, and its positions
    /// from `from_version` on (copied: the caller reads the disk after).
    fn stream_tail_from(&self, agreement_id: &str, from_version: u64) -> Option<StreamRun> {
        let mut runs = self.stream_runs(agreement_id).peekable();
        let first_version = runs.peek()?.first_version;
        let start = from_version.max(first_version);
        let positions = runs
            .flat_map(|run| {
                let skip = start.saturating_sub(run.first_version) as usize;
                run.positions.iter().skip(skip).copied()
            })
            .collect();
        // The tail's own first version, so that the caller knows where the
        // disk's part ends; the positions start at `from_version`.
        Some(StreamRun {
            first_version,
            positions,
        })
    }

    fn tail_command(&self, command_id: &str) -> Option<u64> {
        self.windows()
            .find_map(|window| window.commands.get(command_id).copied())
    }
}

/// A command found in the index, with its first record.
pub(crate) struct FoundCommand {
    pub(crate) fingerprint: Fingerprint,
    pub(crate) event: RecordedEvent,
}

impl LogIndex {
    /// Opens the indexes of `tree`, whose last record is at `head`: reads
    /// the manifest and the runs' filters, removes a run the indexer did
    /// not finish, and derives the tail from the records after `indexed`.
    /// Full windows of the tail are returned for the indexer.
    pub(crate) fn open(
        tree: &::sled::Tree,
        head: u64,
        window_records: usize,
    ) -> Result<(Self, Vec<Arc<Window>>), StoreError> {
        let legacy_commands = tree.scan_prefix([keys::COMMAND]).next().is_some();
        let manifest = match tree.get(keys::INDEX_MANIFEST)? {
            Some(bytes) => Manifest::decode(&bytes)?,
            None => {
                // A log written before the tail holds its index entries on
                // disk, all of them; a new one none. Said once, in the
                // manifest, since a new log's entries reach the disk later.
                let legacy = tree.scan_prefix([keys::STREAM]).next().is_some() || legacy_commands;
                let manifest = Manifest {
                    indexed: if legacy { head } else { 0 },
                    ..Manifest::default()
                };
                tree.insert(keys::INDEX_MANIFEST, manifest.encode())?;
                manifest
            }
        };
        if manifest.indexed > head {
            return Err(StoreError::Corrupt(format!(
                "the index manifest covers positions up to {}, beyond the last record {head}",
                manifest.indexed
            )));
        }
        // Runs being written or merged when the log stopped, and runs
        // merged into another whose keys were not removed yet.
        for id in 0..=manifest.next_run {
            if !manifest.runs.iter().any(|run| run.id == id) {
                runs::remove_run(tree, id)?;
            }
        }
        let runs = manifest
            .runs
            .iter()
            .map(|run| Run::load(tree, run.id, run.entries).map(Arc::new))
            .collect::<Result<Vec<_>, _>>()?;
        let indexed = manifest.indexed;
        let index = Self(Arc::new(Inner {
            tree: tree.clone(),
            state: RwLock::new(State {
                manifest,
                sealed: Vec::new(),
                active: Window::starting_at(indexed + 1, window_records),
                runs: Arc::new(runs),
            }),
            legacy_commands,
            failure: OnceLock::new(),
            manifest_lock: parking_lot::Mutex::new(()),
            window_records,
        }));
        let deriving = std::time::Instant::now();
        let sealed = index.derive_tail(indexed, head)?;
        if head > indexed {
            tracing::info!(
                records = head - indexed,
                millis = deriving.elapsed().as_millis() as u64,
                runs = index.runs().len(),
                "index tail derived from the records after the indexed position"
            );
        }
        if indexed == head && head > 0 {
            index.check_head(head)?;
        }
        Ok((index, sealed))
    }

    /// Adds the entries of the records after `indexed` up to `head` (on a
    /// NATS replica a quarantined message leaves its position without a
    /// record).
    fn derive_tail(&self, indexed: u64, head: u64) -> Result<Vec<Arc<Window>>, StoreError> {
        let tree = &self.0.tree;
        let from = indexed + 1;
        if from > head {
            return Ok(Vec::new());
        }
        // The block holding `from` may start before it.
        let start = match crate::tree::blocks::block_at(tree, from)? {
            Some(block) => block.first(),
            None => from,
        };
        let mut sealed = Vec::new();
        let mut entries: Vec<IndexEntry> = Vec::new();
        let mut commands = std::collections::HashSet::new();
        for entry in tree.range(keys::event_key(start)..=keys::event_key(head)) {
            let (key, value) = entry?;
            let first = keys::position_of_event_key(&key)
                .ok_or_else(|| StoreError::Corrupt("malformed record key".into()))?;
            for record in Block::new(first, value).records() {
                let (position, bytes) = record?;
                if position < from || position > head {
                    continue;
                }
                let event = decode_record(bytes)?.event;
                let command_id = event.metadata.command_id;
                // The first record of a command id is the one indexed (a
                // NATS stream may hold a later copy of a command).
                let first_of_command = !commands.contains(&command_id)
                    && self.command_position(&command_id)?.is_none();
                if first_of_command {
                    commands.insert(command_id.clone());
                }
                entries.push(IndexEntry {
                    position,
                    agreement_id: event.agreement_id,
                    version: event.version,
                    command_id: first_of_command.then_some(command_id),
                });
            }
            sealed.extend(self.add(std::mem::take(&mut entries)));
        }
        Ok(sealed)
    }

    /// Checks the head's entries when the head is indexed on disk (the
    /// entries of a tail are derived from the records, so they agree).
    fn check_head(&self, head: u64) -> Result<(), StoreError> {
        let bytes = record_at(&self.0.tree, head)?
            .ok_or_else(|| StoreError::Corrupt(format!("record {head} is missing")))?;
        let event = decode_record(&bytes)?.event;
        if self.position_of(&event.agreement_id, event.version)? != Some(head) {
            return Err(StoreError::Corrupt(format!(
                "stream index of {} version {} does not point at the head {head}",
                event.agreement_id, event.version
            )));
        }
        if self.command_position(&event.metadata.command_id)?.is_none() {
            return Err(StoreError::Corrupt(format!(
                "command index lacks {:?} of the head {head}",
                event.metadata.command_id
            )));
        }
        Ok(())
    }

    /// Adds the entries of the next records (durable already) and returns
    /// the active window if they filled it.
    pub(crate) fn add(&self, entries: Vec<IndexEntry>) -> Option<Arc<Window>> {
        let mut state = self.0.state.write();
        for entry in entries {
            state.active.add(entry);
        }
        if !state.active.is_full() {
            return None;
        }
        Some(state.seal(self.0.window_records))
    }

    /// Hands the active window to the indexer even if it is not full.
    pub(crate) fn seal_now(&self) -> Option<Arc<Window>> {
        let mut state = self.0.state.write();
        (!state.active.is_empty()).then(|| state.seal(self.0.window_records))
    }

    /// Forgets every index entry: the log was emptied.
    pub(crate) fn clear(&self) {
        let mut state = self.0.state.write();
        *state = State {
            manifest: Manifest::default(),
            sealed: Vec::new(),
            active: Window::starting_at(1, self.0.window_records),
            runs: Arc::new(Vec::new()),
        };
    }

    fn fail(&self, error: StoreError) {
        tracing::error!(%error, "writing the index tail failed; the log refuses appends until it is reopened");
        let _ = self.0.failure.set(error);
    }

    /// Refuses writes once the indexer failed.
    pub(crate) fn check(&self) -> Result<(), StoreError> {
        match self.0.failure.get() {
            None => Ok(()),
            Some(error) => Err(StoreError::Unavailable(format!(
                "the log's index could not be written ({error}); reopen the log"
            ))),
        }
    }

    /// The last version of `agreement_id` and its position (0, 0 for none).
    pub(crate) fn last_version(&self, agreement_id: &str) -> Result<(u64, u64), StoreError> {
        if let Some(last) = self.0.state.read().stream_runs(agreement_id).last() {
            let position = last.positions.last().copied().unwrap_or_default();
            return Ok((last.last_version(), position));
        }
        match last_chunk(&self.0.tree, agreement_id)? {
            Some(chunk) => {
                let version = chunk.last_version();
                let position = chunk
                    .position_of(version)
                    .ok_or_else(|| StoreError::Corrupt("stream index entry too short".into()))?;
                Ok((version, position))
            }
            None => Ok((0, 0)),
        }
    }

    /// The position of `version` of `agreement_id`.
    pub(crate) fn position_of(
        &self,
        agreement_id: &str,
        version: u64,
    ) -> Result<Option<u64>, StoreError> {
        let indexed = {
            let state = self.0.state.read();
            let mut runs = state.stream_runs(agreement_id).peekable();
            if let Some(first) = runs.peek()
                && version >= first.first_version
            {
                return Ok(runs.find_map(|run| run.position_of(version)));
            }
            state.manifest.indexed
        };
        Ok(chunk_at(&self.0.tree, agreement_id, version)?
            .and_then(|chunk| chunk.position_of(version))
            .filter(|position| *position <= indexed))
    }

    /// Calls `visit` with `(version, position)` of `agreement_id` from
    /// `from_version` on, in order, until it returns false.
    pub(crate) fn for_each_from(
        &self,
        agreement_id: &str,
        from_version: u64,
        mut visit: impl FnMut(u64, u64) -> Result<bool, StoreError>,
    ) -> Result<(), StoreError> {
        let from_version = from_version.max(1);
        let (indexed, tail) = {
            let state = self.0.state.read();
            (
                state.manifest.indexed,
                state.stream_tail_from(agreement_id, from_version),
            )
        };
        let tail_first = tail.as_ref().map_or(u64::MAX, |tail| tail.first_version);
        if from_version < tail_first {
            let mut more = true;
            crate::tree::stream_index::for_each_from(
                &self.0.tree,
                agreement_id,
                from_version,
                |version, position| {
                    if version >= tail_first || position > indexed {
                        return Ok(false);
                    }
                    more = visit(version, position)?;
                    Ok(more)
                },
            )?;
            if !more {
                return Ok(());
            }
        }
        if let Some(tail) = tail {
            let start = from_version.max(tail.first_version);
            for (index, position) in tail.positions.iter().enumerate() {
                if !visit(start + index as u64, *position)? {
                    break;
                }
            }
        }
        Ok(())
    }

    /// The position of the first record of `command_id`.
    pub(crate) fn command_position(&self, command_id: &str) -> Result<Option<u64>, StoreError> {
        Ok(self
            .lookup_command(command_id)?
            .map(|(position, _)| position))
    }

    /// The first record of `command_id` and the fingerprint of its command.
    pub(crate) fn find_command(
        &self,
        command_id: &str,
    ) -> Result<Option<FoundCommand>, StoreError> {
        let Some((position, found)) = self.lookup_command(command_id)? else {
            return Ok(None);
        };
        if let Some(found) = found {
            return Ok(Some(found));
        }
        let bytes = record_at(&self.0.tree, position)?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "command {command_id:?} points at missing position {position}"
            ))
        })?;
        let decoded = decode_record(&bytes)?;
        Ok(Some(FoundCommand {
            fingerprint: decoded.command_fingerprint,
            event: decoded.event,
        }))
    }

    /// The position of `command_id`'s first record, with the record when
    /// the lookup read it.
    fn lookup_command(
        &self,
        command_id: &str,
    ) -> Result<Option<(u64, Option<FoundCommand>)>, StoreError> {
        let runs = {
            let state = self.0.state.read();
            if let Some(position) = state.tail_command(command_id) {
                return Ok(Some((position, None)));
            }
            state.runs.clone()
        };
        let hash = command_hash(command_id);
        for run in runs.iter().rev() {
            for position in run.candidates(&self.0.tree, hash)? {
                let Some(bytes) = record_at(&self.0.tree, position)? else {
                    continue;
                };
                let decoded = decode_record(&bytes)?;
                if decoded.event.metadata.command_id == command_id {
                    return Ok(Some((
                        position,
                        Some(FoundCommand {
                            fingerprint: decoded.command_fingerprint,
                            event: decoded.event,
                        }),
                    )));
                }
            }
        }
        if self.0.legacy_commands
            && let Some(entry) = self.0.tree.get(keys::command_key(command_id))?
        {
            let (fingerprint, position) = keys::decode_command_entry(&entry)?;
            let event = record_at(&self.0.tree, position)?
                .map(|bytes| decode_record(&bytes))
                .transpose()?
                .map(|decoded| FoundCommand {
                    fingerprint,
                    event: decoded.event,
                });
            return Ok(Some((position, event)));
        }
        Ok(None)
    }

    /// The digest of the index entries that point at positions up to
    /// `through` (see [`crate::tree::digest`]).
    pub(crate) fn digest(
        &self,
        digest_keys: &DigestKeys,
        through: u64,
    ) -> Result<IndexDigest, StoreError> {
        let mut digest = IndexDigest::default();
        let (indexed, runs) = {
            let state = self.0.state.read();
            for window in state.windows() {
                for (agreement_id, version, position) in window.stream_entries(through) {
                    digest.add_stream(digest_keys, agreement_id.as_bytes(), version, position);
                }
                for (command_id, position) in &window.commands {
                    if *position <= through {
                        digest.add_command(digest_keys, command_id, *position);
                    }
                }
            }
            (state.manifest.indexed.min(through), state.runs.clone())
        };
        let tree = &self.0.tree;
        for entry in tree.scan_prefix([keys::STREAM]) {
            let (key, positions) = entry?;
            let agreement_id = key
                .get(1..key.len().saturating_sub(9))
                .filter(|_| key.len() >= 10 && key[key.len() - 9] == 0)
                .ok_or_else(|| StoreError::Corrupt("malformed stream key".into()))?;
            let chunk = Chunk::decode(&key, positions)?;
            for (version, position) in chunk.entries_from(0) {
                if position <= indexed {
                    digest.add_stream(digest_keys, agreement_id, version, position);
                }
            }
        }
        for run in runs.iter() {
            run.for_each(tree, |hash, position| {
                if position <= indexed {
                    digest.add_command_hash(digest_keys, hash, position);
                }
            })?;
        }
        for entry in tree.scan_prefix([keys::COMMAND]) {
            let (key, value) = entry?;
            let (_, position) = keys::decode_command_entry(&value)?;
            if position <= indexed {
                let command_id = String::from_utf8_lossy(&key[1..]);
                digest.add_command(digest_keys, &command_id, position);
            }
        }
        Ok(digest)
    }

    /// The tree it indexes.
    fn tree(&self) -> &::sled::Tree {
        &self.0.tree
    }

    /// The manifest as the indexer last wrote it.
    fn manifest(&self) -> Manifest {
        self.0.state.read().manifest.clone()
    }

    /// The runs listed in the manifest, in memory.
    fn runs(&self) -> Arc<Vec<Arc<Run>>> {
        self.0.state.read().runs.clone()
    }

    /// Changes the manifest with `change`, writes it (durably with
    /// `sync`), and changes the state with `apply`, one change at a time.
    fn change_manifest(
        &self,
        db: &crate::durable::SyncedDb,
        sync: bool,
        change: impl FnOnce(&mut Manifest),
        apply: impl FnOnce(&mut State, &Manifest),
    ) -> Result<Manifest, StoreError> {
        let _one_at_a_time = self.0.manifest_lock.lock();
        let mut manifest = self.manifest();
        change(&mut manifest);
        self.0
            .tree
            .insert(keys::INDEX_MANIFEST, manifest.encode())?;
        if sync {
            db.sync()?;
        }
        let mut state = self.0.state.write();
        state.manifest = manifest.clone();
        apply(&mut state, &manifest);
        Ok(manifest)
    }
}

impl State {
    /// `window` is on disk, and `run` (its command entries) in the manifest.
    fn written(&mut self, window: &Arc<Window>, run: Option<Run>) {
        if let Some(run) = run {
            let mut runs = Vec::clone(&self.runs);
            runs.push(Arc::new(run));
            self.runs = Arc::new(runs);
        }
        self.sealed.retain(|sealed| !Arc::ptr_eq(sealed, window));
    }

    /// `run` replaces the runs the manifest no longer lists.
    fn merged(&mut self, run: Run) {
        let listed = &self.manifest.runs;
        let mut runs: Vec<Arc<Run>> = self
            .runs
            .iter()
            .filter(|old| listed.iter().any(|meta| meta.id == old.id))
            .cloned()
            .collect();
        runs.push(Arc::new(run));
        self.runs = Arc::new(runs);
    }

    fn seal(&mut self, window_records: usize) -> Arc<Window> {
        let next = Window::starting_at(self.active.last + 1, window_records);
        let window = Arc::new(std::mem::replace(&mut self.active, next));
        self.sealed.push(window.clone());
        window
    }
}
