//! The follower: an ordered consumer from the replica's head that applies
//! every stored message to the replica, in stream order, in chunks.

use std::sync::Arc;

use parking_lot::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::stream;
use futures_util::StreamExt;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::replica::{Replica, StreamEntry};
use crate::StoreError;

/// Messages applied to the replica in one atomic batch, at most.
const CHUNK: usize = 2_048;
/// Silence after which the follower checks that its consumer still works.
const STALL: Duration = Duration::from_secs(2);

/// Messages a replica may be behind the stream and still count as keeping up.
const NEAR_HEAD: u64 = 10_000;

/// When the replica was last known to hold every message the stream had,
/// and when it was last within [`NEAR_HEAD`] of it.
#[derive(Default)]
pub(crate) struct Freshness {
    caught_up_at: Mutex<Option<Instant>>,
    near_head_at: Mutex<Option<Instant>>,
}

impl Freshness {
    /// The replica held the whole stream at `at`.
    pub(crate) fn mark(&self, at: Instant) {
        later(&self.caught_up_at, at);
        later(&self.near_head_at, at);
    }

    /// The replica was `pending` messages behind the stream at `at`.
    fn mark_progress(&self, pending: u64, at: Instant) {
        if pending == 0 {
            self.mark(at);
        } else if pending <= NEAR_HEAD {
            later(&self.near_head_at, at);
        }
    }

    /// True when the replica held the whole stream less than `within` ago.
    pub(crate) fn within(&self, within: Duration) -> bool {
        self.caught_up_at
            .lock()
            .is_some_and(|at| at.elapsed() < within)
    }

    /// True when the replica was near the stream's head less than `within`
    /// ago: it keeps up, even while writes keep it a few messages behind.
    pub(crate) fn near_head_within(&self, within: Duration) -> bool {
        self.near_head_at
            .lock()
            .is_some_and(|at| at.elapsed() < within)
    }
}

fn later(slot: &Mutex<Option<Instant>>, at: Instant) {
    let mut slot = slot.lock();
    if slot.is_none_or(|earlier| earlier < at) {
        *slot = Some(at);
    }
}

/// Follows `stream` into `replica` until `stop` turns true. A replica that
/// cannot apply a message (the stream is not Accord's, or it lost messages)
/// stops the follower and reports why through `failure`.
pub(crate) async fn follow(
    stream: stream::Stream,
    replica: Arc<Mutex<Replica>>,
    freshness: Arc<Freshness>,
    failure: watch::Sender<Option<StoreError>>,
    stop: CancellationToken,
) {
    let mut pause = Duration::from_millis(50);
    loop {
        let start = replica.lock().followed() + 1;
        let outcome = tokio::select! {
            outcome = follow_from(&stream, start, &replica, &freshness) => outcome,
            _ = stop.cancelled() => return,
        };
        match outcome {
            Err(error @ StoreError::Corrupt(_)) => {
                // A message that is not the log's next record (anything
                // published on Accord's subjects by another client) stops
                // the replica where it is: reads go on up to the message
                // before, appends are refused naming it, health says so.
                // Reopening the store would stop at the same message, so
                // this is not reported as a store failure to restart.
                tracing::error!(%error, head = replica.lock().followed(), "the replica cannot follow the stream; appends are refused");
                failure.send_replace(Some(error));
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "following the stream failed; resuming from the replica's head");
            }
            Ok(()) => pause = Duration::from_millis(50),
        }
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.cancelled() => return,
        }
        pause = (pause * 2).min(Duration::from_secs(2));
    }
}

async fn follow_from(
    stream: &stream::Stream,
    start: u64,
    replica: &Arc<Mutex<Replica>>,
    freshness: &Freshness,
) -> Result<(), StoreError> {
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            deliver_policy: DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            max_batch: CHUNK as i64,
            // Short pulls make heartbeats frequent, so that a consumer lost
            // with a dead NATS node is noticed and recreated in seconds.
            max_expires: Duration::from_secs(2),
            ..pull::OrderedConfig::default()
        })
        .await
        .map_err(|error| StoreError::failed("creating the ordered consumer", error))?;
    let mut messages = consumer
        .messages()
        .await
        .map_err(|error| StoreError::failed("reading the ordered consumer", error))?
        .ready_chunks(CHUNK);
    loop {
        let chunk = match tokio::time::timeout(STALL, messages.next()).await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(()),
            Err(_) => {
                // Quiet: fine when the stream is, but a consumer lost with a
                // NATS node can also go quiet; start a new one if the
                // stream has moved past the replica.
                let head = replica.lock().followed();
                // A NATS node that does not answer quickly is no better.
                let info = tokio::time::timeout(STALL, stream.get_info())
                    .await
                    .map_err(|_| StoreError::Unavailable("stream info timed out".into()))?
                    .map_err(|error| StoreError::failed("stream info", error))?;
                if info.state.last_sequence > head {
                    return Err(StoreError::Unavailable(format!(
                        "no message for {STALL:?} while the stream is at {} and the replica at {head}",
                        info.state.last_sequence
                    )));
                }
                freshness.mark(Instant::now());
                continue;
            }
        };
        let received_at = Instant::now();
        let mut entries = Vec::with_capacity(chunk.len());
        let mut pending = u64::MAX;
        for message in chunk {
            let message = message
                .map_err(|error| StoreError::failed("reading the ordered consumer", error))?;
            let info = message
                .info()
                .map_err(|error| StoreError::failed_boxed("message info", error))?;
            pending = info.pending;
            entries.push(StreamEntry {
                sequence: info.stream_sequence,
                stored_at_nanos: i64::try_from(info.published.unix_timestamp_nanos())
                    .unwrap_or(i64::MAX),
                payload: message.message.payload.clone(),
            });
        }
        let replica = Arc::clone(replica);
        tokio::task::spawn_blocking(move || replica.lock().apply(&entries))
            .await
            .map_err(|error| StoreError::failed("replica apply task", error))??;
        freshness.mark_progress(pending, received_at);
    }
}
