//! Importing an export into the stream: checked like on every backend,
//! then published unchanged with `Nats-Expected-Last-Sequence`, so that
//! every record lands at its own position or the import stops.

use async_nats::HeaderMap;

use super::NatsLog;
use super::batch::MAX_BATCH;
use super::subject::subject_of;
use crate::import_check::ImportCheck;
use crate::{RawRecord, StoreError};

pub(crate) async fn import(log: &NatsLog, records: Vec<RawRecord>) -> Result<u64, StoreError> {
    if records.is_empty() {
        return Ok(0);
    }
    log.sync().await?;
    let (head, last_hash) = {
        let replica = log
            .replica
            .lock()
            .map_err(|_| StoreError::Unavailable("replica lock poisoned".into()))?;
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
    let client = &log.connected.client;
    for (records, subjects) in records.chunks(chunk).zip(subjects.chunks(chunk)) {
        let batch_id = uuid::Uuid::new_v4().simple().to_string();
        let count = records.len();
        for (offset, (record, subject)) in records.iter().zip(subjects).enumerate() {
            let mut headers = HeaderMap::new();
            if offset == 0 {
                headers.insert(
                    "Nats-Expected-Last-Sequence",
                    (record.position - 1).to_string().as_str(),
                );
            }
            if count > 1 {
                headers.insert("Nats-Batch-Id", batch_id.as_str());
                headers.insert("Nats-Batch-Sequence", (offset + 1).to_string().as_str());
            }
            let payload = bytes::Bytes::from(record.bytes.clone());
            if offset + 1 < count {
                client
                    .publish_with_headers(subject.clone(), headers, payload)
                    .await
                    .map_err(|error| StoreError::Unavailable(error.to_string()))?;
                continue;
            }
            if count > 1 {
                headers.insert("Nats-Batch-Commit", "1");
            }
            let answer = client
                .request_with_headers(subject.clone(), headers, payload)
                .await
                .map_err(|error| StoreError::Unavailable(format!("import: {error}")))?;
            let answer: serde_json::Value = serde_json::from_slice(&answer.payload)
                .map_err(|error| StoreError::Unavailable(format!("import: {error}")))?;
            if let Some(error) = answer.get("error") {
                return Err(StoreError::InvalidImport(format!(
                    "the stream refused the records from position {}: {error}",
                    records[0].position
                )));
            }
        }
        let last = records[count - 1].position;
        log.wait_applied(last).await?;
    }
    Ok(records.len() as u64)
}
