//! One reader of the log for every live page: each new event is read,
//! rendered (its log row) and framed as a Server-Sent Event once, then
//! handed to every open page (`live`), which only filters and writes.

use std::sync::Arc;

use accord_domain::RecordedEvent;
use accord_store::EventLog;
use bytes::Bytes;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use super::views::log::row;

/// Batches of new events kept for pages that are slow to take them; a page
/// further behind reads the log itself.
const KEPT: usize = 256;
/// Events read from the log at once.
const BATCH: usize = 500;

/// A new event, framed once for every page.
pub(crate) struct FeedItem {
    pub(crate) event: RecordedEvent,
    /// `event: append` with the event's row, as the page reads it.
    pub(crate) frame: Bytes,
}

/// The console's feed of new events.
pub(crate) struct Feed {
    sender: broadcast::Sender<Arc<Vec<FeedItem>>>,
}

/// The frame of `event` for a page.
pub(crate) fn frame(event: &RecordedEvent) -> Bytes {
    let wire = accord_proto::recorded_event_to_wire(event);
    let data = serde_json::json!({
        "position": wire.position,
        "agreement_id": wire.agreement_id,
        "event_type": wire.event_type,
        "row": row(&wire).into_string(),
    });
    Bytes::from(format!("event: append\ndata: {data}\n\n"))
}

impl Feed {
    /// Starts following `log` from its head until `stopping`, as one of
    /// `tasks`.
    pub(crate) fn start(
        log: Arc<dyn EventLog>,
        stopping: CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) -> Arc<Self> {
        let (sender, _) = broadcast::channel(KEPT);
        let feed = Arc::new(Self { sender });
        tasks.spawn(follow(log, feed.sender.clone(), stopping));
        feed
    }

    /// New events from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Arc<Vec<FeedItem>>> {
        self.sender.subscribe()
    }
}

async fn follow(
    log: Arc<dyn EventLog>,
    sender: broadcast::Sender<Arc<Vec<FeedItem>>>,
    stopping: CancellationToken,
) {
    let mut head = log.watch_head();
    let mut after = log.head();
    loop {
        let now = log.head();
        while after < now {
            let events = match log.read_log(after + 1, BATCH).await {
                Ok(events) if !events.is_empty() => events,
                // Positions that hold no event (quarantined on NATS).
                Ok(_) => {
                    after = now;
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "the console's feed cannot read the log; pages read it themselves");
                    after = now;
                    break;
                }
            };
            after = events.last().map_or(after, |event| event.position);
            // Framed only when someone is listening.
            if sender.receiver_count() > 0 {
                let items = events
                    .into_iter()
                    .map(|event| FeedItem {
                        frame: frame(&event),
                        event,
                    })
                    .collect();
                let _ = sender.send(Arc::new(items));
            }
        }
        tokio::select! {
            () = stopping.cancelled() => return,
            changed = head.changed() => if changed.is_err() { return },
        }
    }
}
