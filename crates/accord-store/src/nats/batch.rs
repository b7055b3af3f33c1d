//! Several events as one JetStream atomic batch: all stored, at
//! consecutive positions, or none.

use async_nats::HeaderMap;
use serde::Deserialize;

use super::NatsLog;
use super::outgoing::{Outgoing, Published, WRONG_LAST_SEQUENCE, publish_refused};
use crate::{AppendItem, StoreError};

/// Messages in one atomic batch, at most (the server's limit).
pub(crate) const MAX_BATCH: usize = 1_000;
/// JetStream's error code for a batch holding a message id seen before.
const DUPLICATE_IN_BATCH: u64 = 10_201;

/// The body of the stream's answer to a commit.
#[derive(Deserialize)]
pub(crate) struct BatchAnswer {
    /// Sequence of the last message stored.
    #[serde(default)]
    seq: u64,
    /// Messages stored (absent for a single message).
    #[serde(default)]
    count: u64,
    /// Why nothing was stored.
    pub(crate) error: Option<ApiError>,
}

/// A JetStream API error.
#[derive(Deserialize)]
pub(crate) struct ApiError {
    #[serde(default)]
    pub(crate) err_code: u64,
    #[serde(default)]
    pub(crate) description: String,
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
    let messages = outgoing
        .iter()
        .map(|out| {
            let mut headers = HeaderMap::new();
            if log.connected.batch_message_ids {
                headers.insert("Nats-Msg-Id", items[out.index].command_id.as_str());
            }
            if let Some(sequence) = out.expected_subject_sequence {
                headers.insert(
                    "Nats-Expected-Last-Subject-Sequence",
                    sequence.to_string().as_str(),
                );
            }
            BatchMessage {
                subject: out.subject.clone(),
                headers,
                payload: out.payload.clone(),
            }
        })
        .collect();
    match send(&log.connected.client, messages).await? {
        Sent::Answered(answer) => read_batch_answer(answer, outgoing.len()),
        Sent::Unanswered(error) => {
            tracing::warn!(%error, "atomic batch not acknowledged; finding out whether it was stored");
            resolve_unacknowledged(log, outgoing, items).await
        }
    }
}

/// One message of a batch.
pub(crate) struct BatchMessage {
    pub(crate) subject: String,
    /// Headers of its own (expectations, message id).
    pub(crate) headers: HeaderMap,
    pub(crate) payload: bytes::Bytes,
}

/// What became of a batch's commit.
pub(crate) enum Sent {
    /// The stream answered.
    Answered(BatchAnswer),
    /// No answer came (timeout, lost connection): stored or not, unknown.
    Unanswered(String),
}

/// Sends `messages` as one atomic batch (a single message as a plain
/// request): every message but the last is published without waiting for
/// an answer, the last one commits and brings the stream's answer.
pub(crate) async fn send(
    client: &async_nats::Client,
    messages: Vec<BatchMessage>,
) -> Result<Sent, StoreError> {
    let count = messages.len();
    let batch_id = uuid::Uuid::new_v4().simple().to_string();
    for (offset, mut message) in messages.into_iter().enumerate() {
        let last = offset + 1 == count;
        if count > 1 {
            message.headers.insert("Nats-Batch-Id", batch_id.as_str());
            message
                .headers
                .insert("Nats-Batch-Sequence", (offset + 1).to_string().as_str());
            if last {
                message.headers.insert("Nats-Batch-Commit", "1");
            }
        }
        if !last {
            client
                .publish_with_headers(message.subject, message.headers, message.payload)
                .await
                .map_err(|error| StoreError::failed("publishing a batch to NATS", error))?;
            continue;
        }
        return match client
            .request_with_headers(message.subject, message.headers, message.payload)
            .await
        {
            Ok(answer) => Ok(Sent::Answered(
                serde_json::from_slice(&answer.payload).map_err(|error| {
                    StoreError::failed("unreadable answer to a batch commit", error)
                })?,
            )),
            Err(error) => Ok(Sent::Unanswered(error.to_string())),
        };
    }
    Err(StoreError::Unavailable("empty batch".into()))
}

fn read_batch_answer(answer: BatchAnswer, expected_count: usize) -> Result<Published, StoreError> {
    if let Some(error) = answer.error {
        if WRONG_LAST_SEQUENCE.contains(&error.err_code) {
            return Ok(Published::Conflict);
        }
        if error.err_code == DUPLICATE_IN_BATCH {
            return Ok(Published::SeenCommand);
        }
        return Err(publish_refused(
            error.err_code,
            &format!("{} (error code {})", error.description, error.err_code),
        ));
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
/// stream, each event of the batch is looked up by its command id. The
/// batch should be there whole, at consecutive positions, or not at all;
/// but nats-server 2.15 stores a prefix of an atomic batch and never
/// answers when its file store runs out of room mid-batch, and stores the
/// rest when it restarts (`tests/nats_store.rs`). That is reported as it
/// is: which events are stored so far, and that retrying the same commands
/// is safe (the message ids make NATS drop what it already has).
async fn resolve_unacknowledged(
    log: &NatsLog,
    outgoing: &[Outgoing],
    items: &[AppendItem],
) -> Result<Published, StoreError> {
    if let Err(error) = log.sync().await {
        // NATS answers neither the commit nor what it holds.
        return Err(StoreError::Unavailable(format!(
            "NATS did not acknowledge the atomic batch and cannot say what it stored ({error}); \
             the outcome is unknown. Retry the same commands once NATS answers: what is stored \
             already is answered as a duplicate, the rest is appended"
        )));
    }
    let mut stored = Vec::with_capacity(outgoing.len());
    for out in outgoing {
        let Some(recorded) = log
            .reader
            .find_command(&items[out.index].command_id)
            .await?
        else {
            continue;
        };
        let event = log.reader.read_position(recorded.outcome.position)?;
        if event.event_id == out.event_id {
            stored.push(event.position);
        }
    }
    let (Some(&first), Some(&last)) = (stored.first(), stored.last()) else {
        // A commit still on its way may land after the stream was read, so
        // this is not "nothing was appended".
        return Err(StoreError::Unavailable(
            "NATS did not acknowledge the atomic batch and none of its events is in the stream \
             yet; the outcome is unknown. Retry the same commands: what is stored already is \
             answered as a duplicate, the rest is appended"
                .into(),
        ));
    };
    if stored.len() == outgoing.len() && last - first + 1 == stored.len() as u64 {
        return Ok(Published::At(first));
    }
    let message = format!(
        "NATS did not acknowledge the atomic batch and has stored only {} of its {} events \
         so far (positions {first} to {last}); it may store the others later. Retry the same \
         commands: what is stored already is answered as a duplicate, the rest is appended",
        stored.len(),
        outgoing.len()
    );
    tracing::error!(%message, "JetStream broke an atomic batch");
    Err(StoreError::Unavailable(message))
}
