//! Record blocks: consecutive records stored as one sled value under the
//! position of the first, so that a group commit writes one tree entry per
//! few kilobytes of records instead of one per record (each sled entry costs
//! an insert and, every 8–16 entries, a leaf split).
//!
//! A value under `e` + position is either one framed record (first byte is
//! the record's schema version, as every log written before blocks holds) or
//! a block: `[BLOCK_MARKER][count: u32 LE]` then `count` times
//! `[length: u32 LE][framed record]`. Each record keeps its own checksum and
//! hash chain link; the block adds only the lengths.

use super::keys;
use crate::StoreError;
use crate::record::is_record_schema;

/// First byte of a block value; a single record starts with its schema version.
const BLOCK_MARKER: u8 = 0xB1;
const _: () = assert!(!is_record_schema(BLOCK_MARKER));
const BLOCK_HEADER: usize = 5;
/// A block is closed once its records reach this many bytes. Sled writes a
/// whole leaf (up to 17 entries) inline only below 128 KiB, so blocks stay
/// well below 128 KiB / 17.
pub(crate) const BLOCK_BYTES: usize = 4 * 1024;

/// Packs consecutive records into block values of about [`BLOCK_BYTES`].
#[derive(Default)]
pub(crate) struct BlockPacker {
    blocks: Vec<(u64, Vec<u8>)>,
    open: Option<(u64, u32, Vec<u8>)>,
}

impl BlockPacker {
    /// Adds the record at `position` (a new block starts unless it follows
    /// the last one added).
    pub(crate) fn push(&mut self, position: u64, record: &[u8]) {
        let close = match &self.open {
            Some((first, count, bytes)) => {
                bytes.len() + record.len() > BLOCK_BYTES + BLOCK_HEADER
                    || first + u64::from(*count) != position
            }
            None => false,
        };
        if close {
            self.close();
        }
        let (_, count, bytes) = self.open.get_or_insert_with(|| {
            let mut bytes = Vec::with_capacity(BLOCK_BYTES + BLOCK_HEADER + 64);
            bytes.push(BLOCK_MARKER);
            bytes.extend_from_slice(&[0; 4]);
            (position, 0, bytes)
        });
        *count += 1;
        bytes.extend_from_slice(&(record.len() as u32).to_le_bytes());
        bytes.extend_from_slice(record);
    }

    fn close(&mut self) {
        if let Some((first, count, mut bytes)) = self.open.take() {
            bytes[1..BLOCK_HEADER].copy_from_slice(&count.to_le_bytes());
            self.blocks.push((first, bytes));
        }
    }

    /// The blocks, each with the position of its first record.
    pub(crate) fn finish(mut self) -> Vec<(u64, Vec<u8>)> {
        self.close();
        self.blocks
    }
}

/// One stored value of the record space: a block or a single record.
pub(crate) struct Block {
    first: u64,
    value: ::sled::IVec,
}

impl Block {
    pub(crate) fn new(first: u64, value: ::sled::IVec) -> Self {
        Self { first, value }
    }

    /// The stored value the records are slices of.
    pub(crate) fn value(&self) -> &::sled::IVec {
        &self.value
    }

    /// Position of the first record.
    pub(crate) fn first(&self) -> u64 {
        self.first
    }

    /// The records with their positions, in order.
    pub(crate) fn records(&self) -> BlockRecords<'_> {
        let bytes: &[u8] = &self.value;
        match bytes.first() {
            Some(&BLOCK_MARKER) => BlockRecords {
                position: self.first,
                remaining: bytes.get(1..BLOCK_HEADER).map_or(u32::MAX, |count| {
                    u32::from_le_bytes(count.try_into().unwrap_or([0xff; 4]))
                }),
                rest: bytes.get(BLOCK_HEADER..).unwrap_or_default(),
                single: None,
            },
            _ => BlockRecords {
                position: self.first,
                remaining: 0,
                rest: &[],
                single: Some(bytes),
            },
        }
    }

    /// The record at `position`, when this block holds it.
    pub(crate) fn get(&self, position: u64) -> Result<Option<&[u8]>, StoreError> {
        if position < self.first {
            return Ok(None);
        }
        for entry in self.records() {
            let (at, record) = entry?;
            if at == position {
                return Ok(Some(record));
            }
        }
        Ok(None)
    }
}

/// Iterates the records of a [`Block`].
pub(crate) struct BlockRecords<'a> {
    position: u64,
    remaining: u32,
    rest: &'a [u8],
    single: Option<&'a [u8]>,
}

