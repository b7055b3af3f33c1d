//! The index entries of durable records that the background indexer has not
//! written to the tree yet (see `sled::indexer`).
//!
//! A group commit writes only its records; their stream and command index
//! entries are added here once the group is durable, before its head is
//! published, and removed once the indexer's batch holding them is in the
//! tree. Readers look here first and then in the tree, so an entry is
//! always in at least one of them. After a crash the tail is derived again
//! from the records after the indexed mark (`keys::INDEXED`).

use std::collections::HashMap;

use parking_lot::RwLock;

use crate::Fingerprint;

/// The index entries of one record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IndexEntry {
    pub(crate) position: u64,
    pub(crate) agreement_id: String,
    pub(crate) version: u64,
    pub(crate) command_id: String,
    pub(crate) fingerprint: Fingerprint,
}

/// Index entries not yet in the tree, shared by the writer, the indexer and
/// the readers. Empty for logs that write their indexes with their records
/// (NATS replicas).
#[derive(Default)]
pub(crate) struct IndexTail {
    entries: RwLock<TailEntries>,
}

#[derive(Default)]
struct TailEntries {
    /// Per agreement, `(version, position)` in version order.
    streams: HashMap<String, Vec<(u64, u64)>>,
    commands: HashMap<String, (Fingerprint, u64)>,
}

impl IndexTail {
    /// Adds the entries of records made durable, in position order.
    pub(crate) fn add(&self, entries: &[IndexEntry]) {
        let mut tail = self.entries.write();
        for entry in entries {
            tail.streams
                .entry(entry.agreement_id.clone())
                .or_default()
                .push((entry.version, entry.position));
            tail.commands.insert(
                entry.command_id.clone(),
                (entry.fingerprint, entry.position),
            );
        }
    }

    /// Removes entries now written to the tree.
    pub(crate) fn remove(&self, entries: &[IndexEntry]) {
        let mut tail = self.entries.write();
        for entry in entries {
            if let Some(versions) = tail.streams.get_mut(&entry.agreement_id) {
                versions.retain(|(version, _)| *version > entry.version);
                if versions.is_empty() {
                    tail.streams.remove(&entry.agreement_id);
                }
            }
            if tail
                .commands
                .get(&entry.command_id)
                .is_some_and(|(_, position)| *position == entry.position)
            {
                tail.commands.remove(&entry.command_id);
            }
        }
    }

    /// Forgets every entry (the log was emptied).
    pub(crate) fn clear(&self) {
        *self.entries.write() = TailEntries::default();
    }

    /// `(version, position)` of `agreement_id` from `from_version` on.
    pub(crate) fn stream_from(&self, agreement_id: &str, from_version: u64) -> Vec<(u64, u64)> {
        let tail = self.entries.read();
        let Some(versions) = tail.streams.get(agreement_id) else {
            return Vec::new();
        };
        let start = versions.partition_point(|(version, _)| *version < from_version);
        versions[start..].to_vec()
    }

    /// The position of `version` of `agreement_id`, if held.
    pub(crate) fn position_of(&self, agreement_id: &str, version: u64) -> Option<u64> {
        let tail = self.entries.read();
        let versions = tail.streams.get(agreement_id)?;
        let index = versions
            .binary_search_by_key(&version, |(version, _)| *version)
            .ok()?;
        Some(versions[index].1)
    }

    /// The last version of `agreement_id` held and its position.
    pub(crate) fn last_version(&self, agreement_id: &str) -> Option<(u64, u64)> {
        self.entries
            .read()
            .streams
            .get(agreement_id)
            .and_then(|versions| versions.last().copied())
    }

    /// The fingerprint and position of `command_id`, if held.
    pub(crate) fn command(&self, command_id: &str) -> Option<(Fingerprint, u64)> {
        self.entries.read().commands.get(command_id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(position: u64, agreement_id: &str, version: u64) -> IndexEntry {
        IndexEntry {
            position,
            agreement_id: agreement_id.into(),
            version,
            command_id: format!("cmd-{position}"),
            fingerprint: [position as u8; 16],
        }
    }

    #[test]
    fn answers_what_it_holds_and_forgets_what_was_written() {
        let tail = IndexTail::default();
        let first = [entry(1, "a", 1), entry(2, "b", 1), entry(3, "a", 2)];
        let second = [entry(4, "a", 3)];
        tail.add(&first);
        tail.add(&second);
        assert_eq!(tail.stream_from("a", 2), vec![(2, 3), (3, 4)]);
        assert_eq!(tail.position_of("a", 3), Some(4));
        assert_eq!(tail.last_version("b"), Some((1, 2)));
        assert_eq!(tail.command("cmd-3"), Some(([3; 16], 3)));

        tail.remove(&first);
        assert_eq!(tail.stream_from("a", 1), vec![(3, 4)]);
        assert_eq!(tail.last_version("b"), None);
        assert_eq!(tail.command("cmd-3"), None);
        assert_eq!(tail.command("cmd-4"), Some(([4; 16], 4)));

        tail.clear();
        assert_eq!(tail.position_of("a", 3), None);
    }
}
