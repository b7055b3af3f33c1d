//! The frames of the live pages: each event's `append` frame (with its log
//! row) rendered once for every page that shows it, kept for the latest
//! events like the `Subscribe` frames of the shared window
//! (`streams::RecentEvents`), from which the pages read the events.

use std::collections::VecDeque;

use accord_domain::RecordedEvent;
use bytes::Bytes;
use parking_lot::RwLock;

use super::views::log::row;

/// Frames kept (the latest events'), at most.
const KEPT: usize = 4_096;
/// Bytes of frames kept, at most (events can be large: a localization with
/// a hundred long entries is most of a megabyte).
const KEPT_BYTES: usize = 16 * 1024 * 1024;

/// The frames of the latest events, by position.
#[derive(Default)]
pub(crate) struct Frames {
    kept: RwLock<Kept>,
}

#[derive(Default)]
struct Kept {
    frames: VecDeque<(u64, Bytes)>,
    bytes: usize,
}

/// The frame of `event` for a page.
fn render(event: &RecordedEvent) -> Bytes {
    let wire = accord_proto::recorded_event_to_wire(event);
    let data = serde_json::json!({
        "position": wire.position,
        "agreement_id": wire.agreement_id,
        "event_type": wire.event_type,
        "row": row(&wire).into_string(),
    });
    Bytes::from(format!("event: append\ndata: {data}\n\n"))
}

impl Frames {
    /// The frame of `event`: the one kept, or rendered now (and kept when
    /// it is the newest yet).
    pub(crate) fn of(&self, event: &RecordedEvent) -> Bytes {
        let position = event.position;
        {
            let kept = self.kept.read();
            let index = kept.frames.partition_point(|(at, _)| *at < position);
            if let Some((at, frame)) = kept.frames.get(index)
                && *at == position
            {
                return frame.clone();
            }
        }
        let frame = render(event);
        let mut kept = self.kept.write();
        if kept.frames.back().is_none_or(|(last, _)| *last < position) {
            kept.bytes += frame.len();
            kept.frames.push_back((position, frame.clone()));
            while kept.frames.len() > KEPT || (kept.bytes > KEPT_BYTES && kept.frames.len() > 1) {
                if let Some((_, dropped)) = kept.frames.pop_front() {
                    kept.bytes -= dropped.len();
                }
            }
        }
        frame
    }
}
