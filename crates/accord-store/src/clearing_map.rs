//! A map of hints that starts over when it is full: the writer's stream
//! heads, the projector's decoded views, the command handler's agreement
//! states, a subscription's countries. A miss is read from disk, so
//! dropping everything at once costs a few reads and keeps memory bounded
//! without the bookkeeping of an LRU.

use std::collections::HashMap;

/// Bytes an entry costs besides its key's bytes and its value's heap bytes:
/// the table's slot (the key's `String`, the value, the hash's control
/// byte) and the table's spare room, rounded up.
pub(crate) const ENTRY_BYTES: usize = 64;

/// Entries by string key, at most `budget` bytes of them: each costs 64
/// bytes of slot, its key's length and what its weigher says its value
/// holds on the heap.
#[derive(Debug, Clone)]
pub struct ClearingMap<V> {
    entries: HashMap<String, V>,
    weigh: fn(&V) -> usize,
    budget: usize,
    bytes: usize,
    /// Whether an entry was ever dropped (cleared, removed or made room for).
    dropped: bool,
}

impl<V> ClearingMap<V> {
    /// An empty map of at most `budget` bytes; `weigh` gives the heap bytes
    /// a value holds beyond its own size.
    pub fn new(budget: usize, weigh: fn(&V) -> usize) -> Self {
        Self {
            entries: HashMap::new(),
            weigh,
            budget,
            bytes: 0,
            dropped: false,
        }
    }

    fn cost(&self, key: &str, value: &V) -> usize {
        ENTRY_BYTES + key.len() + (self.weigh)(value)
    }

    /// The entry of `key`, if it is held.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Bytes held, as the budget counts them.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Holds `value` under `key`, starting over first when it does not fit.
    /// A value larger than the whole budget is not held.
    pub fn insert(&mut self, key: String, value: V) {
        let cost = self.cost(&key, &value);
        if let Some(old) = self.entries.remove(&key) {
            self.bytes -= self.cost(&key, &old);
        }
        if cost > self.budget {
            self.dropped = true;
            return;
        }
        if self.bytes + cost > self.budget {
            self.clear();
        }
        self.bytes += cost;
        self.entries.insert(key, value);
    }

    /// Holds every entry of `entries`, starting over first when they do not
    /// all fit beside what is held.
    pub fn extend(&mut self, entries: impl IntoIterator<Item = (String, V)>) {
        let entries: Vec<(String, V)> = entries.into_iter().collect();
        let incoming: usize = entries
            .iter()
            .map(|(key, value)| self.cost(key, value))
            .sum();
        if self.bytes + incoming > self.budget {
            self.clear();
        }
        for (key, value) in entries {
            self.insert(key, value);
        }
    }

    /// Drops the entry of `key`.
    pub fn remove(&mut self, key: &str) {
        if let Some(old) = self.entries.remove(key) {
            self.bytes -= self.cost(key, &old);
            self.dropped = true;
        }
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.dropped |= !self.entries.is_empty();
        self.entries.clear();
        self.bytes = 0;
    }

    /// True while every entry inserted since the map was made is still held
    /// (a miss then means the key was never inserted).
    pub fn dropped_nothing(&self) -> bool {
        !self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_heap(_: &u64) -> usize {
        0
    }

    #[test]
    fn a_full_map_starts_over_for_a_new_key_only() {
        let mut map = ClearingMap::new(2 * (ENTRY_BYTES + 1), no_heap);
        map.insert("a".into(), 1);
        map.insert("b".into(), 2);
        map.insert("b".into(), 3);
        assert_eq!((map.len(), map.get("b")), (2, Some(&3)));
        assert!(map.dropped_nothing());
        map.insert("c".into(), 4);
        assert_eq!((map.len(), map.get("a"), map.get("c")), (1, None, Some(&4)));
        assert!(!map.dropped_nothing());
    }

    #[test]
    fn room_is_made_for_a_whole_batch() {
        let mut map = ClearingMap::new(3 * (ENTRY_BYTES + 1), no_heap);
        map.extend([("a".into(), 1), ("b".into(), 2)]);
        map.extend([("c".into(), 3), ("d".into(), 4)]);
        assert_eq!(map.len(), 2);
        assert_eq!(map.get("a"), None);
    }

    /// The budget counts bytes, not entries: long keys and large values
    /// fill it sooner, and what is held never exceeds it.
    #[test]
    fn long_keys_and_large_values_fill_the_budget_in_bytes() {
        let budget = 16 * 1024;
        let mut views: ClearingMap<Vec<u8>> = ClearingMap::new(budget, Vec::len);
        for n in 0..1_000 {
            views.insert(format!("{n:0>120}"), vec![0; 500]);
            assert!(views.bytes() <= budget);
        }
        assert!(views.len() <= budget / (ENTRY_BYTES + 120 + 500));
        assert!(!views.dropped_nothing());
        // A value larger than the budget is not held at all.
        views.insert("huge".into(), vec![0; budget]);
        assert_eq!(views.get("huge"), None);
        assert!(views.bytes() <= budget);
    }
}
