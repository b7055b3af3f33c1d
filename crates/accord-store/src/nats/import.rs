//! Importing an export into the stream: checked like on every backend,
//! then published unchanged with `Nats-Expected-Last-Sequence`, so that
//! every record lands at its own position or the import stops.

use async_nats::HeaderMap;

use super::NatsLog;
use super::batch::{self, BatchAnswer, BatchMessage, MAX_BATCH, Sent};
use super::subject::subject_of;
use crate::import_check::ImportCheck;
use crate::{ImportSource, RawRecord, StoreError, decode_record};

/// Imports every chunk of `source` into the empty stream: all checked
/// first, then published chunk by chunk.
pub(crate) async fn import(
    log: &NatsLog,
    mut source: Box<dyn ImportSource>,
) -> Result<u64, StoreError> {
    log.sync().await?;
    let head = log.replica.lock().followed();
    if head != 0 {
        return Err(StoreError::ImportNotPossible(format!(
            "imports go into an empty log; this one has {head} events"
        )));
    }
    // Everything is checked before the first record is published.
    let mut check = ImportCheck::new(0, [0; 32]);
    loop {
        let (returned, chunk) = next_chunk(source).await?;
        source = returned;
        let Some(chunk) = chunk else { break };
        for record in &chunk {
            check.accept(record, |_| Ok(0), |_| Ok(false))?;
        }
    }
    source.rewind()?;
    let mut imported = 0;
    loop {
        let (returned, chunk) = next_chunk(source).await?;
        source = returned;
        let Some(chunk) = chunk else { break };
        if let Err(error) = publish(log, &chunk).await {
            return Err(match imported {
                0 => error,
                _ => StoreError::Unavailable(format!(
                    "the import stopped after {imported} records: positions 1 to {imported} are in the stream, the rest is not ({error}); delete the stream and import again"
                )),
            });
        }
        imported += chunk.len() as u64;
    }
    Ok(imported)
}

/// The source back with its next chunk, read off the async workers.
type Read = (Box<dyn ImportSource>, Option<Vec<RawRecord>>);

async fn next_chunk(mut source: Box<dyn ImportSource>) -> Result<Read, StoreError> {
    let (source, chunk) = tokio::task::spawn_blocking(move || {
        let chunk = source.next_chunk();
        (source, chunk)
    })
    .await
    .map_err(|error| StoreError::failed("reading an import chunk", error))?;
    Ok((source, chunk?))
}

/// Publishes checked records, each at its own position.
async fn publish(log: &NatsLog, records: &[RawRecord]) -> Result<(), StoreError> {
    let subjects: Vec<String> = records
        .iter()
        .map(|record| {
            decode_record(&record.bytes).map(|decoded| subject_of(&decoded.event.agreement_id))
        })
        .collect::<Result<_, _>>()?;
    let chunk = if log.connected.atomic_batches {
        MAX_BATCH
    } else {
        1
    };
    for (records, subjects) in records.chunks(chunk).zip(subjects.chunks(chunk)) {
        let messages = records
            .iter()
            .zip(subjects)
            .enumerate()
            .map(|(offset, (record, subject))| {
                let mut headers = HeaderMap::new();
                if offset == 0 {
                    headers.insert(
                        "Nats-Expected-Last-Sequence",
                        (record.position - 1).to_string().as_str(),
                    );
                }
                BatchMessage {
                    subject: subject.clone(),
                    headers,
                    payload: record.bytes.clone(),
                }
            })
            .collect();
        let first = records[0].position;
        match batch::send(&log.connected.client, messages).await? {
            Sent::Answered(BatchAnswer {
                error: Some(error), ..
            }) => {
                return Err(StoreError::InvalidImport(format!(
                    "the stream refused the records from position {first}: {} (error code {})",
                    error.description, error.err_code
                )));
            }
            Sent::Answered(_) => {}
            Sent::Unanswered(error) => {
                return Err(StoreError::Unavailable(format!("import: {error}")));
            }
        }
        log.wait_applied(records[records.len() - 1].position)
            .await?;
    }
    Ok(())
}
