//! Server streams: one task produces the messages, a channel bounded in
//! messages and in bytes (`STREAM_BYTES`) carries them to the client, and
//! the task stops as soon as the client is gone. Every streaming answer is
//! a [`ServerStream`] built here (the gRPC adapter answers it as a response
//! stream, an error ending it as that error's status).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::STREAM_BYTES;
use crate::error::ApiError;

/// A stream of messages to a client, ended by an error or not.
pub(crate) type ServerStream<T> = Pin<Box<dyn Stream<Item = Result<T, ApiError>> + Send>>;

/// How long a stream waits to hand its client the shutdown notice.
const SHUTDOWN_NOTICE: Duration = Duration::from_secs(2);

/// A message in a stream's channel, with the bytes it holds of the
/// stream's budget (given back when the response takes it out).
struct Weighed<T> {
    item: Result<T, ApiError>,
    bytes: u32,
}

/// How many bytes a message holds: its encoded length (a batch, the sum).
pub(crate) trait Weight {
    fn weight(&self) -> usize;
}

impl<M: prost::Message> Weight for M {
    fn weight(&self) -> usize {
        self.encoded_len()
    }
}

/// A batch of messages.
pub(crate) struct Batch<M>(pub(crate) Vec<M>);

impl<M: prost::Message> Weight for Batch<M> {
    fn weight(&self) -> usize {
        self.0.iter().map(prost::Message::encoded_len).sum()
    }
}

/// The producing task's end of a stream.
pub(crate) struct StreamSender<T> {
    sender: mpsc::Sender<Weighed<T>>,
    /// The bytes the channel may still take (`STREAM_BYTES` when empty).
    budget: Arc<Semaphore>,
    /// For live streams: cancelled when the server begins to shut down.
    stopping: Option<CancellationToken>,
}

/// What a message holds of the budget: its size, at most the whole budget
/// (a message larger than the budget waits for an empty channel).
fn charge(bytes: usize) -> u32 {
    u32::try_from(bytes.min(STREAM_BYTES)).unwrap_or(u32::MAX)
}

impl<T: Weight> StreamSender<T> {
    /// Makes this a live stream, whose sends give up when `stopping` is cancelled.
    pub(crate) fn live(mut self, stopping: CancellationToken) -> Self {
        self.stopping = Some(stopping);
        self
    }

    /// Sends `item` once the channel has room for its bytes; false once the
    /// client is gone (or the server stops).
    pub(crate) async fn send(&self, item: T) -> bool {
        let sent = async {
            let bytes = charge(item.weight());
            // Room is given back only as the client reads: a client that
            // went away never gives it, so its going away ends the wait.
            let room = tokio::select! {
                room = self.budget.acquire_many(bytes) => room,
                () = self.sender.closed() => return false,
            };
            let Ok(room) = room else {
                return false;
            };
            room.forget();
            let item = Weighed {
                item: Ok(item),
                bytes,
            };
            if self.sender.send(item).await.is_ok() {
                return true;
            }
            self.budget.add_permits(bytes as usize);
            false
        };
        match &self.stopping {
            Some(stopping) => tokio::select! {
                sent = sent => sent,
                () = stopping.cancelled() => false,
            },
            None => sent.await,
        }
    }

    /// Sends `item` if there is room, dropping it otherwise (progress reports).
    pub(crate) fn offer(&self, item: T) {
        let bytes = charge(item.weight());
        let Ok(room) = self.budget.try_acquire_many(bytes) else {
            return;
        };
        room.forget();
        if self
            .sender
            .try_send(Weighed {
                item: Ok(item),
                bytes,
            })
            .is_err()
        {
            self.budget.add_permits(bytes as usize);
        }
    }
}

impl<T> StreamSender<T> {
    /// True once the client went away.
    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Resolves when the client went away.
    pub(crate) async fn closed(&self) {
        self.sender.closed().await;
    }

    /// Ends the stream with `error`; a client that stopped reading is not
    /// waited for beyond the shutdown notice.
    pub(crate) async fn end_with(&self, error: ApiError) {
        let end = Weighed {
            item: Err(error),
            bytes: 0,
        };
        let _ = tokio::time::timeout(SHUTDOWN_NOTICE, self.sender.send(end)).await;
    }

    /// Ends the stream with `error`, logged if serious.
    pub(crate) async fn fail(&self, error: ApiError) {
        error.log_if_serious();
        let end = Weighed {
            item: Err(error),
            bytes: 0,
        };
        let _ = self.sender.send(end).await;
    }
}

impl<T> Clone for StreamSender<T> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
            budget: self.budget.clone(),
            stopping: self.stopping.clone(),
        }
    }
}

/// A channel of at most `buffer` messages and `STREAM_BYTES` bytes, and the
/// channel's messages as they leave it (each giving its bytes back).
fn weighed_channel<T: Send + 'static>(
    buffer: usize,
) -> (
    StreamSender<T>,
    impl Stream<Item = Result<T, ApiError>> + Send + 'static,
) {
    let (sender, receiver) = mpsc::channel::<Weighed<T>>(buffer);
    let budget = Arc::new(Semaphore::new(STREAM_BYTES));
    let given_back = budget.clone();
    let stream = ReceiverStream::new(receiver).map(move |weighed| {
        given_back.add_permits(weighed.bytes as usize);
        weighed.item
    });
    (
        StreamSender {
            sender,
            budget,
            stopping: None,
        },
        stream,
    )
}

/// A channel of `buffer` messages (and `STREAM_BYTES`): the sender for the
/// producing task and the stream for the response.
pub(crate) fn stream_channel<T: Send + 'static>(
    buffer: usize,
) -> (StreamSender<T>, ServerStream<T>) {
    let (sender, stream) = weighed_channel(buffer);
    (sender, Box::pin(stream))
}

/// A channel of `buffer` batches (and `STREAM_BYTES`): the producing task
/// sends several messages at once (one wake of the response per batch), the
/// response streams them one by one.
pub(crate) fn batched_stream_channel<T: Send + 'static>(
    buffer: usize,
) -> (StreamSender<Batch<T>>, ServerStream<T>) {
    let (sender, batches) = weighed_channel::<Batch<T>>(buffer);
    let stream = batches.flat_map(|batch| {
        let items: Vec<Result<T, ApiError>> = match batch {
            Ok(Batch(items)) => items.into_iter().map(Ok).collect(),
            Err(error) => vec![Err(error)],
        };
        tokio_stream::iter(items)
    });
    (sender, Box::pin(stream))
}

/// Runs `produce` on a task of its own and streams what it sends; an error
/// it returns ends the stream.
pub(crate) fn spawn_stream<T, F, Fut>(buffer: usize, produce: F) -> ServerStream<T>
where
    T: Send + 'static,
    F: FnOnce(StreamSender<T>) -> Fut,
    Fut: Future<Output = Result<(), ApiError>> + Send + 'static,
{
    let (sender, stream) = stream_channel(buffer);
    let errors = sender.clone();
    let produced = produce(sender);
    tokio::spawn(async move {
        if let Err(error) = produced.await {
            errors.fail(error).await;
        }
    });
    stream
}
