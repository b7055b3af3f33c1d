//! The command index on disk: runs of `(hash of command id, position)`
//! entries sorted by hash, written once per window by the indexer, in pages
//! of [`PAGE_ENTRIES`], each run with a Bloom filter and the first hash of
//! each page (its fences) kept in memory. A lookup asks each run's filter,
//! reads at most a page or two of the runs that may hold the hash, and the
//! caller confirms each candidate against its record: a hash collision or a
//! false positive costs a read, never a wrong answer.
//!
//! Keys (in the log tree, prefix `k`):
//! - `k` + run (u64 BE) + `p` + page (u32 BE) -> entries, 16 bytes each
//! - `k` + run + `f`                         -> fences, 8 bytes per page
//! - `k` + run + `b` + chunk (u32 BE)        -> the filter, in chunks
//! - `mindex`                                -> the manifest (see [`Manifest`])

use std::sync::Arc;

use super::bloom::Bloom;
use crate::StoreError;
use crate::tree::keys;

/// Entries per page: 4 KiB values, which sled keeps inline in its leaves.
pub(crate) const PAGE_ENTRIES: usize = 256;
const ENTRY_BYTES: usize = 16;
/// Bytes of the filter per stored value.
const FILTER_CHUNK_BYTES: usize = 16 * 1024;
const MANIFEST_FORMAT: u8 = 1;

/// The hash of a command id the index is keyed by.
pub(crate) fn command_hash(command_id: &str) -> u64 {
    let hash = blake3::hash(command_id.as_bytes());
    u64::from_be_bytes(hash.as_bytes()[..8].try_into().unwrap_or_default())
}

/// What the indexes on disk cover, stored as JSON under `mindex`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Manifest {
    /// The manifest's format.
    pub(crate) format: u8,
    /// Every record up to this position has its entries on disk.
    pub(crate) indexed: u64,
    /// The id the next run gets.
    pub(crate) next_run: u64,
    /// The runs of the command index. The keys of any other run below
    /// `next_run` (merged into another, or cut short when the log stopped)
    /// are removed at open.
    pub(crate) runs: Vec<RunMeta>,
}

/// One run as the manifest lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct RunMeta {
    pub(crate) id: u64,
    pub(crate) entries: u64,
    /// How many merges its entries went through: runs of one tier are
    /// merged [`MERGE_FANOUT`] at a time into one of the next.
    pub(crate) tier: u8,
}

/// Runs of one tier merged into one.
pub(crate) const MERGE_FANOUT: usize = 8;

impl Default for Manifest {
    fn default() -> Self {
        Self {
            format: MANIFEST_FORMAT,
            indexed: 0,
            next_run: 0,
            runs: Vec::new(),
        }
    }
}

impl Manifest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let manifest: Self = serde_json::from_slice(bytes)
            .map_err(|error| StoreError::Corrupt(format!("malformed index manifest: {error}")))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(StoreError::Corrupt(format!(
                "index manifest of format {}; this server reads format {MANIFEST_FORMAT}",
                manifest.format
            )));
        }
        Ok(manifest)
    }

    /// The oldest [`MERGE_FANOUT`] runs of the lowest tier that has as
    /// many, if any.
    pub(crate) fn due_merge(&self) -> Option<Vec<RunMeta>> {
        let mut tiers: Vec<u8> = self.runs.iter().map(|run| run.tier).collect();
        tiers.sort_unstable();
        tiers.dedup();
        tiers.into_iter().find_map(|tier| {
            let runs: Vec<RunMeta> = self
                .runs
                .iter()
                .filter(|run| run.tier == tier)
                .take(MERGE_FANOUT)
                .copied()
                .collect();
            (runs.len() == MERGE_FANOUT).then_some(runs)
        })
    }
}

fn run_prefix(run: u64) -> [u8; 9] {
    let mut key = [keys::COMMAND_RUN; 9];
    key[1..].copy_from_slice(&run.to_be_bytes());
    key
}

