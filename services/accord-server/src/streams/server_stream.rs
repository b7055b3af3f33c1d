//! Server streams: one task produces the messages, a bounded channel carries
//! them to the client, and the task stops as soon as the client is gone.
//! Every streaming RPC answers with a [`ServerStream`] built here.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::error::ApiError;

/// The stream a server-streaming RPC answers with.
pub type ServerStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// How long a stream waits to hand its client the shutdown notice.
const SHUTDOWN_NOTICE: Duration = Duration::from_secs(2);

/// The producing task's end of a stream.
pub(crate) struct StreamSender<T> {
    sender: mpsc::Sender<Result<T, Status>>,
    /// For live streams: cancelled when the server begins to shut down.
    stopping: Option<CancellationToken>,
}

impl<T> StreamSender<T> {
    /// Makes this a live stream, whose sends give up when `stopping` is cancelled.
    pub(crate) fn live(mut self, stopping: CancellationToken) -> Self {
        self.stopping = Some(stopping);
        self
    }

    /// Sends `item`; false once the client is gone (or the server stops).
    pub(crate) async fn send(&self, item: T) -> bool {
        match &self.stopping {
            Some(stopping) => tokio::select! {
                sent = self.sender.send(Ok(item)) => sent.is_ok(),
                () = stopping.cancelled() => false,
            },
            None => self.sender.send(Ok(item)).await.is_ok(),
        }
    }

    /// Sends `item` if there is room, dropping it otherwise (progress reports).
    pub(crate) fn offer(&self, item: T) {
        let _ = self.sender.try_send(Ok(item));
    }

    /// True once the client went away.
    pub(crate) fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Resolves when the client went away.
    pub(crate) async fn closed(&self) {
        self.sender.closed().await;
    }

    /// Ends the stream with `status`; a client that stopped reading is not
    /// waited for beyond the shutdown notice.
    pub(crate) async fn end_with(&self, status: Status) {
        let _ = tokio::time::timeout(SHUTDOWN_NOTICE, self.sender.send(Err(status))).await;
    }

    /// Ends the stream with the status of `error`.
    pub(crate) async fn fail(&self, error: ApiError) {
        let _ = self.sender.send(Err(error.into())).await;
    }
}

impl<T> Clone for StreamSender<T> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
            stopping: self.stopping.clone(),
        }
    }
}

/// A channel of `buffer` messages: the sender for the producing task and the
/// stream for the response.
pub(crate) fn stream_channel<T: Send + 'static>(
    buffer: usize,
) -> (StreamSender<T>, ServerStream<T>) {
    let (sender, receiver) = mpsc::channel(buffer);
    (
        StreamSender {
            sender,
            stopping: None,
        },
        Box::pin(ReceiverStream::new(receiver)),
    )
}

/// A channel of `buffer` batches: the producing task sends several messages
/// at once (one wake of the response per batch), the response streams them
/// one by one.
pub(crate) fn batched_stream_channel<T: Send + 'static>(
    buffer: usize,
) -> (StreamSender<Vec<T>>, ServerStream<T>) {
    let (sender, receiver) = mpsc::channel::<Result<Vec<T>, Status>>(buffer);
    let stream = ReceiverStream::new(receiver).flat_map(|batch| {
        let items: Vec<Result<T, Status>> = match batch {
            Ok(items) => items.into_iter().map(Ok).collect(),
            Err(status) => vec![Err(status)],
        };
        tokio_stream::iter(items)
    });
    (
        StreamSender {
            sender,
            stopping: None,
        },
        Box::pin(stream),
    )
}

/// Runs `produce` on a task of its own and streams what it sends; an error
/// it returns ends the stream with that error's status.
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