impl<'a> Iterator for BlockRecords<'a> {
    type Item = Result<(u64, &'a [u8]), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(record) = self.single.take() {
            if !record.first().copied().is_some_and(is_record_schema) {
                return Some(Err(StoreError::Corrupt(format!(
                    "value at position {} is neither a record nor a block",
                    self.position
                ))));
            }
            return Some(Ok((self.position, record)));
        }
        if self.remaining == 0 {
            return None;
        }
        let position = self.position;
        let malformed = || {
            Some(Err(StoreError::Corrupt(format!(
                "malformed record block: record at position {position} is cut short"
            ))))
        };
        let Some((length, rest)) = self.rest.split_at_checked(4) else {
            self.remaining = 0;
            return malformed();
        };
        let length = u32::from_le_bytes(length.try_into().unwrap_or_default()) as usize;
        let Some((record, rest)) = rest.split_at_checked(length) else {
            self.remaining = 0;
            return malformed();
        };
        self.rest = rest;
        self.remaining -= 1;
        self.position += 1;
        Some(Ok((position, record)))
    }
}

/// The stored value holding `position`: the one with the greatest first
/// position not above it (it may end before `position`).
pub(crate) fn block_at(tree: &::sled::Tree, position: u64) -> Result<Option<Block>, StoreError> {
    let Some(entry) = tree
        .range(&[keys::EVENT][..]..=&keys::event_key(position)[..])
        .next_back()
    else {
        return Ok(None);
    };
    let (key, value) = entry?;
    let first = keys::position_of_event_key(&key)
        .ok_or_else(|| StoreError::Corrupt("malformed record key".into()))?;
    Ok(Some(Block::new(first, value)))
}

/// The last stored value of the record space.
pub(crate) fn last_block(tree: &::sled::Tree) -> Result<Option<Block>, StoreError> {
    let Some(entry) = tree.scan_prefix([keys::EVENT]).next_back() else {
        return Ok(None);
    };
    let (key, value) = entry?;
    let first = keys::position_of_event_key(&key)
        .ok_or_else(|| StoreError::Corrupt("malformed record key".into()))?;
    Ok(Some(Block::new(first, value)))
}

/// Reads the record at `position` of `tree`.
pub(crate) fn record_at(tree: &::sled::Tree, position: u64) -> Result<Option<Vec<u8>>, StoreError> {
    match block_at(tree, position)? {
        Some(block) => Ok(block.get(position)?.map(<[u8]>::to_vec)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RECORD_SCHEMA_VERSION;

    fn record(fill: u8, length: usize) -> Vec<u8> {
        let mut bytes = vec![fill; length];
        bytes[0] = RECORD_SCHEMA_VERSION;
        bytes
    }

    #[test]
    fn a_block_returns_its_records_at_consecutive_positions() {
        let mut packer = BlockPacker::default();
        let records: Vec<Vec<u8>> = (0..5)
            .map(|index| record(index, 100 + index as usize))
            .collect();
        for (offset, bytes) in records.iter().enumerate() {
            packer.push(10 + offset as u64, bytes);
        }
        let blocks = packer.finish();
        assert_eq!(blocks.len(), 1);
        let block = Block::new(blocks[0].0, blocks[0].1.clone().into());
        assert_eq!(block.first(), 10);
        let read: Vec<(u64, Vec<u8>)> = block
            .records()
            .map(|entry| entry.map(|(at, bytes)| (at, bytes.to_vec())))
            .collect::<Result<_, _>>()
            .unwrap();
        let expected: Vec<(u64, Vec<u8>)> = (10..).zip(records.iter().cloned()).collect();
        assert_eq!(read, expected);
        assert_eq!(block.get(12).unwrap(), Some(&records[2][..]));
        assert_eq!(block.get(9).unwrap(), None);
        assert_eq!(block.get(15).unwrap(), None);
    }

    #[test]
    fn blocks_close_near_the_size_limit_and_a_large_record_gets_its_own() {
        let mut packer = BlockPacker::default();
        for position in 1..=20 {
            packer.push(position, &record(1, 1_000));
        }
        packer.push(21, &record(2, 3 * BLOCK_BYTES));
        packer.push(22, &record(3, 10));
        let blocks = packer.finish();
        let firsts: Vec<u64> = blocks.iter().map(|(first, _)| *first).collect();
        assert_eq!(firsts, vec![1, 5, 9, 13, 17, 21, 22]);
        let mut next = 1;
        for (first, value) in blocks {
            for entry in Block::new(first, value.into()).records() {
                assert_eq!(entry.unwrap().0, next);
                next += 1;
            }
        }
        assert_eq!(next, 23);
    }

    #[test]
    fn a_single_record_value_reads_as_a_block_of_one() {
        let bytes = record(7, 50);
        let block = Block::new(3, bytes.clone().into());
        assert_eq!(block.get(3).unwrap(), Some(&bytes[..]));
    }

    #[test]
    fn a_cut_block_is_reported_not_misread() {
        let mut packer = BlockPacker::default();
        packer.push(1, &record(1, 100));
        packer.push(2, &record(2, 100));
        let (first, mut value) = packer.finish().remove(0);
        value.truncate(value.len() - 10);
        let block = Block::new(first, value.into());
        let entries: Vec<_> = block.records().collect();
        assert!(entries[0].is_ok());
        assert!(matches!(entries[1], Err(StoreError::Corrupt(_))));
        let garbage = Block::new(1, vec![0x42, 1, 2].into());
        assert!(garbage.get(1).is_err());
    }
}
