use super::*;
use accord_domain::{DeliveryRecorded, Event, EventMetadata};
use proptest::prelude::*;

fn sample(position: u64) -> RecordedEvent {
    RecordedEvent {
        position,
        agreement_id: "kz-wabtec-locomotives".into(),
        version: 3,
        event_id: [7; 16],
        recorded_at: Timestamp::from_unix_nanos(1_758_585_600_123_456_789),
        metadata: EventMetadata {
            command_id: "cmd-1".into(),
            correlation_id: "corr".into(),
            causation_id: String::new(),
            actor: "importer".into(),
        },
        event: Event::DeliveryRecorded(DeliveryRecorded {
            units: 12,
            delivered_at: Timestamp::from_seconds(1_760_000_000),
            reference: "batch 1".into(),
        }),
    }
}

#[test]
fn a_record_round_trips_with_its_chain_fields() {
    let prev = [9; 32];
    let (bytes, hash) = encode_record(&sample(5), &[3; 16], &prev);
    let decoded = decode_record(&bytes).expect("decodes");
    assert_eq!(decoded.event, sample(5));
    assert_eq!(decoded.prev_hash, prev);
    assert_eq!(decoded.command_fingerprint, [3; 16]);
    assert_eq!(record_hash(&bytes), hash);
}

#[test]
fn any_flipped_bit_is_caught_by_the_checksum_or_the_header() {
    let (bytes, _) = encode_record(&sample(1), &[3; 16], &[0; 32]);
    for index in 0..bytes.len() {
        for bit in 0..8 {
            let mut corrupted = bytes.clone();
            corrupted[index] ^= 1 << bit;
            assert!(
                decode_record(&corrupted).is_err(),
                "flip of bit {bit} in byte {index} went unnoticed"
            );
        }
    }
}

#[test]
fn truncated_records_are_refused() {
    let (bytes, _) = encode_record(&sample(1), &[3; 16], &[0; 32]);
    for length in 0..bytes.len() {
        assert!(decode_record(&bytes[..length]).is_err(), "length {length}");
    }
}

#[test]
fn unknown_fields_in_the_body_are_skipped() {
    // A newer writer may add fields; an older reader must still decode the record.
    let (bytes, _) = encode_record(&sample(1), &[3; 16], &[0; 32]);
    let mut body = bytes[HEADER_BYTES..].to_vec();
    // Field 99, wire type 2 (length-delimited), 3 bytes.
    prost::encoding::encode_key(99, prost::encoding::WireType::LengthDelimited, &mut body);
    prost::encoding::encode_varint(3, &mut body);
    body.extend_from_slice(b"new");
    let mut extended = vec![RECORD_SCHEMA_VERSION];
    extended.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    extended.extend_from_slice(&body);
    assert_eq!(decode_record(&extended).expect("decodes").event, sample(1));
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic_the_decoder(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode_record(&bytes);
    }

    #[test]
    fn framed_garbage_with_a_valid_checksum_never_panics(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut bytes = vec![RECORD_SCHEMA_VERSION];
        bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        let _ = decode_record(&bytes);
        let _ = decode_for_replay(&bytes);
    }
}

#[test]
fn a_record_of_a_newer_schema_is_refused_with_a_clear_message() {
    let (bytes, _) = encode_record(&sample(1), &[3; 16], &[0; 32]);
    let mut newer = bytes.clone();
    newer[0] = RECORD_SCHEMA_VERSION + 1;
    let error = decode_record(&newer).expect_err("refused").to_string();
    assert!(error.contains("written by a newer Accord"), "{error}");
    let mut unknown = bytes;
    unknown[0] = 0;
    let error = decode_record(&unknown).expect_err("refused").to_string();
    assert!(error.contains("unknown record schema version 0"), "{error}");
}

/// The replay's decoder reads what `decode_record` reads, less the
/// metadata; it checks the checksum and the schema the same way.
#[test]
fn the_replay_decoder_reads_the_event_without_its_metadata() {
    let (bytes, _) = encode_record(&sample(5), &[3; 16], &[9; 32]);
    let replayed = decode_for_replay(&bytes).expect("decodes");
    assert_eq!(
        replayed,
        RecordedEvent {
            metadata: EventMetadata::default(),
            ..sample(5)
        }
    );
    for index in [0, 2, bytes.len() / 2, bytes.len() - 1] {
        let mut damaged = bytes.clone();
        damaged[index] ^= 0x10;
        assert!(decode_for_replay(&damaged).is_err(), "byte {index} flipped");
    }
    let mut newer = bytes;
    newer[0] = RECORD_SCHEMA_VERSION + 1;
    let error = decode_for_replay(&newer).expect_err("refused").to_string();
    assert!(error.contains("written by a newer Accord"), "{error}");
}
