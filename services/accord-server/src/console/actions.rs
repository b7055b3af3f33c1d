//! Operator actions started from the operations view: `VerifyLog` and
//! `RebuildProjections`, through the same service as gRPC (one rebuild at a
//! time, whoever starts it), their progress streamed back as Server-Sent
//! Events (`progress` with `done_count`, `total` and a message).

use std::sync::Arc;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;

use super::ConsoleContext;
use super::access::Operator;
use super::answer::failed;
use super::format::count;

fn progress(
    done_count: u64,
    total: u64,
    message: String,
) -> Result<Event, std::convert::Infallible> {
    let data = serde_json::json!({ "done_count": done_count, "total": total, "message": message });
    Ok(Event::default().event("progress").data(data.to_string()))
}

/// `POST /action/verify`.
pub(crate) async fn verify(
    State(context): State<Arc<ConsoleContext>>,
    Operator(caller): Operator,
) -> Response {
    tracing::info!(actor = %caller.name, "VerifyLog started from the console");
    let stream = context.services.operations.verify();
    let events = stream.map(|step| match step {
        Ok(step) if step.done => progress(
            step.checked,
            step.head_position,
            if step.problems.is_empty() {
                format!("The log is sound: {} events checked.", count(step.checked))
            } else {
                format!(
                    "{} problems: {}",
                    step.problems.len(),
                    step.problems.join("; ")
                )
            },
        ),
        Ok(step) => progress(
            step.checked,
            step.head_position,
            format!(
                "Checked {} of {} events…",
                count(step.checked),
                count(step.head_position)
            ),
        ),
        Err(failure) => progress(0, 0, format!("Verification failed: {}", failure)),
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// `POST /action/rebuild`.
pub(crate) async fn rebuild(
    State(context): State<Arc<ConsoleContext>>,
    Operator(caller): Operator,
) -> Response {
    tracing::info!(actor = %caller.name, "RebuildProjections started from the console");
    let stream = match context.services.operations.rebuild(&[]) {
        Ok(stream) => stream,
        Err(refusal) => return failed(refusal),
    };
    let events = stream.map(|step| match step {
        Ok(step) if step.done => progress(
            step.position,
            step.head_position,
            format!(
                "Read models rebuilt up to position {}.",
                count(step.position)
            ),
        ),
        Ok(step) => progress(
            step.position,
            step.head_position,
            format!(
                "Rebuilt {} of {} events ({} events/s)…",
                count(step.position),
                count(step.head_position),
                count(step.events_per_second as u64)
            ),
        ),
        Err(failure) => progress(0, 0, format!("Rebuild failed: {}", failure)),
    });
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}
