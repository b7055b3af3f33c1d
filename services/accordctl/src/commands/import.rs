//! `accordctl import FILE`: verifies the whole export first (every record's
//! checksum, the hash chain, that each readable event matches its record,
//! and the end line), then loads it into an empty log with the end line's
//! signed checkpoint, which the server checks against the keys it trusts. A
//! tampered or truncated file imports nothing.

use std::path::Path;
use std::process::ExitCode;

use crate::connection::Grpc;
use accord_proto::recorded_event_to_wire;
use accord_proto::v1::{self, admin_client::AdminClient};
use accord_store::{decode_record, record_hash};

use super::Outcome;
use crate::json;
use accord_server::ALLOW_UNSIGNED_METADATA;
use accord_server::hex;

pub(crate) async fn run(channel: Grpc, file: &Path, allow_unsigned: bool) -> Outcome {
    let text = std::fs::read_to_string(file)
        .map_err(|error| format!("cannot read {}: {error}", file.display()))?;
    let records = match check(&text) {
        Ok(records) => records,
        Err(problem) => {
            println!("refused: {problem}; nothing was imported");
            return Ok(ExitCode::from(1));
        }
    };
    let count = records.len();
    let mut request = tonic::Request::new(tokio_stream::iter(records));
    if allow_unsigned {
        request.metadata_mut().insert(
            ALLOW_UNSIGNED_METADATA,
            tonic::metadata::MetadataValue::from_static("true"),
        );
    }
    let response = AdminClient::new(channel).import_log(request).await;
    match response {
        Ok(response) => {
            let response = response.into_inner();
            println!(
                "imported {} records (head {})",
                response.imported, response.head_position
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(status) => {
            println!(
                "refused by the server: {}; nothing was imported ({count} records offered)",
                status.message()
            );
            Ok(ExitCode::from(1))
        }
    }
}

/// Checks the whole file and returns the records to send.
fn check(text: &str) -> Result<Vec<v1::ExportedRecord>, String> {
    let mut records = Vec::new();
    let mut previous_hash = vec![0u8; 32];
    let mut end = None;
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        if end.is_some() {
            return Err(format!("line {number} follows the end line"));
        }
        let value: serde_json::Value = serde_json::from_str(line)
            .map_err(|error| format!("line {number} is not JSON: {error}"))?;
        if let Some(trailer) = value.get("end") {
            end = Some(trailer.clone());
            continue;
        }
        let field = |name: &str| {
            value
                .get(name)
                .and_then(|field| field.as_str())
                .ok_or_else(|| format!("line {number} lacks {name}"))
        };
        let bytes = hex::decode(field("record")?)
            .map_err(|error| format!("line {number}: record: {error}"))?;
        let decoded = decode_record(&bytes).map_err(|error| format!("line {number}: {error}"))?;
        let hash = record_hash(&bytes);
        if hex::encode(&hash) != field("hash")? {
            return Err(format!(
                "line {number}: the record does not hash to the hash given"
            ));
        }
        if decoded.prev_hash.as_slice() != previous_hash.as_slice()
            || hex::encode(&previous_hash) != field("prev_hash")?
        {
            return Err(format!("line {number}: the hash chain is broken"));
        }
        let position = value.get("position").and_then(|position| position.as_u64());
        if position != Some(decoded.event.position)
            || decoded.event.position != records.len() as u64 + 1
        {
            return Err(format!(
                "line {number}: position {position:?} out of sequence"
            ));
        }
        let event = recorded_event_to_wire(&decoded.event);
        if value.get("event") != Some(&json::event(&event)) {
            return Err(format!(
                "line {number}: the event differs from its record (position {})",
                decoded.event.position
            ));
        }
        previous_hash = hash.to_vec();
        records.push(v1::ExportedRecord {
            position: decoded.event.position,
            record: bytes,
            hash: hash.to_vec(),
            prev_hash: decoded.prev_hash.to_vec(),
            event: Some(event),
            checkpoint: None,
        });
    }
    let end = end.ok_or("the end line is missing: the file is truncated")?;
    let declared = end.get("records").and_then(|records| records.as_u64());
    if declared != Some(records.len() as u64) {
        return Err(format!(
            "the end line declares {declared:?} records, the file has {}",
            records.len()
        ));
    }
    let last_hash = end
        .get("last_hash")
        .and_then(|hash| hash.as_str())
        .unwrap_or_default();
    let expected_last = if records.is_empty() {
        String::new()
    } else {
        hex::encode(&previous_hash)
    };
    if last_hash != expected_last {
        return Err("the end line's last hash does not match the last record".into());
    }
    match (end.get("checkpoint"), records.last_mut()) {
        (Some(serde_json::Value::Null) | None, _) => {}
        (Some(checkpoint), Some(last)) => {
            last.checkpoint = Some(
                json::checkpoint_from(checkpoint)
                    .map_err(|error| format!("the end line's checkpoint: {error}"))?,
            );
        }
        (Some(_), None) => return Err("the end line has a checkpoint but no records".into()),
    }
    Ok(records)
}
