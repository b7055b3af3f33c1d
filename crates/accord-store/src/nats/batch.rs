//! Several events as one JetStream atomic batch: all stored, at
//! consecutive positions, or none.

use async_nats::HeaderMap;
use serde::Deserialize;

use super::NatsLog;
use super::publish::{Outgoing, Published, publish_failed};
use crate::{AppendItem, StoreError};

/// Messages in one atomic batch, at most (the server's limit).
pub(crate) const MAX_BATCH: usize = 1_000;
/// JetStream's error codes for a failed expected-sequence check (a
/// clustered stream may answer with the second).
const WRONG_LAST_SEQUENCE: [u64; 2] = [10_071, 10_164];
/// JetStream's error code for a batch holding a message id seen before.
const DUPLICATE_IN_BATCH: u64 = 10_201;

/// The body of a batch commit's answer.
#[derive(Deserialize)]
struct BatchAnswer {
    #[serde(default)]
    seq: u64,
    #[serde(default)]
    count: u64,
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(default)]
    err_code: u64,
    #[serde(default)]
    description: String,
}

/// Publishes several events as one atomic batch: all are stored, at
/// consecutive positions, or none.
pub(crate) async fn publish_batch(
    log: &NatsLog,
    outgoing: &[Outgoing],
    items: &[AppendItem],
) -> Result<Published, StoreError> {
    if !log.connected.atomic_batches {
        return Err(StoreError::Unavailable(format!(
            "appending {} events at once needs atomic batch publish, which nats-server {} lacks (2.12 or newer has it)",
            outgoing.len(),
            log.connected.server_version
        )));
    }
    if outgoing.len() > MAX_BATCH {
        return Err(StoreError::Unavailable(format!(
            "{} events in one append; NATS commits at most {MAX_BATCH} atomically",
            outgoing.len()
        )));
    }
    let batch_id = uuid::Uuid::new_v4().simple().to_string();
    let client = &log.connected.client;
    for (offset, out) in outgoing.iter().enumerate() {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Batch-Id", batch_id.as_str());
        headers.insert("Nats-Batch-Sequence", (offset + 1).to_string().as_str());
        if log.connected.batch_message_ids {
            headers.insert("Nats-Msg-Id", items[out.index].command_id.as_str());
        }
        if let Some(sequence) = out.expected_subject_sequence {
            headers.insert(
                "Nats-Expected-Last-Subject-Sequence",
                sequence.to_string().as_str(),
            );
        }
        if offset + 1 < outgoing.len() {
            client
                .publish_with_headers(out.subject.clone(), headers, out.payload.clone())
                .await
                .map_err(|error| publish_failed(&error.to_string()))?;
            continue;
        }
        headers.insert("Nats-Batch-Commit", "1");
        let answer = client
            .request_with_headers(out.subject.clone(), headers, out.payload.clone())
            .await;
        return match answer {
            Ok(message) => read_batch_answer(&message.payload, outgoing.len()),
            Err(error) => {
                tracing::warn!(%error, "atomic batch not acknowledged; finding out whether it was stored");
                resolve_unacknowledged(log, outgoing, items).await
            }
        };
    }
    Err(StoreError::Unavailable("empty batch".into()))
}

fn read_batch_answer(payload: &[u8], expected_count: usize) -> Result<Published, StoreError> {
    let answer: BatchAnswer = serde_json::from_slice(payload).map_err(|error| {
        StoreError::Unavailable(format!("unreadable answer to a batch commit: {error}"))
    })?;
    if let Some(error) = answer.error {
        if WRONG_LAST_SEQUENCE.contains(&error.err_code) {
            return Ok(Published::Conflict);
        }
        if error.err_code == DUPLICATE_IN_BATCH {
            return Ok(Published::SeenCommand);
        }
        return Err(publish_failed(&error.description));
    }
    if answer.count != expected_count as u64 || answer.seq < answer.count {
        return Err(StoreError::Unavailable(format!(
            "batch commit stored {} of {expected_count} events",
            answer.count
        )));
    }
    Ok(Published::At(answer.seq - answer.count + 1))
}

/// After a commit whose answer was lost: once the replica holds the whole
/// stream, the batch is there (all of it, at consecutive positions) or not
/// at all.
async fn resolve_unacknowledged(
    log: &NatsLog,
    outgoing: &[Outgoing],
    items: &[AppendItem],
) -> Result<Published, StoreError> {
    log.sync().await?;
    let first = &outgoing[0];
    if let Some(recorded) = log
        .reader
        .find_command(&items[first.index].command_id)
        .await?
    {
        let event = log.reader.read_position(recorded.outcome.position)?;
        if event.event_id == first.event_id {
            return Ok(Published::At(event.position));
        }
    }
    Err(StoreError::Unavailable(
        "NATS did not acknowledge the batch and it is not in the stream; nothing was appended"
            .into(),
    ))
}
