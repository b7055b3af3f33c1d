//! A member's queue: what its group hands it (deliveries, heartbeats, the
//! status its stream ends with) until its stream takes it. Bounded in
//! messages and in bytes; a member that leaves it full is ended, and ending
//! it drops what it had not read at once (those events are unsettled and go
//! out again), so a member that never reads holds at most `MEMBER_BYTES`.

use std::collections::VecDeque;
use std::sync::Arc;

use super::settings;
use crate::error::ApiError;
use accord_proto::v1;
use parking_lot::Mutex;
use prost::Message;
use tokio::sync::Notify;
use tokio_stream::Stream;
use tokio_util::sync::CancellationToken;

/// Messages a member's queue holds: every delivery it may hold, and a little more.
pub(crate) const MEMBER_MESSAGES: usize = settings::MAX_IN_FLIGHT as usize + 8;
/// Bytes a member's queue holds (at least one message, whatever its size).
/// Above the group's read-ahead (`runner::READ_AHEAD_BYTES` and one read of
/// the log), so a member that reads is never ended for what it was handed
/// at once; only one that leaves its redeliveries unread reaches it.
pub(crate) const MEMBER_BYTES: usize = 16 * 1024 * 1024;

type Item = Result<v1::ConsumeResponse, ApiError>;

/// Why a message did not go into the queue.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The member's stream is gone or was ended.
    Gone,
    /// The member left `MEMBER_MESSAGES` messages or `MEMBER_BYTES` unread.
    Full,
}

#[derive(Default)]
struct Queue {
    items: VecDeque<(Item, usize)>,
    bytes: usize,
    /// An end status is queued: nothing more goes in.
    ended: bool,
    /// Senders still held; the stream ends when none is and the queue is empty.
    senders: usize,
}

struct Shared {
    queue: Mutex<Queue>,
    /// Wakes the stream.
    ready: Notify,
    /// Cancelled when the stream is dropped (the client went away).
    gone: CancellationToken,
}

/// The group's end of a member's queue.
pub(crate) struct MemberSender {
    shared: Arc<Shared>,
}

/// The member's stream: what the queue holds, in order.
pub(crate) struct MemberReceiver {
    shared: Arc<Shared>,
}

/// A member's queue.
pub(crate) fn member_queue() -> (MemberSender, MemberReceiver) {
    let shared = Arc::new(Shared {
        queue: Mutex::new(Queue {
            senders: 1,
            ..Queue::default()
        }),
        ready: Notify::new(),
        gone: CancellationToken::new(),
    });
    (
        MemberSender {
            shared: shared.clone(),
        },
        MemberReceiver { shared },
    )
}

fn weight(item: &Item) -> usize {
    match item {
        Ok(response) => response.encoded_len(),
        Err(error) => error.to_string().len(),
    }
}

impl MemberSender {
    /// Queues `response` if the member has room for it.
    pub(crate) fn send(&self, response: v1::ConsumeResponse) -> Result<(), Refused> {
        if self.shared.gone.is_cancelled() {
            return Err(Refused::Gone);
        }
        let item = Ok(response);
        let bytes = weight(&item);
        {
            let mut queue = self.shared.queue.lock();
            if queue.ended {
                return Err(Refused::Gone);
            }
            let full = queue.items.len() >= MEMBER_MESSAGES
                || (!queue.items.is_empty() && queue.bytes + bytes > MEMBER_BYTES);
            if full {
                return Err(Refused::Full);
            }
            queue.bytes += bytes;
            queue.items.push_back((item, bytes));
        }
        self.shared.ready.notify_one();
        Ok(())
    }

    /// Ends the member's stream with `error`: what it has not read is
    /// dropped (its events are unsettled and go out again), `error` is the
    /// last thing it reads. Only the first end counts.
    pub(crate) fn end(&self, error: ApiError) {
        {
            let mut queue = self.shared.queue.lock();
            if queue.ended {
                return;
            }
            queue.ended = true;
            queue.items.clear();
            let item = Err(error);
            let bytes = weight(&item);
            queue.bytes = bytes;
            queue.items.push_back((item, bytes));
        }
        self.shared.ready.notify_one();
    }

