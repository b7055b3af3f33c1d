//! Appending: decide versions against the replica, publish conditionally on
//! each subject's last sequence, and answer once the replica holds the
//! events. A conflict refreshes the subject from the stream leader and
//! tries again, so a stale replica never turns into a wrong answer.

use std::collections::{HashMap, HashSet};

use accord_domain::{ExpectedVersion, RecordedEvent, Timestamp};
use async_nats::HeaderMap;
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;

use super::NatsLog;
use super::batch;
use super::outgoing::{Outgoing, Published, WRONG_LAST_SEQUENCE, publish_failed, refusal};
use super::subject::subject_of;
use crate::{AppendItem, AppendOutcome, Fingerprint, StoreError, decode_record, encode_record};

/// Attempts before a contended append gives up with the last conflict.
const MAX_ATTEMPTS: usize = 8;

/// Why an attempt did not append.
enum Refused {
    /// The replica (or the stream) disagrees with the versions decided for
    /// these agreements: refresh them and decide again.
    Conflict(Vec<String>),
    Store(StoreError),
}

impl From<StoreError> for Refused {
    fn from(error: StoreError) -> Self {
        Refused::Store(error)
    }
}

pub(crate) async fn append(
    log: &NatsLog,
    items: &[AppendItem],
) -> Result<Vec<AppendOutcome>, StoreError> {
    let mut refreshed: HashMap<String, u64> = HashMap::new();
    let mut last_conflict = None;
    for _ in 0..MAX_ATTEMPTS {
        match attempt(log, items, &refreshed).await {
            Ok(outcomes) => return Ok(outcomes),
            Err(Refused::Store(error)) => return Err(error),
            Err(Refused::Conflict(agreements)) => {
                for agreement_id in agreements {
                    let actual = refresh(log, &agreement_id).await?;
                    last_conflict = Some((agreement_id.clone(), actual));
                    refreshed.insert(agreement_id, actual);
                }
            }
        }
    }
    let (agreement_id, actual) = last_conflict.unwrap_or_default();
    let expected = items
        .iter()
        .find(|item| item.agreement_id == agreement_id)
        .map_or(ExpectedVersion::Any, |item| item.expected);
    Err(StoreError::WrongExpectedVersion {
        agreement_id,
        expected,
        actual,
    })
}

/// Asks the stream leader for the agreement's last event and waits until
/// the replica holds it; returns the agreement's version (0: no events).
pub(crate) async fn refresh(log: &NatsLog, agreement_id: &str) -> Result<u64, StoreError> {
    let stream = &log.connected.stream;
    match stream
        .get_last_raw_message_by_subject(&subject_of(agreement_id))
        .await
    {
        Ok(message) => {
            log.wait_applied(message.sequence).await?;
            let record = decode_record(&message.payload).map_err(|error| {
                StoreError::Unavailable(format!(
                    "the last message on {agreement_id}'s subject, stream message {}, is not a valid Accord record ({error}); it is quarantined, and appends to {agreement_id} are refused until it is removed from the stream",
                    message.sequence
                ))
            })?;
            Ok(record.event.version)
        }
        Err(error)
            if matches!(
                error.kind(),
                async_nats::jetstream::stream::LastRawMessageErrorKind::NoMessageFound
            ) =>
        {
            Ok(0)
        }
        Err(error) => Err(StoreError::failed(
            format!("last event of {agreement_id}"),
            error,
        )),
    }
}

