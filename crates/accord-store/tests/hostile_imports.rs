//! The export file's records as a hostile file would hold them: arbitrary
//! bytes, arbitrary positions, framed garbage, and signed checkpoints of
//! arbitrary bytes never panic the import's checks. Cases: 512 per property
//! by default; set `ACCORD_FUZZ_CASES` for a longer run.

use accord_store::{
    CheckpointKeys, ImportVerifier, RECORD_SCHEMA_VERSION, RawRecord, SignedCheckpoint,
};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("ACCORD_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(512)
}

/// A record's framing around `body`, with a valid checksum: what gets past
/// the first check and reaches the body's decoding.
fn framed(body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![RECORD_SCHEMA_VERSION];
    bytes.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    bytes.extend_from_slice(body);
    bytes
}

fn keys() -> CheckpointKeys {
    CheckpointKeys::new([7; 32], [])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    #[test]
    fn arbitrary_records_never_panic_the_import_checks(
        records in proptest::collection::vec(
            (any::<u64>(), proptest::collection::vec(any::<u8>(), 0..1_024), any::<bool>()),
            0..16,
        )
    ) {
        let mut verifier = ImportVerifier::default();
        for (position, bytes, frame) in records {
            let bytes = if frame { framed(&bytes) } else { bytes };
            let bytes = bytes.into();
            if verifier.accept(&RawRecord { position, bytes }).is_err() {
                break;
            }
        }
        let _ = verifier.finish(None, &keys(), false);
    }

    #[test]
    fn arbitrary_checkpoints_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(checkpoint) = SignedCheckpoint::decode(&bytes) {
            let _ = ImportVerifier::default().finish(Some(&checkpoint), &keys(), false);
        }
    }
}