    /// Resolves when the member's stream is gone.
    pub(crate) async fn closed(&self) {
        self.shared.gone.cancelled().await;
    }

    /// Bytes queued and not yet read (for tests and metrics).
    #[cfg(test)]
    fn unread_bytes(&self) -> usize {
        self.shared.queue.lock().bytes
    }
}

impl Clone for MemberSender {
    fn clone(&self) -> Self {
        self.shared.queue.lock().senders += 1;
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl Drop for MemberSender {
    fn drop(&mut self) {
        self.shared.queue.lock().senders -= 1;
        self.shared.ready.notify_one();
    }
}

impl MemberReceiver {
    /// The next message; `None` once the queue is empty and either an end
    /// status was read or no sender is left.
    pub(crate) async fn recv(&mut self) -> Option<Item> {
        loop {
            {
                let mut queue = self.shared.queue.lock();
                if let Some((item, bytes)) = queue.items.pop_front() {
                    queue.bytes -= bytes;
                    return Some(item);
                }
                if queue.ended || queue.senders == 0 {
                    return None;
                }
            }
            // `notify_one` keeps a permit when no one waits: a message
            // queued between the check and here is not missed.
            self.shared.ready.notified().await;
        }
    }

    /// The queue as a response stream.
    pub(crate) fn into_stream(self) -> impl Stream<Item = Item> + Send + 'static {
        futures_util::stream::unfold(self, |mut receiver| async move {
            receiver.recv().await.map(|item| (item, receiver))
        })
    }
}

impl Drop for MemberReceiver {
    fn drop(&mut self) {
        self.shared.gone.cancel();
        let mut queue = self.shared.queue.lock();
        queue.items.clear();
        queue.bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_proto::v1::consume_response::Kind;

    fn heartbeat() -> v1::ConsumeResponse {
        v1::ConsumeResponse {
            kind: Some(Kind::Heartbeat(v1::Heartbeat {
                head_position: 1,
                last_position: 1,
            })),
        }
    }

    fn delivery(bytes: usize) -> v1::ConsumeResponse {
        v1::ConsumeResponse {
            kind: Some(Kind::Delivery(v1::ConsumerDelivery {
                event: Some(v1::RecordedEvent {
                    agreement_id: "a".repeat(bytes),
                    ..Default::default()
                }),
                delivery_count: 1,
            })),
        }
    }

    #[tokio::test]
    async fn a_queue_is_bounded_in_bytes_and_an_end_drops_what_was_unread() {
        let (sender, mut receiver) = member_queue();
        let mut queued = 0;
        while sender.send(delivery(64 * 1024)).is_ok() {
            queued += 1;
        }
        assert!(sender.unread_bytes() <= MEMBER_BYTES);
        assert_eq!(queued, MEMBER_BYTES / delivery(64 * 1024).encoded_len());
        assert_eq!(sender.send(delivery(64 * 1024)), Err(Refused::Full));
        sender.end(ApiError::LimitExceeded("fell behind".into()));
        assert_eq!(sender.unread_bytes(), "fell behind".len());
        assert_eq!(sender.send(heartbeat()), Err(Refused::Gone));
        let ended = receiver
            .recv()
            .await
            .expect("the end")
            .expect_err("an error");
        assert_eq!(ended.to_string(), "fell behind");
        assert!(receiver.recv().await.is_none());
    }

    #[tokio::test]
    async fn one_message_larger_than_the_budget_still_goes_through_an_empty_queue() {
        let (sender, mut receiver) = member_queue();
        sender.send(delivery(MEMBER_BYTES + 1)).expect("room");
        assert_eq!(sender.send(heartbeat()), Err(Refused::Full));
        assert!(receiver.recv().await.expect("a delivery").is_ok());
        sender.send(heartbeat()).expect("room again");
        drop(sender);
        assert!(receiver.recv().await.expect("the heartbeat").is_ok());
        assert!(receiver.recv().await.is_none(), "no sender is left");
    }

    #[tokio::test]
    async fn a_gone_stream_refuses_and_is_seen_as_closed() {
        let (sender, receiver) = member_queue();
        drop(receiver);
        sender.closed().await;
        assert_eq!(sender.send(heartbeat()), Err(Refused::Gone));
    }
}
