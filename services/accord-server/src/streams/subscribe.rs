//! `EventLog.Subscribe`: catch up from the log, say `caught_up` once, then
//! follow the head, with heartbeats on a quiet stream.

use std::sync::Arc;
use std::time::Duration;

use accord_domain::ValidationError;
use accord_proto::SubscribeFrame;
use accord_proto::v1::{self, subscribe_request::Start, subscribe_response::Message};
use accord_store::EventLog;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::cursor::LogCursor;
use super::indexed::{LogIndexes, Matched};
use super::recent::RecentEvents;
use super::slots::Slot;
use super::{
    Batch, CURSOR_BATCH, SUBSCRIBE_BATCH, SUBSCRIBE_BATCHES, ServerStream, StreamSender,
    batched_stream_channel,
};
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::reads::{EventFilter, first_recorded_at_or_after, within_log};

/// The heartbeat interval when the client asks for none.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);
/// The shortest heartbeat interval a client may ask for.
const MIN_HEARTBEAT_MS: u32 = 100;
/// The longest heartbeat interval a client may ask for (one hour).
const MAX_HEARTBEAT_MS: u32 = 3_600_000;

/// Checks the request and starts the stream's task.
pub(crate) async fn start_subscription(
    indexes: LogIndexes,
    recent: Arc<RecentEvents>,
    metrics: Arc<Metrics>,
    stopping: CancellationToken,
    slot: Slot,
    filter: EventFilter,
    request: v1::SubscribeRequest,
) -> Result<ServerStream<SubscribeFrame>, ApiError> {
    let log = indexes.log().clone();
    let heartbeat = match request.heartbeat_interval_ms {
        0 => DEFAULT_HEARTBEAT,
        interval if (MIN_HEARTBEAT_MS..=MAX_HEARTBEAT_MS).contains(&interval) => {
            Duration::from_millis(u64::from(interval))
        }
        interval => {
            return Err(ValidationError::new(
                "heartbeat_interval_ms",
                format!(
                    "must be 0 (5000) or {MIN_HEARTBEAT_MS}..={MAX_HEARTBEAT_MS}, got {interval}"
                ),
            )
            .into());
        }
    };
    let after = match request.start {
        None | Some(Start::FromStart(_)) => 0,
        Some(Start::FromEnd(_)) => log.head(),
        Some(Start::AfterPosition(position)) => {
            within_log(log.as_ref(), "after_position", position, 0).await?;
            position
        }
        Some(Start::FromTime(time)) => {
            first_recorded_at_or_after(log.as_ref(), "from_time", &time).await? - 1
        }
    };
    let (out, stream) = batched_stream_channel(SUBSCRIBE_BATCHES);
    let subscription = Subscription {
        cursor: LogCursor::after(log.clone(), recent.clone(), after),
        recent,
        log,
        indexes: Some(indexes),
        filter,
        heartbeat,
        metrics,
        out: out.live(stopping.clone()),
        stopping,
    };
    tokio::spawn(async move {
        let _slot = slot;
        subscription.run().await;
    });
    Ok(stream)
}

/// Why a stream at the head woke up.
pub(crate) enum Wake {
    /// The log grew (or failed).
    More(Result<(), accord_store::StoreError>),
    /// The heartbeat interval passed quietly.
    Heartbeat,
    /// The server is stopping.
    Stop,
    /// The client went away.
    ClientGone,
}

struct Subscription {
    log: Arc<dyn EventLog>,
    /// While catching up: the indexes that read only matching events
    /// (dropped once they no longer reach the cursor).
    indexes: Option<LogIndexes>,
    cursor: LogCursor,
    /// Where events' frames are encoded once for every subscriber.
    recent: Arc<RecentEvents>,
    filter: EventFilter,
    heartbeat: Duration,
    metrics: Arc<Metrics>,
    stopping: CancellationToken,
    /// Frames go out in batches: one wake of the connection per batch.
    out: StreamSender<Batch<SubscribeFrame>>,
}

