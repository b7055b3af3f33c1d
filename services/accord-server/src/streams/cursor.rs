//! Reads the log in order from a position, a batch at a time: from the shared
//! window of recent events when it holds the position, from the log otherwise.

use std::collections::VecDeque;
use std::sync::Arc;

use accord_domain::RecordedEvent;
use accord_store::{EventLog, StoreError};
use tokio::sync::watch;

use super::CURSOR_BATCH;
use super::recent::RecentEvents;

/// How long a stream at the head waits for the shared window before it reads
/// a new event from the log itself.
const WINDOW_GRACE: std::time::Duration = std::time::Duration::from_millis(100);

/// A position in the log and the events read ahead of it.
pub(crate) struct LogCursor {
    log: Arc<dyn EventLog>,
    recent: Arc<RecentEvents>,
    next: u64,
    buffered: VecDeque<Arc<RecordedEvent>>,
    /// The head of the shared window: new events are there before a stream wakes.
    head: watch::Receiver<u64>,
}

impl LogCursor {
    /// Starts after `position` (0 = before the first event).
    pub(crate) fn after(log: Arc<dyn EventLog>, recent: Arc<RecentEvents>, position: u64) -> Self {
        let head = recent.watch_head();
        Self {
            log,
            recent,
            next: position.saturating_add(1),
            buffered: VecDeque::new(),
            head,
        }
    }

    /// Returns the next event, or None when the cursor is at the head.
    pub(crate) async fn next(&mut self) -> Result<Option<Arc<RecordedEvent>>, StoreError> {
        if self.buffered.is_empty() {
            // At the head: nothing to read (every stream asks after each batch).
            if self.next > self.log.head() {
                return Ok(None);
            }
            let mut window = self.recent.from(self.next, CURSOR_BATCH);
            if window.is_none() && self.next > *self.head.borrow() {
                // The log has it and the shared window will in a moment:
                // waiting is cheaper than every stream reading it itself.
                let wanted = self.next;
                let _ =
                    tokio::time::timeout(WINDOW_GRACE, self.head.wait_for(|head| *head >= wanted))
                        .await;
                window = self.recent.from(self.next, CURSOR_BATCH);
            }
            match window {
                Some(events) => self.buffered.extend(events),
                None => {
                    let batch = self.log.read_log(self.next, CURSOR_BATCH).await?;
                    self.buffered.extend(batch.into_iter().map(Arc::new));
                }
            }
        }
        let event = self.buffered.pop_front();
        if let Some(event) = &event {
            self.next = event.position + 1;
        }
        Ok(event)
    }

    /// The next event if it is already read ahead, without reading more.
    pub(crate) fn next_buffered(&mut self) -> Option<Arc<RecordedEvent>> {
        let event = self.buffered.pop_front()?;
        self.next = event.position + 1;
        Some(event)
    }

    /// Moves the cursor past `position`: every event up to it was read
    /// elsewhere (from an index). Nothing read ahead is kept.
    pub(crate) fn skip_to(&mut self, position: u64) {
        if position >= self.next {
            self.next = position + 1;
            self.buffered.clear();
        }
    }

    /// The last position read (every event up to it has been seen).
    pub(crate) fn position(&self) -> u64 {
        self.next - 1
    }

    /// The durable head of the log.
    pub(crate) fn head(&self) -> u64 {
        self.log.head()
    }

    /// Waits until there is an event after the cursor: normally until the
    /// shared window has it; should the window lag, the log is read after a
    /// short wait instead.
    pub(crate) async fn wait_for_more(&mut self) -> Result<(), StoreError> {
        let position = self.position();
        loop {
            if *self.head.borrow_and_update() > position {
                return Ok(());
            }
            tokio::select! {
                changed = self.head.changed() => {
                    changed.map_err(|_| StoreError::Unavailable("the log is closed".into()))?;
                }
                () = tokio::time::sleep(WINDOW_GRACE) => {
                    if self.log.head() > position {
                        return Ok(());
                    }
                }
            }
        }
    }
}
