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

/// What the indexes on disk cover.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Manifest {
    /// Every record up to this position has its entries on disk.
    pub(crate) indexed: u64,
    /// The id the next run gets.
    pub(crate) next_run: u64,
    /// The runs, oldest first: id and entries.
    pub(crate) runs: Vec<(u64, u64)>,
}

impl Manifest {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(21 + self.runs.len() * 16);
        bytes.push(MANIFEST_FORMAT);
        bytes.extend_from_slice(&self.indexed.to_be_bytes());
        bytes.extend_from_slice(&self.next_run.to_be_bytes());
        bytes.extend_from_slice(&(self.runs.len() as u32).to_be_bytes());
        for (id, entries) in &self.runs {
            bytes.extend_from_slice(&id.to_be_bytes());
            bytes.extend_from_slice(&entries.to_be_bytes());
        }
        bytes
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = || StoreError::Corrupt("malformed index manifest".into());
        if bytes.first() != Some(&MANIFEST_FORMAT) {
            return Err(StoreError::Corrupt(format!(
                "index manifest of format {:?}; this server reads format {MANIFEST_FORMAT}",
                bytes.first()
            )));
        }
        let u64_at = |at: usize| keys::decode_u64(bytes.get(at..).unwrap_or_default());
        let indexed = u64_at(1).ok_or_else(corrupt)?;
        let next_run = u64_at(9).ok_or_else(corrupt)?;
        let count = bytes
            .get(17..21)
            .and_then(|count| count.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or_else(corrupt)? as usize;
        if bytes.len() != 21 + count * 16 {
            return Err(corrupt());
        }
        let runs = (0..count)
            .map(|index| {
                let at = 21 + index * 16;
                Some((u64_at(at)?, u64_at(at + 8)?))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(corrupt)?;
        Ok(Self {
            indexed,
            next_run,
            runs,
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
        let mut filter = Bloom::with_entries(entries.len());
        let mut fences = Vec::with_capacity(entries.len().div_ceil(PAGE_ENTRIES));
        let mut written = 0;
        for (page, chunk) in entries.chunks(PAGE_ENTRIES).enumerate() {
            fences.push(chunk[0].0);
            let mut value = Vec::with_capacity(chunk.len() * ENTRY_BYTES);
            for (hash, position) in chunk {
                filter.insert(*hash);
                value.extend_from_slice(&hash.to_be_bytes());
                value.extend_from_slice(&position.to_be_bytes());
            }
            tree.insert(page_key(id, page as u32), value)?;
            written += 1;
        }
        for (chunk, bytes) in filter.as_bytes().chunks(FILTER_CHUNK_BYTES).enumerate() {
            tree.insert(filter_key(id, chunk as u32), bytes)?;
            written += 1;
        }
        let fence_bytes: Vec<u8> = fences.iter().flat_map(|hash| hash.to_be_bytes()).collect();
        tree.insert(fences_key(id), fence_bytes)?;
        written += 1;
        Ok((
            Self {
                id,
                entries: entries.len() as u64,
                fences,
                filter,
            },
            written,
        ))
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
        let manifest = Manifest {
            indexed: 65_536,
            next_run: 3,
            runs: vec![(0, 32_768), (2, 32_768)],
        };
        let bytes = manifest.encode();
        assert_eq!(Manifest::decode(&bytes).unwrap(), manifest);
        assert!(Manifest::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(Manifest::decode(&[9]).is_err());
    }
}
