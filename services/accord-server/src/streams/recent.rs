//! The last few thousand events, decoded once and shared by every stream at
//! the head, so that a thousand subscribers do not each read and decode each
//! new event from the store. A stream that falls behind the window reads from
//! the log as before.

use std::collections::VecDeque;
use std::sync::Arc;

use parking_lot::RwLock;

use accord_domain::RecordedEvent;
use accord_store::EventLog;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Events kept.
const WINDOW: usize = 4_096;

/// The shared window of recent events.
pub struct RecentEvents {
    window: RwLock<VecDeque<Arc<RecordedEvent>>>,
    /// The last position in the window; streams at the head wait on it.
    head: watch::Sender<u64>,
}

impl RecentEvents {
    /// Starts following `log` from its current head; the task (returned too,
    /// so that shutdown can wait for it to let go of the log) ends when
    /// `stopping` turns true.
    pub fn follow(
        log: Arc<dyn EventLog>,
        stopping: CancellationToken,
    ) -> (Arc<Self>, tokio::task::JoinHandle<()>) {
        let recent = Arc::new(Self {
            window: RwLock::new(VecDeque::with_capacity(WINDOW)),
            head: watch::Sender::new(log.head()),
        });
        let shared = recent.clone();
        let task = tokio::spawn(async move {
            let mut log_head = log.watch_head();
            loop {
                let next = *shared.head.borrow() + 1;
                match log.read_log(next, WINDOW).await {
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
        {
            let mut window = self.window.write();
            for event in events {
                if window.len() == WINDOW {
                    window.pop_front();
                }
                window.push_back(Arc::new(event));
            }
        }
        self.head.send_replace(last);
    }

    /// Up to `max` events from `from` on, if the window still holds `from`.
    pub(crate) fn from(&self, from: u64, max: usize) -> Option<Vec<Arc<RecordedEvent>>> {
        let window = self.window.read();
        let first = window.front()?.position;
        let last = window.back()?.position;
        if from < first || from > last {
            return None;
        }
        let start = (from - first) as usize;
        Some(window.iter().skip(start).take(max).cloned().collect())
    }

    /// The last position the window holds.
    pub(crate) fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.subscribe()
    }
}