impl Subscription {
    async fn run(mut self) {
        let mut caught_up = false;
        let mut last_sent = Instant::now();
        loop {
            if self.stopping.is_cancelled() {
                return self.end_for_shutdown().await;
            }
            if let Some(indexes) = &self.indexes {
                match indexes
                    .read(&self.filter, self.cursor.position() + 1, CURSOR_BATCH)
                    .await
                {
                    Ok(Some(matched)) => {
                        if !self.send_matched(matched).await {
                            return;
                        }
                        continue;
                    }
                    Ok(None) => self.indexes = None,
                    Err(error) => return self.out.fail(error).await,
                }
            }
            match self.cursor.next().await {
                Ok(Some(event)) => {
                    // This event and those already read ahead, in one batch.
                    let mut batch = Vec::new();
                    let mut next = Some(event);
                    while let Some(event) = next {
                        match self.filter.matches(self.log.as_ref(), &event).await {
                            Ok(true) => {
                                let lag = self.cursor.head().saturating_sub(event.position);
                                self.metrics.subscription_lag_events.observe(lag as f64);
                                batch.push(self.recent.frame(&event));
                            }
                            Ok(false) => {}
                            Err(error) => return self.out.fail(error).await,
                        }
                        next = if batch.len() < SUBSCRIBE_BATCH {
                            self.cursor.next_buffered()
                        } else {
                            None
                        };
                    }
                    if batch.is_empty() {
                        continue;
                    }
                    let sent = batch.len() as u64;
                    if !self.out.send(Batch(batch)).await {
                        return;
                    }
                    self.metrics.subscription_events_sent.inc_by(sent);
                    last_sent = Instant::now();
                    continue;
                }
                Ok(None) => {}
                Err(error) => return self.out.fail(error.into()).await,
            }
            if !caught_up {
                caught_up = true;
                let position = self.cursor.position();
                if !self
                    .send(Message::CaughtUp(v1::CaughtUp { position }))
                    .await
                {
                    return;
                }
                last_sent = Instant::now();
            }
            let wake = tokio::select! {
                more = self.cursor.wait_for_more() => Wake::More(more),
                () = tokio::time::sleep_until(last_sent + self.heartbeat) => Wake::Heartbeat,
                _ = self.stopping.cancelled() => Wake::Stop,
                () = self.out.closed() => Wake::ClientGone,
            };
            match wake {
                Wake::More(Ok(())) => {}
                Wake::More(Err(error)) => return self.out.fail(error.into()).await,
                Wake::Heartbeat => {
                    let heartbeat = v1::Heartbeat {
                        head_position: self.cursor.head(),
                        last_position: self.cursor.position(),
                    };
                    if !self.send(Message::Heartbeat(heartbeat)).await {
                        return;
                    }
                    last_sent = Instant::now();
                }
                Wake::Stop => return self.end_for_shutdown().await,
                Wake::ClientGone => return,
            }
        }
    }

    /// Sends a message, waiting for room; false when the client is gone or
    /// the server is stopping.
    /// Sends events an index found, in batches, and moves the cursor past
    /// what they cover; false when the client is gone.
    async fn send_matched(&mut self, matched: Matched) -> bool {
        let head = self.cursor.head();
        self.cursor.skip_to(matched.through);
        for events in matched.events.chunks(SUBSCRIBE_BATCH) {
            let batch: Vec<SubscribeFrame> = events
                .iter()
                .map(|event| {
                    let lag = head.saturating_sub(event.position);
                    self.metrics.subscription_lag_events.observe(lag as f64);
                    self.recent.frame(event)
                })
                .collect();
            let sent = batch.len() as u64;
            if !self.out.send(Batch(batch)).await {
                return false;
            }
            self.metrics.subscription_events_sent.inc_by(sent);
        }
        true
    }

    async fn send(&mut self, message: Message) -> bool {
        self.out
            .send(Batch(vec![SubscribeFrame::encode(
                &v1::SubscribeResponse {
                    message: Some(message),
                },
            )]))
            .await
    }

    async fn end_for_shutdown(self) {
        let status = ApiError::Unavailable(format!(
            "server is shutting down; resume with after_position = {}",
            self.cursor.position()
        ));
        self.out.end_with(status).await;
    }
}