fn page_key(run: u64, page: u32) -> [u8; 14] {
    let mut key = [0; 14];
    key[..9].copy_from_slice(&run_prefix(run));
    key[9] = b'p';
    key[10..].copy_from_slice(&page.to_be_bytes());
    key
}

fn fences_key(run: u64) -> [u8; 10] {
    let mut key = [0; 10];
    key[..9].copy_from_slice(&run_prefix(run));
    key[9] = b'f';
    key
}

fn filter_key(run: u64, chunk: u32) -> [u8; 14] {
    let mut key = page_key(run, chunk);
    key[9] = b'b';
    key
}

/// One run as kept in memory: its filter and fences.
pub(crate) struct Run {
    pub(crate) id: u64,
    pub(crate) entries: u64,
    fences: Vec<u64>,
    filter: Bloom,
}

impl Run {
    /// Writes a run of `entries` (sorted here) with plain inserts and
    /// returns it with the number of keys written.
    pub(crate) fn write(
        tree: &::sled::Tree,
        id: u64,
        mut entries: Vec<(u64, u64)>,
    ) -> Result<(Self, usize), StoreError> {
        entries.sort_unstable();
        let mut builder = RunBuilder::new(tree, id, entries.len());
        for (hash, position) in entries {
            builder.push(hash, position)?;
        }
        builder.finish()
    }

    /// Merges `sources` into run `id`, a page of each in memory at a time;
    /// `None` when `stopping` is set first.
    pub(crate) fn merge(
        tree: &::sled::Tree,
        id: u64,
        sources: &[Arc<Run>],
        stopping: &std::sync::atomic::AtomicBool,
    ) -> Result<Option<(Self, usize)>, StoreError> {
        let total: u64 = sources.iter().map(|run| run.entries).sum();
        let mut builder = RunBuilder::new(tree, id, total as usize);
        let mut cursors = sources
            .iter()
            .map(|run| PageCursor::new(tree, run))
            .collect::<Result<Vec<_>, _>>()?;
        let mut heap = std::collections::BinaryHeap::new();
        for (index, cursor) in cursors.iter().enumerate() {
            if let Some(entry) = cursor.peek() {
                heap.push(std::cmp::Reverse((entry, index)));
            }
        }
        while let Some(std::cmp::Reverse(((hash, position), index))) = heap.pop() {
            if builder.entries.is_multiple_of(PAGE_ENTRIES as u64)
                && stopping.load(std::sync::atomic::Ordering::Relaxed)
            {
                return Ok(None);
            }
            builder.push(hash, position)?;
            if let Some(entry) = cursors[index].advance()? {
                heap.push(std::cmp::Reverse((entry, index)));
            }
        }
        builder.finish().map(Some)
    }

