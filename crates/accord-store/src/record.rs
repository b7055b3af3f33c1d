//! The stored record: `[schema version: u8][crc32c of body: u32 LE][body]`,
//! where the body is a protobuf `accord.storage.v1.StoredRecord` (readable
//! when fields are added) that carries the hash of the previous record. A
//! record's hash is the BLAKE3 of its whole framed bytes, so the records
//! form a hash chain, and a record is never rewritten: a record of an older
//! schema is upcast when it is read, in [`decode_record`], which every read
//! path (log reads, subscriptions, the projector, rebuilds, verification,
//! export checks, import checks, the NATS replica) goes through.

use accord_domain::{RecordedEvent, Timestamp};
use accord_storage::storage::stored_record::Payload;
use accord_storage::storage::{ReplayedRecord, StoredRecord, replayed_record};
use accord_storage::stored::{
    event_from_stored, event_to_stored, metadata_from_stored, metadata_to_stored,
};
use prost::Message;

use crate::StoreError;

/// The schema version of the records written today. Version 1: the body as
/// Accord 0.1 wrote it (its field numbers are those of the `accord.v1`
/// events it then embedded).
pub const RECORD_SCHEMA_VERSION: u8 = 1;
const HEADER_BYTES: usize = 5;

/// True when `byte`, the first of a stored value, is a record schema
/// version this build reads.
pub(crate) const fn is_record_schema(byte: u8) -> bool {
    byte >= 1 && byte <= RECORD_SCHEMA_VERSION
}

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
        metadata: Some(metadata_to_stored(&event.metadata)),
        prev_hash: prev_hash.to_vec(),
        command_fingerprint: command_fingerprint.to_vec(),
        payload: Some(event_to_stored(&event.event)),
    };
    let body_len = body.encoded_len();
    let mut bytes = Vec::with_capacity(HEADER_BYTES + body_len);
    bytes.push(RECORD_SCHEMA_VERSION);
    bytes.extend_from_slice(&[0; 4]);
    body.encode(&mut bytes)
        .expect("a Vec grows to hold any message");
    let crc = crc32c::crc32c(&bytes[HEADER_BYTES..]);
    bytes[1..HEADER_BYTES].copy_from_slice(&crc.to_le_bytes());
    let hash = record_hash(&bytes);
    (bytes, hash)
}

/// Decodes a framed record of any schema this build reads, as the current
/// schema, checking its checksum (not the chain: see [`record_hash`]).
pub fn decode_record(bytes: &[u8]) -> Result<DecodedRecord, StoreError> {
    let (version, body) = checked_body(bytes)?;
    let record = upcast(version, body)?;
    let position = record.position;
    let corrupt = |what: &str| corrupt_at(position, what);
    let event_id = event_id_of(&record.event_id, position)?;
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
    let event = event_from_stored(payload).map_err(|error| corrupt(&error.to_string()))?;
    Ok(DecodedRecord {
        event: RecordedEvent {
            position,
            agreement_id: record.agreement_id,
            version: record.version,
            event_id,
            recorded_at: Timestamp::from_unix_nanos(record.recorded_at_unix_nanos),
            metadata: metadata_from_stored(record.metadata),
            event,
        },
        prev_hash,
        command_fingerprint,
    })
}

/// Decodes the event of a framed record for a replay into read models: as
/// [`decode_record`] (the checksum checked, any schema this build reads),
/// but without what a fold never reads — the metadata (left empty), the
/// previous hash and the command fingerprint — which are skipped, not
/// allocated.
pub fn decode_for_replay(bytes: &[u8]) -> Result<RecordedEvent, StoreError> {
    let (version, body) = checked_body(bytes)?;
    let record = match version {
        // Today's schema: its replayed fields are read as they are.
        RECORD_SCHEMA_VERSION => ReplayedRecord::decode(body)
            .map_err(|error| StoreError::Corrupt(format!("undecodable record body: {error}")))?,
        _ => {
            // An older schema (none yet) goes through the one upcast point,
            // which also refuses an unknown one.
            let event = decode_record(bytes)?.event;
            return Ok(RecordedEvent {
                metadata: Default::default(),
                ..event
            });
        }
    };
    let position = record.position;
    let corrupt = |what: &str| corrupt_at(position, what);
    let event_id = event_id_of(&record.event_id, position)?;
    let payload = match record.payload.ok_or_else(|| corrupt("no payload"))? {
        replayed_record::Payload::Announced(event) => Payload::Announced(event),
        replayed_record::Payload::Signed(event) => Payload::Signed(event),
        replayed_record::Payload::DeliveryRecorded(event) => Payload::DeliveryRecorded(event),
        replayed_record::Payload::LocalizationRecorded(event) => {
            Payload::LocalizationRecorded(event)
        }
    };
    let event = event_from_stored(payload).map_err(|error| corrupt(&error.to_string()))?;
    Ok(RecordedEvent {
        position,
        agreement_id: record.agreement_id,
        version: record.version,
        event_id,
        recorded_at: Timestamp::from_unix_nanos(record.recorded_at_unix_nanos),
        metadata: Default::default(),
        event,
    })
}

/// The error for a record at `position` whose `what` is wrong.
fn corrupt_at(position: u64, what: &str) -> StoreError {
    StoreError::Corrupt(format!("record at position {position}: {what}"))
}

/// The event id a record at `position` holds in `bytes`.
fn event_id_of(bytes: &[u8], position: u64) -> Result<[u8; 16], StoreError> {
    bytes
        .try_into()
        .map_err(|_| corrupt_at(position, "event id is not 16 bytes"))
}

/// The schema version and body of a framed record whose checksum holds.
fn checked_body(bytes: &[u8]) -> Result<(u8, &[u8]), StoreError> {
    let (header, body) = bytes.split_at_checked(HEADER_BYTES).ok_or_else(|| {
        StoreError::Corrupt(format!("record of {} bytes is too short", bytes.len()))
    })?;
    let stored_crc = u32::from_le_bytes([header[1], header[2], header[3], header[4]]);
    let actual_crc = crc32c::crc32c(body);
    if stored_crc != actual_crc {
        return Err(StoreError::Corrupt(format!(
            "checksum mismatch: stored {stored_crc:08x}, computed {actual_crc:08x}"
        )));
    }
    Ok((header[0], body))
}

/// The one upcast point: the body of a record of schema `version`, as the
/// current schema's message. A later schema adds its reader of the older
/// bodies here (a record written before is never rewritten).
fn upcast(version: u8, body: &[u8]) -> Result<StoredRecord, StoreError> {
    match version {
        1 => StoredRecord::decode(body)
            .map_err(|error| StoreError::Corrupt(format!("undecodable record body: {error}"))),
        newer if newer > RECORD_SCHEMA_VERSION => Err(StoreError::Corrupt(format!(
            "record schema version {newer} was written by a newer Accord; this one reads versions 1 to {RECORD_SCHEMA_VERSION}"
        ))),
        other => Err(StoreError::Corrupt(format!(
            "unknown record schema version {other}"
        ))),
    }
}

#[cfg(test)]
mod tests;
