//! A map of hints that starts over when it is full: the writer's stream
//! heads, the projector's decoded views, the command handler's agreement
//! states, a subscription's countries. A miss is read from disk, so
//! dropping everything at once costs a few reads and keeps memory bounded
//! without the bookkeeping of an LRU.

use std::collections::HashMap;

/// Entries by string key, at most `capacity` of them.
#[derive(Debug, Clone)]
pub struct ClearingMap<V> {
    entries: HashMap<String, V>,
    capacity: usize,
    /// Whether an entry was ever dropped (cleared, removed or made room for).
    dropped: bool,
}

impl<V> ClearingMap<V> {
    /// An empty map that holds at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity,
            dropped: false,
        }
    }

    /// The entry of `key`, if it is held.
    pub fn get(&self, key: &str) -> Option<&V> {
        self.entries.get(key)
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Starts over when `incoming` more entries would not fit.
    pub fn make_room(&mut self, incoming: usize) {
        if self.entries.len() + incoming > self.capacity {
            self.clear();
        }
    }

    /// Holds `value` under `key`, starting over first when a new key does not fit.
    pub fn insert(&mut self, key: String, value: V) {
        if !self.entries.contains_key(&key) {
            self.make_room(1);
        }
        self.entries.insert(key, value);
    }

    /// Holds every entry of `entries`, starting over first when they may not fit.
    pub fn extend(&mut self, entries: impl IntoIterator<Item = (String, V)>) {
        let entries = entries.into_iter();
        self.make_room(entries.size_hint().0);
        for (key, value) in entries {
            self.insert(key, value);
        }
    }

    /// Drops the entry of `key`.
    pub fn remove(&mut self, key: &str) {
        self.dropped |= self.entries.remove(key).is_some();
    }

    /// Drops every entry.
    pub fn clear(&mut self) {
        self.dropped |= !self.entries.is_empty();
        self.entries.clear();
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

    #[test]
    fn a_full_map_starts_over_for_a_new_key_only() {
        let mut map = ClearingMap::new(2);
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
        let mut map = ClearingMap::new(3);
        map.extend([("a".into(), 1), ("b".into(), 2)]);
        map.extend([("c".into(), 3), ("d".into(), 4)]);
        assert_eq!(map.len(), 2);
        assert_eq!(map.get("a"), None);
    }
}