    /// Reads the filter and fences of run `id` back.
    pub(crate) fn load(tree: &::sled::Tree, id: u64, entries: u64) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("command index run {id}: {what}"));
        let fences: Vec<u64> = tree
            .get(fences_key(id))?
            .ok_or_else(|| corrupt("its fences are missing"))?
            .chunks(8)
            .map(|bytes| keys::decode_u64(bytes).ok_or_else(|| corrupt("malformed fences")))
            .collect::<Result<_, _>>()?;
        if fences.len() as u64 != entries.div_ceil(PAGE_ENTRIES as u64) {
            return Err(corrupt("its fences do not match its entries"));
        }
        // Exactly the chunks a run of this size has: keys of a run written
        // before a crash and removed since are never read.
        let filter_bytes = Bloom::with_entries(entries as usize).as_bytes().len();
        let mut filter = Vec::with_capacity(filter_bytes);
        for chunk in 0..filter_bytes.div_ceil(FILTER_CHUNK_BYTES) {
            let bytes = tree
                .get(filter_key(id, chunk as u32))?
                .ok_or_else(|| corrupt("a chunk of its filter is missing"))?;
            filter.extend_from_slice(&bytes);
        }
        if filter.len() != filter_bytes {
            return Err(corrupt("its filter has the wrong size"));
        }
        let filter = Bloom::from_bytes(filter).ok_or_else(|| corrupt("malformed filter"))?;
        Ok(Self {
            id,
            entries,
            fences,
            filter,
        })
    }

    /// Positions this run holds for `hash` (a superset of the true ones
    /// only through hash collisions).
    pub(crate) fn candidates(
        &self,
        tree: &::sled::Tree,
        hash: u64,
    ) -> Result<Vec<u64>, StoreError> {
        if !self.filter.may_contain(hash) {
            return Ok(Vec::new());
        }
        // Pages that may hold `hash`: from the last one starting before it
        // to the last one starting at it (equal hashes may span pages).
        let first = self
            .fences
            .partition_point(|fence| *fence < hash)
            .saturating_sub(1);
        let mut found = Vec::new();
        for page in first..self.fences.len() {
            if self.fences[page] > hash {
                break;
            }
            let value = tree.get(page_key(self.id, page as u32))?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "command index run {}: page {page} is missing",
                    self.id
                ))
            })?;
            for_each_entry(&value, |entry_hash, position| {
                if entry_hash == hash {
                    found.push(position);
                }
            })?;
        }
        Ok(found)
    }

    /// Calls `visit` with every `(hash, position)` of the run, in order.
    pub(crate) fn for_each(
        &self,
        tree: &::sled::Tree,
        mut visit: impl FnMut(u64, u64),
    ) -> Result<(), StoreError> {
        for page in 0..self.fences.len() {
            let value = tree.get(page_key(self.id, page as u32))?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "command index run {}: page {page} is missing",
                    self.id
                ))
            })?;
            for_each_entry(&value, &mut visit)?;
        }
        Ok(())
    }
}

/// Removes every key of run `id` (an unfinished run found at open).
pub(crate) fn remove_run(tree: &::sled::Tree, id: u64) -> Result<(), StoreError> {
    for key in tree.scan_prefix(run_prefix(id)).keys() {
        tree.remove(key?)?;
    }
    Ok(())
}

fn for_each_entry(page: &[u8], mut visit: impl FnMut(u64, u64)) -> Result<(), StoreError> {
    if !page.len().is_multiple_of(ENTRY_BYTES) {
        return Err(StoreError::Corrupt(format!(
            "command index page of {} bytes",
            page.len()
        )));
    }
    for entry in page.chunks_exact(ENTRY_BYTES) {
        let hash = keys::decode_u64(entry).unwrap_or_default();
        let position = keys::decode_u64(&entry[8..]).unwrap_or_default();
        visit(hash, position);
    }
    Ok(())
}

/// Test seams: change one entry of a run in place.
#[cfg(any(test, feature = "test-support"))]
pub(crate) fn edit_entry(
    tree: &::sled::Tree,
    run: u64,
    hash: u64,
    change: impl FnOnce(&mut Vec<(u64, u64)>),
) -> Result<(), StoreError> {
    let fences_value = tree
        .get(fences_key(run))?
        .ok_or_else(|| StoreError::Corrupt("no such run".into()))?;
    let fences: Vec<u64> = fences_value
        .chunks(8)
        .filter_map(keys::decode_u64)
        .collect();
    let page = fences
        .partition_point(|fence| *fence <= hash)
        .saturating_sub(1);
    let key = page_key(run, page as u32);
    let mut entries = Vec::new();
    for_each_entry(&tree.get(key)?.unwrap_or_default(), |hash, position| {
        entries.push((hash, position))
    })?;
    change(&mut entries);
    entries.sort_unstable();
    let value: Vec<u8> = entries
        .iter()
        .flat_map(|(hash, position)| [hash.to_be_bytes(), position.to_be_bytes()])
        .flatten()
        .collect();
    tree.insert(key, value)?;
    Ok(())
}

/// Writes one run page by page.
struct RunBuilder<'a> {
    tree: &'a ::sled::Tree,
    id: u64,
    entries: u64,
    filter: Bloom,
    fences: Vec<u64>,
    page: Vec<u8>,
    written: usize,
}

