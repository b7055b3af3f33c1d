//! The unsettled events a group's task holds, in the form they go out to
//! members, with the bytes they take (the task reads ahead by events and by
//! bytes).

use std::collections::BTreeMap;

use accord_proto::v1;
use prost::Message;

/// Unsettled events by position, and their encoded bytes.
#[derive(Default)]
pub(crate) struct HeldEvents {
    events: BTreeMap<u64, (v1::RecordedEvent, usize)>,
    bytes: usize,
}

impl HeldEvents {
    pub(crate) fn insert(&mut self, position: u64, event: v1::RecordedEvent) {
        let bytes = event.encoded_len();
        self.bytes += bytes;
        if let Some((_, replaced)) = self.events.insert(position, (event, bytes)) {
            self.bytes -= replaced;
        }
    }

    pub(crate) fn remove(&mut self, position: u64) {
        if let Some((_, bytes)) = self.events.remove(&position) {
            self.bytes -= bytes;
        }
    }

    pub(crate) fn get(&self, position: u64) -> Option<&v1::RecordedEvent> {
        self.events.get(&position).map(|(event, _)| event)
    }

    /// The bytes of the events held.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bytes_follow_what_is_held() {
        let mut held = HeldEvents::default();
        let event = |id: &str| v1::RecordedEvent {
            agreement_id: id.into(),
            ..Default::default()
        };
        held.insert(1, event("a"));
        held.insert(2, event(&"b".repeat(1_000)));
        let both = event("a").encoded_len() + event(&"b".repeat(1_000)).encoded_len();
        assert_eq!(held.bytes(), both);
        held.insert(2, event("c"));
        assert_eq!(held.bytes(), 2 * event("a").encoded_len());
        held.remove(1);
        held.remove(1);
        assert_eq!(held.bytes(), event("c").encoded_len());
        assert_eq!(held.get(2).map(|e| e.agreement_id.as_str()), Some("c"));
    }
}
