//! Key layout of the log tree. Everything lives in one sled tree so that a
//! group of records and their index entries is written by one atomic batch.
//!
//! - `e` + position (u64 BE)       -> a block of consecutive records from that
//!   position on, or one framed record (see [`crate::tree::blocks`])
//! - `s` + agreement id + 0x00 + version (u64 BE) -> the positions of that
//!   version and the ones after it written by the same commit, 8 bytes BE
//!   each (see [`crate::tree::stream_index`])
//! - `c` + command id              -> fingerprint (16) + position (u64 BE),
//!   written by Accord before the index tail; read, never written now
//! - `k` + run + ...                -> the command index in runs written
//!   by the indexer (see [`crate::tree::index`])
//! - `q` + stream sequence (u64 BE) -> on a NATS replica, a message that is
//!   not a valid next record, kept aside (see `nats::quarantine`)
//! - `m` + name                    -> counters and markers

/// Prefix of record keys.
pub(crate) const EVENT: u8 = b'e';
/// Prefix of stream index keys.
pub(crate) const STREAM: u8 = b's';
/// Prefix of command index keys.
pub(crate) const COMMAND: u8 = b'c';
/// Prefix of the command index's runs.
pub(crate) const COMMAND_RUN: u8 = b'k';
/// What the indexes on disk cover (see [`crate::tree::index`]).
pub(crate) const INDEX_MANIFEST: &[u8] = b"mindex";
/// Prefix of quarantined messages (NATS replicas only).
pub(crate) const QUARANTINE: u8 = b'q';
/// Key of the agreement counter.
pub(crate) const AGREEMENT_COUNT: &[u8] = b"magreements";
/// The signed checkpoint of the head (see [`crate::checkpoint`]).
pub(crate) const CHECKPOINT: &[u8] = b"mcheckpoint";
/// Present while an import runs: a log opened with it is emptied.
pub(crate) const IMPORTING: &[u8] = b"mimporting";

pub(crate) fn event_key(position: u64) -> [u8; 9] {
    let mut key = [EVENT; 9];
    key[1..].copy_from_slice(&position.to_be_bytes());
    key
}

pub(crate) fn quarantine_key(sequence: u64) -> [u8; 9] {
    let mut key = [QUARANTINE; 9];
    key[1..].copy_from_slice(&sequence.to_be_bytes());
    key
}

/// A quarantined message's entry: `[reason length u32 LE][reason][message
/// bytes]`.
pub(crate) fn quarantine_entry(reason: &str, payload: &[u8]) -> Vec<u8> {
    let mut value = Vec::with_capacity(4 + reason.len() + payload.len());
    value.extend_from_slice(&(reason.len() as u32).to_le_bytes());
    value.extend_from_slice(reason.as_bytes());
    value.extend_from_slice(payload);
    value
}

/// The message bytes of a quarantined message's entry, as received.
pub(crate) fn quarantined_payload(entry: &[u8]) -> &[u8] {
    let length = entry
        .get(..4)
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(0, |bytes| u32::from_le_bytes(bytes) as usize);
    entry.get(4 + length..).unwrap_or_default()
}

pub(crate) fn position_of_event_key(key: &[u8]) -> Option<u64> {
    let bytes: [u8; 8] = key.get(1..9)?.try_into().ok()?;
    Some(u64::from_be_bytes(bytes))
}

pub(crate) fn stream_prefix(agreement_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(agreement_id.len() + 2);
    key.push(STREAM);
    key.extend_from_slice(agreement_id.as_bytes());
    key.push(0);
    key
}

pub(crate) fn stream_key(agreement_id: &str, version: u64) -> Vec<u8> {
    let mut key = stream_prefix(agreement_id);
    key.extend_from_slice(&version.to_be_bytes());
    key
}

pub(crate) fn version_of_stream_key(key: &[u8]) -> Option<u64> {
    let start = key.len().checked_sub(8)?;
    Some(u64::from_be_bytes(key[start..].try_into().ok()?))
}

pub(crate) fn command_key(command_id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(command_id.len() + 1);
    key.push(COMMAND);
    key.extend_from_slice(command_id.as_bytes());
    key
}

pub(crate) fn decode_u64(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?))
}

#[cfg(test)]
/// Encodes a command index entry: fingerprint, then position.
pub(crate) fn encode_command_entry(fingerprint: &crate::Fingerprint, position: u64) -> Vec<u8> {
    let mut entry = Vec::with_capacity(24);
    entry.extend_from_slice(fingerprint);
    entry.extend_from_slice(&position.to_be_bytes());
    entry
}

/// Splits a command index entry into fingerprint and position.
pub(crate) fn decode_command_entry(
    entry: &[u8],
) -> Result<(crate::Fingerprint, u64), crate::StoreError> {
    let corrupt = || crate::StoreError::Corrupt("malformed command index entry".into());
    let fingerprint: crate::Fingerprint = entry
        .get(..16)
        .ok_or_else(corrupt)?
        .try_into()
        .map_err(|_| corrupt())?;
    let position = decode_u64(entry.get(16..).ok_or_else(corrupt)?).ok_or_else(corrupt)?;
    Ok((fingerprint, position))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_keys_sort_by_position() {
        assert!(event_key(255) < event_key(256));
        assert_eq!(position_of_event_key(&event_key(42)), Some(42));
    }

    #[test]
    fn stream_keys_of_one_agreement_do_not_interleave_with_a_longer_id() {
        let short_last = stream_key("a", u64::MAX);
        let long_first = stream_key("a-b", 1);
        assert!(short_last < long_first || !short_last.starts_with(&stream_prefix("a-b")));
        assert!(!long_first.starts_with(&stream_prefix("a")));
        assert_eq!(version_of_stream_key(&stream_key("a", 7)), Some(7));
    }
}
