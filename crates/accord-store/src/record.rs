//! The stored record: `[format version: u8][crc32c of body: u32 LE][body]`,
//! where the body is a protobuf `StoredRecord` (readable when fields are
//! added) that carries the hash of the previous record. A record's hash is
//! the BLAKE3 of its whole framed bytes, so the records form a hash chain.

use accord_domain::{EventMetadata, RecordedEvent, Timestamp};
use accord_proto::storage::{StoredRecord, stored_record::Payload as StoredPayload};
use accord_proto::v1::{self, recorded_event::Payload};
use prost::Message;

use crate::StoreError;

/// The format version written today.
pub const RECORD_FORMAT_VERSION: u8 = 1;
const HEADER_BYTES: usize = 5;

/// A record's BLAKE3 hash.
pub type RecordHash = [u8; 32];

/// A record read back, with its place in the hash chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    /// The event it holds.
    pub event: RecordedEvent,
    /// The hash of the previous record (zeros before the first).
    pub prev_hash: RecordHash,
    /// Digest of the command that produced the event.
    pub command_fingerprint: crate::Fingerprint,
}

/// Returns the hash of a framed record, which the next record carries.
pub fn record_hash(bytes: &[u8]) -> RecordHash {
    *blake3::hash(bytes).as_bytes()
}

/// Encodes `event` as a framed record chained to `prev_hash`; returns the bytes and their hash.
pub fn encode_record(
    event: &RecordedEvent,
    command_fingerprint: &crate::Fingerprint,
    prev_hash: &RecordHash,
) -> (Vec<u8>, RecordHash) {
    let body = StoredRecord {
        position: event.position,
        agreement_id: event.agreement_id.clone(),
        version: event.version,
        event_id: event.event_id.to_vec(),
        recorded_at_unix_nanos: event.recorded_at.unix_nanos(),
        metadata: Some(v1::EventMetadata {
            command_id: event.metadata.command_id.clone(),
            correlation_id: event.metadata.correlation_id.clone(),
            causation_id: event.metadata.causation_id.clone(),
            actor: event.metadata.actor.clone(),
        }),
        prev_hash: prev_hash.to_vec(),
        command_fingerprint: command_fingerprint.to_vec(),
        payload: Some(stored_payload(accord_proto::event_to_wire(&event.event))),
    };
    let body_len = body.encoded_len();
    let mut bytes = Vec::with_capacity(HEADER_BYTES + body_len);
    bytes.push(RECORD_FORMAT_VERSION);
    bytes.extend_from_slice(&[0; 4]);
    body.encode(&mut bytes)
        .expect("a Vec grows to hold any message");
    let crc = crc32c::crc32c(&bytes[HEADER_BYTES..]);
    bytes[1..HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
    let hash = record_hash(&bytes);
    (bytes, hash)
}

/// Decodes a framed record, checking its format version and checksum (not
/// the chain: see [`record_hash`]).
pub fn decode_record(bytes: &[u8]) -> Result<DecodedRecord, StoreError> {
    let (header, body) = bytes.split_at_checked(HEADER_BYTES).ok_or_else(|| {
        StoreError::Corrupt(format!("record of {} bytes is too short", bytes.len()))
    })?;
    if header[0] != RECORD_FORMAT_VERSION {
        return Err(StoreError::Corrupt(format!(
            "unknown record format version {}",
            header[0]
        )));
    }
    let stored_crc = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
    let actual_crc = crc32c::crc32c(body);
    if stored_crc != actual_crc {
        return Err(StoreError::Corrupt(format!(
            "checksum mismatch: stored {stored_crc:08x}, computed {actual_crc:08x}"
        )));
    }
    let record = StoredRecord::decode(body)
        .map_err(|error| StoreError::Corrupt(format!("undecodable record body: {error}")))?;
    let position = record.position;
    let corrupt =
        |what: &str| StoreError::Corrupt(format!("record at position {position}: {what}"));
    let event_id: [u8; 16] = record
        .event_id
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("event id is not 16 bytes"))?;
    let prev_hash: RecordHash = record
        .prev_hash
        .as_slice()
        .try_into()
        .map_err(|_| corrupt("previous hash is not 32 bytes"))?;
    let command_fingerprint: crate::Fingerprint = match record.command_fingerprint.len() {
        0 => [0; 16],
        _ => record
            .command_fingerprint
            .as_slice()
            .try_into()
            .map_err(|_| corrupt("command fingerprint is not 16 bytes"))?,
    };
    let payload = record.payload.ok_or_else(|| corrupt("no payload"))?;
    let event = accord_proto::event_from_wire(wire_payload(payload))
        .map_err(|error| corrupt(&error.to_string()))?;
    let metadata = record.metadata.unwrap_or_default();
    Ok(DecodedRecord {
        event: RecordedEvent {
            position,
            agreement_id: record.agreement_id,
            version: record.version,
            event_id,
            recorded_at: Timestamp::from_unix_nanos(record.recorded_at_unix_nanos),
            metadata: EventMetadata {
                command_id: metadata.command_id,
                correlation_id: metadata.correlation_id,
                causation_id: metadata.causation_id,
                actor: metadata.actor,
            },
            event,
        },
        prev_hash,
        command_fingerprint,
    })
}

fn stored_payload(payload: Payload) -> StoredPayload {
    match payload {
        Payload::Announced(event) => StoredPayload::Announced(event),
        Payload::Signed(event) => StoredPayload::Signed(event),
        Payload::DeliveryRecorded(event) => StoredPayload::DeliveryRecorded(event),
        Payload::LocalizationRecorded(event) => StoredPayload::LocalizationRecorded(event),
    }
}

fn wire_payload(payload: StoredPayload) -> Payload {
    match payload {
        StoredPayload::Announced(event) => Payload::Announced(event),
        StoredPayload::Signed(event) => Payload::Signed(event),
        StoredPayload::DeliveryRecorded(event) => Payload::DeliveryRecorded(event),
        StoredPayload::LocalizationRecorded(event) => Payload::LocalizationRecorded(event),
    }
}

#[cfg(test)]
mod tests;
