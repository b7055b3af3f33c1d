//! Importing an export into the stream: checked like on every backend,
//! then published unchanged with `Nats-Expected-Last-Sequence`, so that
//! every record lands at its own position or the import stops.

use async_nats::HeaderMap;

use super::NatsLog;
use super::batch::{self, BatchAnswer, BatchMessage, MAX_BATCH, Sent};
use super::subject::subject_of;
use crate::import_check::ImportCheck;
use crate::{RawRecord, StoreError};

pub(crate) async fn import(log: &NatsLog, records: Vec<RawRecord>) -> Result<u64, StoreError> {
    if records.is_empty() {
        return Ok(0);
    }
    log.sync().await?;
    let (head, last_hash) = {
        let replica = log.replica.lock();
        (replica.head(), replica.last_hash())
    };
    let mut check = ImportCheck::new(head, last_hash);
    let mut subjects = Vec::with_capacity(records.len());
    for record in &records {
        let decoded = check.accept(
            record,
            |agreement_id| Ok(log.reader.last_version(agreement_id)?.0),
            |command_id| log.reader.has_command(command_id),
        )?;
        subjects.push(subject_of(&decoded.event.agreement_id));
    }
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
                    payload: bytes::Bytes::from(record.bytes.clone()),
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
    Ok(records.len() as u64)
}
