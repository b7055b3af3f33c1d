//! `AgreementService.ExecuteStream`: many `Execute` requests over one
//! stream. Each request runs exactly as `Execute` does (`Executor`, shared
//! with it): all-or-nothing, durable before its answer, idempotent by
//! command id. Several run at once (so they share group commits), their
//! answers go out in request order, and a refused one answers with its code
//! and message and leaves the stream open. A stream holds at most
//! `IN_FLIGHT` unanswered requests and `IN_FLIGHT_BYTES` of them; beyond
//! that the server stops reading it (HTTP/2 flow control), so a producer
//! that does not read its answers holds a bounded share of the server.

use accord_proto::v1;
use futures_util::StreamExt;
use futures_util::stream::FuturesOrdered;
use prost::Message;
use tokio_util::sync::CancellationToken;
use tonic::{Status, Streaming};

use std::sync::Arc;

use crate::error::ApiError;
use crate::service::CommandService;
use crate::streams::{ServerStream, Slot, StreamSender, stream_channel};

/// Unanswered requests a stream holds before the server stops reading it.
pub(crate) const IN_FLIGHT: usize = 64;
/// Bytes of unanswered requests a stream holds (at least one request).
pub(crate) const IN_FLIGHT_BYTES: usize = 8 * 1024 * 1024;

/// Answers the requests of `inbound` in order until the client ends it,
/// goes away, or the server stops; `slot` is held meanwhile.
pub(crate) fn start(
    executor: Arc<dyn CommandService>,
    actor: String,
    inbound: Streaming<v1::ExecuteRequest>,
    slot: Slot,
    stopping: CancellationToken,
) -> ServerStream<v1::ExecuteStreamResponse> {
    let (out, stream) = stream_channel(IN_FLIGHT);
    tokio::spawn(async move {
        let _slot = slot;
        answer(executor, actor, inbound, out, stopping).await;
    });
    stream
}

/// One request's answer.
fn response(
    sequence: u64,
    outcome: Result<v1::ExecuteResponse, ApiError>,
) -> v1::ExecuteStreamResponse {
    use v1::execute_stream_response::Outcome;
    let outcome = match outcome {
        Ok(done) => Outcome::Done(done),
        Err(error) => {
            let status = Status::from(error);
            Outcome::Refused(v1::CommandRefusal {
                code: status.code() as i32,
                message: status.message().to_owned(),
            })
        }
    };
    v1::ExecuteStreamResponse {
        sequence,
        outcome: Some(outcome),
    }
}

async fn answer(
    executor: Arc<dyn CommandService>,
    actor: String,
    mut inbound: Streaming<v1::ExecuteRequest>,
    out: StreamSender<v1::ExecuteStreamResponse>,
    stopping: CancellationToken,
) {
    let mut pending = FuturesOrdered::new();
    let mut pending_bytes = 0usize;
    let mut sequence = 0u64;
    let mut reading = true;
    loop {
        if !reading && pending.is_empty() {
            if stopping.is_cancelled() {
                out.end_with(ApiError::Unavailable(format!(
                    "the server is shutting down: {sequence} requests were answered; send the rest again (retries are recognised by command id)"
                )))
                .await;
            }
            return;
        }
        let room =
            pending.is_empty() || (pending.len() < IN_FLIGHT && pending_bytes < IN_FLIGHT_BYTES);
        tokio::select! {
            message = inbound.message(), if reading && room => match message {
                Ok(Some(request)) => {
                    sequence += 1;
                    let bytes = request.encoded_len();
                    pending_bytes += bytes;
                    let (executor, actor, number) = (executor.clone(), actor.clone(), sequence);
                    pending.push_back(async move {
                        let outcome = executor.execute(&actor, request.commands).await;
                        (number, bytes, outcome)
                    });
                }
                Ok(None) => reading = false,
                // The client broke off; what it sent is appended or not,
                // as with a unary call whose answer was lost.
                Err(_) => return,
            },
            Some((number, bytes, outcome)) = pending.next(), if !pending.is_empty() => {
                pending_bytes -= bytes;
                if !out.send(response(number, outcome)).await {
                    return;
                }
            }
            () = stopping.cancelled(), if reading => reading = false,
            () = out.closed() => return,
        }
    }
}
