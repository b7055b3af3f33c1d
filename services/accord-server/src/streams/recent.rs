//! The last few thousand events, decoded once and shared by every stream at
//! the head, so that a thousand subscribers do not each read and decode each
//! new event from the store, each with its `Subscribe` frame, encoded once
//! for all of them. A stream that falls behind the window reads from the log
//! as before.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::RwLock;

use accord_domain::RecordedEvent;
use accord_proto::v1::{self, subscribe_response::Message};
use accord_proto::{SubscribeFrame, recorded_event_to_wire};
use accord_store::EventLog;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Events kept, at most.
const WINDOW: usize = 4_096;
/// Bytes the window holds, at most (events are up to the largest event
/// size each; a window of the largest would be gigabytes).
const WINDOW_BYTES: usize = 64 * 1024 * 1024;
/// Events read from the log at once to fill the window.
const READ: usize = 512;

/// An event of the window and its encoded `Subscribe` message.
struct Shared {
    event: Arc<RecordedEvent>,
    frame: SubscribeFrame,
}

impl Shared {
    /// What it holds in memory, about: the frame, and the decoded event,
    /// which takes about as much again.
    fn bytes(&self) -> usize {
        2 * self.frame.bytes().len() + 256
    }
}

/// The events of the window and the bytes they hold.
#[derive(Default)]
struct Window {
    events: VecDeque<Shared>,
    bytes: usize,
}

/// The shared window of recent events.
pub(crate) struct RecentEvents {
    window: RwLock<Window>,
    /// The last position in the window; streams at the head wait on it.
    head: watch::Sender<u64>,
}

impl RecentEvents {
    /// Starts following `log` from its current head; the task (returned too,
    /// so that shutdown can wait for it to let go of the log) ends when
    /// `stopping` turns true.
    pub(crate) fn follow(
        log: Arc<dyn EventLog>,
        stopping: CancellationToken,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let recent = Arc::new(Self {
            window: RwLock::new(Window::default()),
            head: watch::Sender::new(log.head()),
        });
        let shared = recent.clone();
        let task = tokio::spawn(async move {
            let mut log_head = log.watch_head();
            loop {
                let next = *shared.head.borrow() + 1;
                match log.read_log(next, READ).await {
                    Ok(events) if !events.is_empty() => shared.push(events),
                    Ok(_) => {
                        tokio::select! {
                            changed = log_head.wait_for(|head| *head >= next) => if changed.is_err() { return },
                            _ = stopping.cancelled() => return,
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "recent events cannot read the log");
                        tokio::select! {
                            () = tokio::time::sleep(std::time::Duration::from_millis(100)) => {}
                            _ = stopping.cancelled() => return,
                        }
                    }
                }
            }
        });
        (recent, task)
    }

    fn push(&self, events: Vec<RecordedEvent>) {
        let Some(last) = events.last().map(|event| event.position) else {
            return;
        };
        // Encoded before the lock is taken: readers never wait for it.
        let shared: Vec<Shared> = events
            .into_iter()
            .map(|event| Shared {
                frame: event_frame(&event),
                event: Arc::new(event),
            })
            .collect();
        {
            let mut window = self.window.write();
            for event in shared {
                window.bytes += event.bytes();
                window.events.push_back(event);
                while window.events.len() > WINDOW
                    || (window.bytes > WINDOW_BYTES && window.events.len() > 1)
                {
                    if let Some(dropped) = window.events.pop_front() {
                        window.bytes -= dropped.bytes();
                    }
                }
            }
        }
        self.head.send_replace(last);
    }

    /// Up to `max` events from `from` on, if the window still holds `from`.
    pub(crate) fn from(&self, from: u64, max: usize) -> Option<Vec<Arc<RecordedEvent>>> {
        let guard = self.window.read();
        let window = &guard.events;
        let first = window.front()?.event.position;
        let last = window.back()?.event.position;
        if from < first || from > last {
            return None;
        }
        // Positions may skip quarantined ones (NATS): found, not computed.
        let start = window.partition_point(|shared| shared.event.position < from);
        Some(
            window
                .iter()
                .skip(start)
                .take(max)
                .map(|shared| shared.event.clone())
                .collect(),
        )
    }

    /// The `Subscribe` frame of the event at `position`: the window's, or
    /// encoded now when the window no longer holds it.
    pub(crate) fn frame(&self, event: &RecordedEvent) -> SubscribeFrame {
        {
            let guard = self.window.read();
            let window = &guard.events;
            let index = window.partition_point(|shared| shared.event.position < event.position);
            if let Some(shared) = window.get(index)
                && shared.event.position == event.position
            {
                return shared.frame.clone();
            }
        }
        event_frame(event)
    }

    /// The last position the window holds.
    pub(crate) fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }
}

/// The `Subscribe` message of `event`, encoded.
fn event_frame(event: &RecordedEvent) -> SubscribeFrame {
    SubscribeFrame::encode(&v1::SubscribeResponse {
        message: Some(Message::Event(recorded_event_to_wire(event))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_domain::{DeliveryRecorded, Event, EventMetadata, Timestamp};

    fn event(position: u64) -> RecordedEvent {
        RecordedEvent {
            position,
            agreement_id: "kz".into(),
            version: position,
            event_id: [position as u8; 16],
            recorded_at: Timestamp::from_seconds(1),
            metadata: EventMetadata::default(),
            event: Event::DeliveryRecorded(DeliveryRecorded {
                units: 1,
                delivered_at: Timestamp::from_seconds(1),
                reference: String::new(),
            }),
        }
    }

    #[test]
    fn the_window_finds_positions_across_quarantined_gaps_and_shares_frames() {
        let recent = RecentEvents {
            window: RwLock::new(Window::default()),
            head: watch::Sender::new(0),
        };
        // Positions 3 and 4 hold quarantined messages, not events.
        recent.push(vec![event(1), event(2), event(5), event(6)]);
        let positions = |from| {
            recent.from(from, 10).map(|events| {
                events
                    .iter()
                    .map(|event| event.position)
                    .collect::<Vec<_>>()
            })
        };
        assert_eq!(positions(2), Some(vec![2, 5, 6]));
        assert_eq!(positions(5), Some(vec![5, 6]));
        assert_eq!(positions(3), Some(vec![5, 6]));
        assert_eq!(positions(7), None);
        assert_eq!(*recent.head.borrow(), 6);
        // The window's frame is the event's encoding, and one shared buffer.
        let frame = recent.frame(&event(5));
        assert_eq!(frame, event_frame(&event(5)));
        assert_eq!(
            frame.bytes().as_ptr(),
            recent.frame(&event(5)).bytes().as_ptr(),
            "encoded once, shared"
        );
        // An event the window does not hold is encoded on the spot.
        assert_eq!(recent.frame(&event(9)), event_frame(&event(9)));
    }
}
