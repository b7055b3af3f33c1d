//! Reads the log in order from a position, a batch at a time.

use std::collections::VecDeque;
use std::sync::Arc;

use accord_domain::RecordedEvent;
use accord_store::{EventLog, StoreError};
use tokio::sync::watch;

/// Events read from the log per call while catching up.
const READ_BATCH: usize = 256;

/// A position in the log and the events read ahead of it.
pub(crate) struct LogCursor {
    log: Arc<dyn EventLog>,
    next: u64,
    buffered: VecDeque<RecordedEvent>,
    head: watch::Receiver<u64>,
}

impl LogCursor {
    /// Starts after `position` (0 = before the first event).
    pub(crate) fn after(log: Arc<dyn EventLog>, position: u64) -> Self {
        let head = log.watch_head();
        Self {
            log,
            next: position + 1,
            buffered: VecDeque::new(),
            head,
        }
    }

    /// Returns the next event, or None when the cursor is at the head.
    pub(crate) async fn next(&mut self) -> Result<Option<RecordedEvent>, StoreError> {
        if self.buffered.is_empty() {
            let batch = self.log.read_log(self.next, READ_BATCH).await?;
            self.buffered.extend(batch);
        }
        let event = self.buffered.pop_front();
        if let Some(event) = &event {
            self.next = event.position + 1;
        }
        Ok(event)
    }

    /// The last position read (every event up to it has been seen).
    pub(crate) fn position(&self) -> u64 {
        self.next - 1
    }

    /// The durable head of the log.
    pub(crate) fn head(&self) -> u64 {
        *self.head.borrow()
    }

    /// Waits until the log has an event after the cursor.
    pub(crate) async fn wait_for_more(&mut self) -> Result<(), StoreError> {
        let position = self.position();
        self.head
            .wait_for(|head| *head > position)
            .await
            .map(|_| ())
            .map_err(|_| StoreError::Unavailable("the log is closed".into()))
    }
}
