//! An agreement's latest events, newest back: the console's timeline.

use accord_proto::v1;
use accord_store::{EventLog, StoreError};

/// Events of the timeline read from the log at once.
const CHUNK: u64 = 100;

/// The latest events of agreement `id` up to `version` (at or below
/// `as_of`, when not 0), oldest first: at most `max_events` of them and
/// about `max_bytes`, read from the newest back; and how many earlier
/// events are left out.
pub(super) async fn latest_events(
    log: &dyn EventLog,
    id: &str,
    version: u64,
    as_of: u64,
    max_events: usize,
    max_bytes: usize,
) -> Result<(Vec<v1::RecordedEvent>, u64), StoreError> {
    let from = version.saturating_sub(max_events as u64) + 1;
    let mut newest_first = Vec::new();
    let mut bytes = 0;
    let mut end = version;
    'read: while end >= from && end > 0 {
        let start = end.saturating_sub(CHUNK - 1).max(from);
        // A read may stop short of `end` (it holds at most `READ_BYTES`).
        let mut chunk = Vec::new();
        let mut next = start;
        while next <= end {
            let read = log.read_stream(id, next, (end + 1 - next) as usize).await?;
            let Some(last) = read.last() else { break };
            next = last.version + 1;
            chunk.extend(read);
        }
        for event in chunk.iter().rev() {
            if as_of != 0 && event.position > as_of {
                continue;
            }
            let wire = accord_proto::recorded_event_to_wire(event);
            bytes += prost::Message::encoded_len(&wire);
            newest_first.push(wire);
            if bytes >= max_bytes {
                break 'read;
            }
        }
        end = start - 1;
    }
    let earlier = newest_first
        .last()
        .map_or(from - 1, |oldest| oldest.version - 1);
    newest_first.reverse();
    Ok((newest_first, earlier))
}