impl<'a> RunBuilder<'a> {
    fn new(tree: &'a ::sled::Tree, id: u64, entries: usize) -> Self {
        Self {
            tree,
            id,
            entries: 0,
            filter: Bloom::with_entries(entries),
            fences: Vec::with_capacity(entries.div_ceil(PAGE_ENTRIES)),
            page: Vec::with_capacity(PAGE_ENTRIES * ENTRY_BYTES),
            written: 0,
        }
    }

    /// Adds the next entry (in order).
    fn push(&mut self, hash: u64, position: u64) -> Result<(), StoreError> {
        if self.page.is_empty() {
            self.fences.push(hash);
        }
        self.filter.insert(hash);
        self.page.extend_from_slice(&hash.to_be_bytes());
        self.page.extend_from_slice(&position.to_be_bytes());
        self.entries += 1;
        if self.page.len() == PAGE_ENTRIES * ENTRY_BYTES {
            self.flush_page()?;
        }
        Ok(())
    }

    fn flush_page(&mut self) -> Result<(), StoreError> {
        if !self.page.is_empty() {
            let page = (self.fences.len() - 1) as u32;
            self.tree
                .insert(page_key(self.id, page), std::mem::take(&mut self.page))?;
            self.page.reserve(PAGE_ENTRIES * ENTRY_BYTES);
            self.written += 1;
        }
        Ok(())
    }

    fn finish(mut self) -> Result<(Run, usize), StoreError> {
        self.flush_page()?;
        // Sized for the entries expected; a run holds exactly that many.
        let filter = Bloom::with_entries(self.entries as usize);
        let filter = if filter.as_bytes().len() == self.filter.as_bytes().len() {
            self.filter
        } else {
            return Err(StoreError::Corrupt(format!(
                "command index run {} holds {} entries, not the ones counted",
                self.id, self.entries
            )));
        };
        for (chunk, bytes) in filter.as_bytes().chunks(FILTER_CHUNK_BYTES).enumerate() {
            self.tree.insert(filter_key(self.id, chunk as u32), bytes)?;
            self.written += 1;
        }
        let fence_bytes: Vec<u8> = self
            .fences
            .iter()
            .flat_map(|hash| hash.to_be_bytes())
            .collect();
        self.tree.insert(fences_key(self.id), fence_bytes)?;
        self.written += 1;
        Ok((
            Run {
                id: self.id,
                entries: self.entries,
                fences: self.fences,
                filter,
            },
            self.written,
        ))
    }
}

/// Reads a run's entries in order, a page at a time.
struct PageCursor<'a> {
    tree: &'a ::sled::Tree,
    run: &'a Run,
    page: usize,
    entries: Vec<(u64, u64)>,
    at: usize,
}

impl<'a> PageCursor<'a> {
    fn new(tree: &'a ::sled::Tree, run: &'a Run) -> Result<Self, StoreError> {
        let mut cursor = Self {
            tree,
            run,
            page: 0,
            entries: Vec::new(),
            at: 0,
        };
        cursor.load()?;
        Ok(cursor)
    }

