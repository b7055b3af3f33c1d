//! The stream index in chunks: `s` + agreement id + 0x00 + first version
//! maps to the positions of that version and the ones after it, written by
//! one commit (8 bytes each). A group that appends 100 events to one
//! agreement writes one entry, not 100. Logs written before chunks hold
//! chunks of one position, which read the same way.

use super::keys;
use crate::StoreError;

/// Positions of consecutive versions of one agreement, from `first_version` on.
pub(crate) struct Chunk {
    pub(crate) first_version: u64,
    positions: ::sled::IVec,
}

impl Chunk {
    pub(crate) fn decode(key: &[u8], positions: ::sled::IVec) -> Result<Self, StoreError> {
        let first_version = keys::version_of_stream_key(key)
            .ok_or_else(|| StoreError::Corrupt("malformed stream key".into()))?;
        if positions.is_empty() || !positions.len().is_multiple_of(8) {
            return Err(StoreError::Corrupt(format!(
                "stream index entry of {} bytes is not a list of positions",
                positions.len()
            )));
        }
        Ok(Self {
            first_version,
            positions,
        })
    }

    /// The last version this chunk holds.
    pub(crate) fn last_version(&self) -> u64 {
        self.first_version + self.len() - 1
    }

    fn len(&self) -> u64 {
        (self.positions.len() / 8) as u64
    }

    /// The position of `version`, when this chunk holds it.
    pub(crate) fn position_of(&self, version: u64) -> Option<u64> {
        let index = usize::try_from(version.checked_sub(self.first_version)?).ok()?;
        keys::decode_u64(self.positions.get(index * 8..)?)
    }

    /// `(version, position)` pairs from `from_version` on.
    pub(crate) fn entries_from(&self, from_version: u64) -> impl Iterator<Item = (u64, u64)> + '_ {
        let skip = from_version.saturating_sub(self.first_version) as usize;
        self.positions
            .chunks_exact(8)
            .enumerate()
            .skip(skip)
            .filter_map(move |(index, bytes)| {
                Some((self.first_version + index as u64, keys::decode_u64(bytes)?))
            })
    }
}

/// Encodes positions of consecutive versions as a chunk value.
pub(crate) fn encode_chunk(positions: &[u64]) -> Vec<u8> {
    positions
        .iter()
        .flat_map(|position| position.to_be_bytes())
        .collect()
}

/// The chunk holding `version` of `agreement_id`, if any.
pub(crate) fn chunk_at(
    tree: &::sled::Tree,
    agreement_id: &str,
    version: u64,
) -> Result<Option<Chunk>, StoreError> {
    let end = keys::stream_key(agreement_id, version);
    // Most lookups ask for a chunk's first version (a stream read from 1, an
    // agreement appended to once per group): an exact get, before the range
    // scan that costs several.
    if let Some(positions) = tree.get(&end)? {
        return Chunk::decode(&end, positions).map(Some);
    }
    let start = keys::stream_key(agreement_id, 0);
    match tree.range(start..=end).next_back() {
        Some(entry) => {
            let (key, positions) = entry?;
            let chunk = Chunk::decode(&key, positions)?;
            Ok((chunk.last_version() >= version).then_some(chunk))
        }
        None => Ok(None),
    }
}

/// The last chunk of `agreement_id`, if any.
pub(crate) fn last_chunk(
    tree: &::sled::Tree,
    agreement_id: &str,
) -> Result<Option<Chunk>, StoreError> {
    match tree
        .scan_prefix(keys::stream_prefix(agreement_id))
        .next_back()
    {
        Some(entry) => {
            let (key, positions) = entry?;
            Ok(Some(Chunk::decode(&key, positions)?))
        }
        None => Ok(None),
    }
}

/// Calls `visit` with `(version, position)` of `agreement_id` from
/// `from_version` on, in order, until it returns false.
pub(crate) fn for_each_from(
    tree: &::sled::Tree,
    agreement_id: &str,
    from_version: u64,
    mut visit: impl FnMut(u64, u64) -> Result<bool, StoreError>,
) -> Result<(), StoreError> {
    let from_version = from_version.max(1);
    // Start at the chunk holding `from_version`, which may begin before it.
    let start = chunk_at(tree, agreement_id, from_version)?
        .map_or(from_version, |chunk| chunk.first_version);
    let end = keys::stream_key(agreement_id, u64::MAX);
    for entry in tree.range(keys::stream_key(agreement_id, start)..=end) {
        let (key, positions) = entry?;
        for (version, position) in Chunk::decode(&key, positions)?.entries_from(from_version) {
            if !visit(version, position)? {
                return Ok(());
            }
        }
    }
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
    fn chunks_answer_every_version_they_hold() {
        let tree = tree();
        tree.insert(keys::stream_key("a", 1), encode_chunk(&[1]))
            .unwrap();
        tree.insert(keys::stream_key("a", 2), encode_chunk(&[5, 6, 7]))
            .unwrap();
        tree.insert(keys::stream_key("a", 5), encode_chunk(&[20]))
            .unwrap();
        tree.insert(keys::stream_key("a-b", 1), encode_chunk(&[2, 3]))
            .unwrap();

        assert_eq!(
            chunk_at(&tree, "a", 3).unwrap().unwrap().position_of(3),
            Some(6)
        );
        assert_eq!(
            chunk_at(&tree, "a", 5).unwrap().unwrap().position_of(5),
            Some(20)
        );
        assert!(chunk_at(&tree, "a", 6).unwrap().is_none());
        assert!(chunk_at(&tree, "b", 1).unwrap().is_none());
        assert_eq!(last_chunk(&tree, "a").unwrap().unwrap().last_version(), 5);
        assert_eq!(last_chunk(&tree, "a-b").unwrap().unwrap().last_version(), 2);
        assert!(last_chunk(&tree, "c").unwrap().is_none());

        let collect = |agreement_id: &str, from_version: u64, most: usize| {
            let mut seen = Vec::new();
            for_each_from(&tree, agreement_id, from_version, |version, position| {
                seen.push((version, position));
                Ok(seen.len() < most)
            })
            .unwrap();
            seen
        };
        assert_eq!(
            collect("a", 0, 99),
            vec![(1, 1), (2, 5), (3, 6), (4, 7), (5, 20)]
        );
        assert_eq!(collect("a", 3, 99), vec![(3, 6), (4, 7), (5, 20)]);
        assert_eq!(collect("a", 2, 2), vec![(2, 5), (3, 6)]);
        assert!(collect("a", 6, 99).is_empty());
        assert_eq!(collect("a-b", 2, 99), vec![(2, 3)]);
    }

    #[test]
    fn a_malformed_chunk_is_reported() {
        let tree = tree();
        tree.insert(keys::stream_key("a", 1), vec![1, 2, 3])
            .unwrap();
        assert!(last_chunk(&tree, "a").is_err());
        assert!(for_each_from(&tree, "a", 1, |_, _| Ok(true)).is_err());
    }
}