async fn attempt(
    log: &NatsLog,
    items: &[AppendItem],
    refreshed: &HashMap<String, u64>,
) -> Result<Vec<AppendOutcome>, Refused> {
    let reader = &log.reader;
    let mut outcomes: Vec<Option<AppendOutcome>> = vec![None; items.len()];
    let mut outgoing = Vec::new();
    let mut versions: HashMap<&str, u64> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        if let Some(recorded) = reader.find_command(&item.command_id).await? {
            if recorded.fingerprint != item.fingerprint {
                return Err(StoreError::CommandIdConflict {
                    command_id: item.command_id.clone(),
                }
                .into());
            }
            outcomes[index] = Some(recorded.outcome);
            continue;
        }
        let (current, expected_subject_sequence) = match versions.get(item.agreement_id.as_str()) {
            Some(version) => (*version, None),
            None => {
                let (version, position) = reader.last_version(&item.agreement_id)?;
                (version, Some(position))
            }
        };
        let wrong = item.expected.check(&item.agreement_id, current).is_err()
            || (current == 0 && !item.event.opens_agreement());
        if wrong {
            if refreshed.get(&item.agreement_id) == Some(&current) {
                return Err(StoreError::WrongExpectedVersion {
                    agreement_id: item.agreement_id.clone(),
                    expected: item.expected,
                    actual: current,
                }
                .into());
            }
            return Err(Refused::Conflict(vec![item.agreement_id.clone()]));
        }
        let version = current + 1;
        versions.insert(&item.agreement_id, version);
        let event_id = uuid::Uuid::now_v7().into_bytes();
        let event = RecordedEvent {
            position: 0,
            agreement_id: item.agreement_id.clone(),
            version,
            event_id,
            // The replica stamps the server's time of storage.
            recorded_at: Timestamp::from_unix_nanos(0),
            metadata: item.metadata.clone(),
            event: item.event.clone(),
        };
        let (payload, _) = encode_record(&event, &item.fingerprint, &[0; 32]);
        outgoing.push(Outgoing {
            index,
            subject: subject_of(&item.agreement_id),
            payload: payload.into(),
            expected_subject_sequence,
            event_id,
        });
    }
    if outgoing.is_empty() {
        return Ok(outcomes.into_iter().flatten().collect());
    }
    let conflict = || {
        let agreements: HashSet<String> = outgoing
            .iter()
            .map(|out| items[out.index].agreement_id.clone())
            .collect();
        Refused::Conflict(agreements.into_iter().collect())
    };
    let first_position = if outgoing.len() == 1 {
        let out = &outgoing[0];
        let item = &items[out.index];
        match publish_one(log, out, &item.command_id).await? {
            Published::At(position) => position,
            Published::Conflict | Published::SeenCommand => return Err(conflict()),
            Published::Duplicate(position) => {
                return duplicate_of(log, out, item, position)
                    .await
                    .map(|outcome| {
                        outcomes[out.index] = Some(outcome);
                        outcomes.into_iter().flatten().collect()
                    })
                    .map_err(Refused::Store);
            }
        }
    } else {
        match batch::publish_batch(log, &outgoing, items).await? {
            Published::At(position) => position,
            Published::Conflict => return Err(conflict()),
            Published::SeenCommand => {
                // Another node appended one of these command ids a moment
                // ago: once the replica holds it, deciding again finds it.
                log.sync().await?;
                return Err(conflict());
            }
            Published::Duplicate(_) => {
                return Err(StoreError::Unavailable("unexpected duplicate batch".into()).into());
            }
        }
    };
    let last_position = first_position + outgoing.len() as u64 - 1;
    log.wait_applied(last_position).await?;
    for (offset, out) in outgoing.iter().enumerate() {
        let event = reader.read_position(first_position + offset as u64)?;
        if event.event_id != out.event_id {
            return Err(StoreError::Corrupt(format!(
                "position {} holds another event than the one appended there",
                event.position
            ))
            .into());
        }
        outcomes[out.index] = Some(AppendOutcome::of(&event, false));
    }
    Ok(outcomes.into_iter().flatten().collect())
}

/// The server said it saw the command id before: it is this very event
/// (an earlier try whose acknowledgement was lost), a retry of the same
/// command, or another command under a reused id.
async fn duplicate_of(
    log: &NatsLog,
    out: &Outgoing,
    item: &AppendItem,
    position: u64,
) -> Result<AppendOutcome, StoreError> {
    log.wait_applied(position).await?;
    let event = log.reader.read_position(position)?;
    if event.event_id == out.event_id {
        return Ok(AppendOutcome::of(&event, false));
    }
    let fingerprint: Option<Fingerprint> = log
        .reader
        .find_command(&item.command_id)
        .await?
        .map(|recorded| recorded.fingerprint);
    if fingerprint != Some(item.fingerprint) {
        return Err(StoreError::CommandIdConflict {
            command_id: item.command_id.clone(),
        });
    }
    Ok(AppendOutcome::of(&event, true))
}

async fn publish_one(
    log: &NatsLog,
    out: &Outgoing,
    command_id: &str,
) -> Result<Published, StoreError> {
    let mut headers = HeaderMap::new();
    headers.insert("Nats-Msg-Id", command_id);
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence",
        out.expected_subject_sequence
            .unwrap_or(0)
            .to_string()
            .as_str(),
    );
    let mut last_error = None;
    // The same message id makes a retry after a lost acknowledgement safe.
    for _ in 0..3 {
        let sent = log
            .connected
            .jetstream
            .send_publish(
                out.subject.clone(),
                PublishMessage::build()
                    .payload(out.payload.clone())
                    .headers(headers.clone()),
            )
            .await;
        let acknowledged = match sent {
            Ok(pending) => pending.await,
            Err(error) => Err(error),
        };
        match acknowledged {
            Ok(ack) if ack.duplicate => return Ok(Published::Duplicate(ack.sequence)),
            Ok(ack) => return Ok(Published::At(ack.sequence)),
            Err(error)
                if error.kind() == PublishErrorKind::WrongLastSequence
                    || refusal(&error).is_some_and(|refused| {
                        WRONG_LAST_SEQUENCE.contains(&refused.error_code().0)
                    }) =>
            {
                return Ok(Published::Conflict);
            }
            Err(error)
                if matches!(
                    error.kind(),
                    PublishErrorKind::TimedOut | PublishErrorKind::BrokenPipe
                ) =>
            {
                tracing::warn!(%error, subject = %out.subject, "publish not acknowledged; retrying");
                last_error = Some(error.to_string());
            }
            Err(error) => return Err(publish_failed(error)),
        }
    }
    Err(StoreError::Unavailable(format!(
        "NATS did not acknowledge the append after 3 tries ({}); the outcome is unknown: it may \
         still be stored. Retry the same command (same command_id): if it was stored it is \
         answered as a duplicate, otherwise it is appended",
        last_error.unwrap_or_default()
    )))
}
