//! A digest of the stream and command indexes that verification compares
//! with one computed from the records: the sum (mod 2^128) of a keyed hash
//! of every entry, and the count of entries. Each side is one sequential
//! pass (the log in position order, each index in key order), in place of
//! a lookup per record. Sums commute, so the order of either pass does not
//! matter; an entry missing, added, or pointing elsewhere changes the sum.
//! The keys are random per verification, so no stored entry can be crafted
//! to cancel another.

use std::hash::{BuildHasher, RandomState};

/// Random keys of one verification's hashes.
#[derive(Clone, Default)]
pub struct DigestKeys {
    low: RandomState,
    high: RandomState,
}

impl DigestKeys {
    fn hash(&self, entry: impl std::hash::Hash + Copy) -> u128 {
        (u128::from(self.high.hash_one(entry)) << 64) | u128::from(self.low.hash_one(entry))
    }
}

/// What one side found: a sum and a count per index.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IndexDigest {
    stream_sum: u128,
    /// Stream index entries (one per event version).
    pub stream_entries: u64,
    command_sum: u128,
    /// Command index entries.
    pub command_entries: u64,
}

impl IndexDigest {
    /// Counts `version` of `agreement_id` at `position` in the stream index.
    pub fn add_stream(
        &mut self,
        keys: &DigestKeys,
        agreement_id: &[u8],
        version: u64,
        position: u64,
    ) {
        let hash = keys.hash((b's', agreement_id, version, position));
        self.stream_sum = self.stream_sum.wrapping_add(hash);
        self.stream_entries += 1;
    }

    /// Counts `command_id` at `position` in the command index.
    pub fn add_command(&mut self, keys: &DigestKeys, command_id: &str, position: u64) {
        self.add_command_hash(
            keys,
            crate::tree::index::runs::command_hash(command_id),
            position,
        );
    }

    /// Counts a command index entry by the hash of its command id (the
    /// command index on disk keeps hashes, not ids).
    pub(crate) fn add_command_hash(&mut self, keys: &DigestKeys, command_hash: u64, position: u64) {
        let hash = keys.hash((b'c', command_hash, position));
        self.command_sum = self.command_sum.wrapping_add(hash);
        self.command_entries += 1;
    }

    /// True when both stream index sides agree.
    pub fn same_streams(&self, other: &Self) -> bool {
        self.stream_sum == other.stream_sum && self.stream_entries == other.stream_entries
    }

    /// True when both command index sides agree.
    pub fn same_commands(&self, other: &Self) -> bool {
        self.command_sum == other.command_sum && self.command_entries == other.command_entries
    }
}
