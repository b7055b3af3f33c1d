//! A window of the index tail: the stream and command index entries of
//! consecutive records not yet written to the tree's indexes, kept in
//! memory. The records hold everything a window holds, so a window lost in
//! a crash is derived again from them at open.

use std::collections::HashMap;

/// Records per window unless told otherwise: the indexer writes a
/// window's entries as a few large values once it holds this many.
pub const DEFAULT_WINDOW_RECORDS: usize = 32_768;
/// Bytes of ids per window before it is written, whatever its count
/// (command and agreement ids are up to 128 bytes each).
pub(crate) const WINDOW_BYTES: usize = 8 * 1024 * 1024;
/// Bytes a window's maps spend per entry besides the ids.
const ENTRY_OVERHEAD: usize = 64;

/// What one record adds to the indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) position: u64,
    pub(crate) agreement_id: String,
    pub(crate) version: u64,
    /// The record's command id, when it is the first record of it (the
    /// command index points at a command's first record).
    pub(crate) command_id: Option<String>,
}

/// Consecutive versions of one agreement in a window.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct StreamRun {
    pub(crate) first_version: u64,
    pub(crate) positions: Vec<u64>,
}

impl StreamRun {
    pub(crate) fn last_version(&self) -> u64 {
        self.first_version + self.positions.len() as u64 - 1
    }

    pub(crate) fn position_of(&self, version: u64) -> Option<u64> {
        let index = usize::try_from(version.checked_sub(self.first_version)?).ok()?;
        self.positions.get(index).copied()
    }
}

/// The entries of records `first..=last`.
#[derive(Debug, Default)]
pub(crate) struct Window {
    /// Records that fill it.
    limit: usize,
    pub(crate) first: u64,
    pub(crate) last: u64,
    bytes: usize,
    pub(crate) streams: HashMap<Box<str>, StreamRun>,
    pub(crate) commands: HashMap<Box<str>, u64>,
}

impl Window {
    /// An empty window whose first record will be at `first`, full at
    /// `limit` records.
    pub(crate) fn starting_at(first: u64, limit: usize) -> Self {
        Self {
            limit: limit.max(1),
            first,
            last: first - 1,
            ..Self::default()
        }
    }

    pub(crate) fn records(&self) -> u64 {
        self.last + 1 - self.first
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.records() == 0
    }

    /// Full: the indexer should write it.
    pub(crate) fn is_full(&self) -> bool {
        self.records() as usize >= self.limit || self.bytes >= WINDOW_BYTES
    }

    /// Adds the entries of the next record (on a NATS replica the next
    /// record may come after a quarantined position). Versions of an
    /// agreement in one window are consecutive: every record after the
    /// indexed ones is in the tail.
    pub(crate) fn add(&mut self, entry: IndexEntry) {
        debug_assert!(entry.position > self.last);
        self.last = entry.position;
        self.bytes += ENTRY_OVERHEAD;
        match self.streams.get_mut(entry.agreement_id.as_str()) {
            Some(run) => run.positions.push(entry.position),
            None => {
                self.bytes += entry.agreement_id.len();
                self.streams.insert(
                    entry.agreement_id.into_boxed_str(),
                    StreamRun {
                        first_version: entry.version,
                        positions: vec![entry.position],
                    },
                );
            }
        }
        if let Some(command_id) = entry.command_id {
            self.bytes += command_id.len();
            self.commands
                .entry(command_id.into_boxed_str())
                .or_insert(entry.position);
        }
    }

    /// The entries of positions up to `through`, as the stream side of a
    /// digest counts them.
    pub(crate) fn stream_entries(
        &self,
        through: u64,
    ) -> impl Iterator<Item = (&str, u64, u64)> + '_ {
        self.streams.iter().flat_map(move |(agreement_id, run)| {
            run.positions
                .iter()
                .enumerate()
                .filter(move |(_, position)| **position <= through)
                .map(move |(index, position)| {
                    (&**agreement_id, run.first_version + index as u64, *position)
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(position: u64, agreement_id: &str, version: u64, command: &str) -> IndexEntry {
        IndexEntry {
            position,
            agreement_id: agreement_id.into(),
            version,
            command_id: Some(command.into()),
        }
    }

    #[test]
    fn a_window_keeps_runs_per_agreement_and_first_positions_of_commands() {
        let mut window = Window::starting_at(11, 3);
        assert!(window.is_empty());
        window.add(entry(11, "a", 4, "c1"));
        window.add(entry(12, "b", 1, "c2"));
        window.add(entry(13, "a", 5, "c1"));
        assert_eq!(window.records(), 3);
        assert!(window.is_full());
        let run = &window.streams["a"];
        assert_eq!((run.first_version, run.last_version()), (4, 5));
        assert_eq!(run.position_of(5), Some(13));
        assert_eq!(run.position_of(3), None);
        assert_eq!(window.commands["c1"], 11);
        let mut through_12: Vec<_> = window.stream_entries(12).collect();
        through_12.sort();
        assert_eq!(through_12, vec![("a", 4, 11), ("b", 1, 12)]);
    }
}