    fn load(&mut self) -> Result<(), StoreError> {
        self.entries.clear();
        self.at = 0;
        if self.page < self.run.fences.len() {
            let value = self
                .tree
                .get(page_key(self.run.id, self.page as u32))?
                .ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "command index run {}: page {} is missing",
                        self.run.id, self.page
                    ))
                })?;
            for_each_entry(&value, |hash, position| self.entries.push((hash, position)))?;
        }
        Ok(())
    }

    fn peek(&self) -> Option<(u64, u64)> {
        self.entries.get(self.at).copied()
    }

    /// Moves past the current entry and returns the next.
    fn advance(&mut self) -> Result<Option<(u64, u64)>, StoreError> {
        self.at += 1;
        if self.at >= self.entries.len() && self.page < self.run.fences.len() {
            self.page += 1;
            self.load()?;
        }
        Ok(self.peek())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> ::sled::Tree {
        let db = ::sled::Config::new().temporary(true).open().unwrap();
        db.open_tree("log").unwrap()
    }

    #[test]
    fn a_run_finds_its_entries_after_a_reload_and_not_others() {
        let tree = tree();
        let entries: Vec<(u64, u64)> = (1..=1_000u64)
            .map(|position| (command_hash(&format!("cmd-{position}")), position))
            .chain([(command_hash("cmd-7"), 2_000)])
            .collect();
        let (written, keys) = Run::write(&tree, 3, entries).unwrap();
        assert_eq!(written.entries, 1_001);
        assert!(keys <= 4 + 1 + 1, "{keys} keys for 1,001 entries");
        let run = Run::load(&tree, 3, 1_001).unwrap();
        for position in [1u64, 500, 1_000] {
            let found = run
                .candidates(&tree, command_hash(&format!("cmd-{position}")))
                .unwrap();
            assert_eq!(found, vec![position]);
        }
        let mut both = run.candidates(&tree, command_hash("cmd-7")).unwrap();
        both.sort();
        assert_eq!(both, vec![7, 2_000]);
        assert!(
            run.candidates(&tree, command_hash("never"))
                .unwrap()
                .is_empty()
        );
        let mut count = 0;
        run.for_each(&tree, |_, _| count += 1).unwrap();
        assert_eq!(count, 1_001);
        assert!(
            Run::load(&tree, 3, 5_000).is_err(),
            "fences of another size"
        );

        remove_run(&tree, 3).unwrap();
        assert!(tree.is_empty());
    }

    #[test]
    fn a_manifest_reads_back_and_a_cut_one_is_refused() {
        let run = |id, tier| RunMeta {
            id,
            entries: 32_768,
            tier,
        };
        let mut manifest = Manifest {
            indexed: 65_536,
            next_run: 3,
            runs: vec![run(0, 1), run(2, 0)],
            ..Manifest::default()
        };
        let bytes = manifest.encode();
        assert_eq!(Manifest::decode(&bytes).unwrap(), manifest);
        assert!(Manifest::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(Manifest::decode(&[9]).is_err());
        let newer = Manifest {
            format: 2,
            ..Manifest::default()
        };
        assert!(Manifest::decode(&newer.encode()).is_err());

        assert_eq!(manifest.due_merge(), None);
        manifest.runs.extend((3..10).map(|id| run(id, 0)));
        let due = manifest.due_merge().expect("eight runs of tier 0");
        assert_eq!(
            due.iter().map(|run| run.id).collect::<Vec<_>>(),
            vec![2, 3, 4, 5, 6, 7, 8, 9]
        );
    }

    #[test]
    fn merged_runs_find_every_entry_of_their_sources() {
        let tree = tree();
        let sources: Vec<Arc<Run>> = (0..3u64)
            .map(|id| {
                let entries = (0..700u64)
                    .map(|index| {
                        let position = id * 1_000 + index;
                        (command_hash(&format!("cmd-{position}")), position)
                    })
                    .collect();
                Arc::new(Run::write(&tree, id, entries).unwrap().0)
            })
            .collect();
        let stopping = std::sync::atomic::AtomicBool::new(false);
        let (merged, _) = Run::merge(&tree, 9, &sources, &stopping).unwrap().unwrap();
        assert_eq!(merged.entries, 2_100);
        let merged = Run::load(&tree, 9, 2_100).unwrap();
        let mut previous = 0;
        let mut count = 0;
        merged
            .for_each(&tree, |hash, _| {
                assert!(hash >= previous, "in hash order");
                previous = hash;
                count += 1;
            })
            .unwrap();
        assert_eq!(count, 2_100);
        for position in [0u64, 699, 1_350, 2_699] {
            let found = merged
                .candidates(&tree, command_hash(&format!("cmd-{position}")))
                .unwrap();
            assert_eq!(found, vec![position]);
        }
    }
}
