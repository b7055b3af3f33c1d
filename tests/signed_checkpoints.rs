//! Tamper evidence against a forger: someone who can rewrite an export or
//! the data directory, recompute every hash and CRC so that the chain is
//! whole again, but does not hold the server's signing key.

use accord_proto::recorded_event_to_wire;
use accord_proto::v1::{self, admin_client::AdminClient};
use accord_server::Config;
use accord_store::test_support::{replace_checkpoint, stored_checkpoint};
use accord_store::{
    CheckpointKeys, EventLog, ImportChunks, RawRecord, SledLog, SledOptions, decode_record,
    encode_record,
};
use accord_tests::*;
use tonic::Code;

/// A server with a few events of two agreements.
async fn source() -> TestServer {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    client
        .announce(announce_boeing("uz-boeing-787"))
        .await
        .expect("announced");
    client
        .announce(announce_wabtec("kz-locomotives"))
        .await
        .expect("announced");
    client.sign(sign("uz-boeing-787")).await.expect("signed");
    client.sign(sign("kz-locomotives")).await.expect("signed");
    client
        .record_delivery(deliver("uz-boeing-787", "first-787s", 2))
        .await
        .expect("delivered");
    server
}

/// The export with the actor of the record at `position` changed and every
/// record after it re-chained: each hash, CRC and previous hash is right
/// again. The last record keeps the original checkpoint.
fn rechained(records: &[v1::ExportedRecord], position: u64) -> Vec<v1::ExportedRecord> {
    let mut prev_hash = [0u8; 32];
    records
        .iter()
        .map(|record| {
            let mut decoded = decode_record(&record.record).expect("decodes");
            if record.position == position {
                decoded.event.metadata.actor = "forger".into();
            }
            let (bytes, hash) =
                encode_record(&decoded.event, &decoded.command_fingerprint, &prev_hash);
            let forged = v1::ExportedRecord {
                position: record.position,
                record: bytes,
                hash: hash.to_vec(),
                prev_hash: prev_hash.to_vec(),
                event: Some(recorded_event_to_wire(&decoded.event)),
                checkpoint: record.checkpoint.clone(),
            };
            prev_hash = hash;
            forged
        })
        .collect()
}

async fn import(
    server: &TestServer,
    records: Vec<v1::ExportedRecord>,
    allow_unsigned: bool,
) -> Result<v1::ImportLogResponse, tonic::Status> {
    let mut request = tonic::Request::new(tokio_stream::iter(records));
    if allow_unsigned {
        request.metadata_mut().insert(
            accord_server::ALLOW_UNSIGNED_METADATA,
            tonic::metadata::MetadataValue::from_static("true"),
        );
    }
    AdminClient::new(server.channel())
        .import_log(request)
        .await
        .map(tonic::Response::into_inner)
}

fn forger_keys() -> CheckpointKeys {
    CheckpointKeys::new([0xF0; 32], [])
}

#[tokio::test]
async fn a_re_chained_export_is_refused_whatever_checkpoint_it_carries() {
    let source = source().await;
    let records = source.export().await;
    assert_eq!(records.len(), 5);
    let signed = records
        .last()
        .and_then(|record| record.checkpoint.clone())
        .expect("the last record carries the checkpoint");
    assert_eq!(signed.position, 5);
    assert_eq!(signed.hash, records[4].hash);
    assert_eq!(
        accord_server::hex::encode(&signed.public_key),
        source.public_key()
    );
    assert!(
        records[..4]
            .iter()
            .all(|record| record.checkpoint.is_none()),
        "only the last record carries one"
    );
    let target = TestServer::start_trusting(&[source.public_key()]).await;
    let forged = rechained(&records, 2);

    // The forgery is good enough to pass every check but the signature: a
    // server told to accept unsigned exports takes it.
    let mut unsigned = forged.clone();
    unsigned.last_mut().expect("records").checkpoint = None;
    let credulous = TestServer::start().await;
    import(&credulous, unsigned.clone(), true)
        .await
        .expect("without the signature the forgery is indistinguishable");
    assert_eq!(
        credulous.read_all().await[1]
            .metadata
            .as_ref()
            .expect("metadata")
            .actor,
        "forger"
    );
    credulous.stop().await;

    let mut resigned = forged.clone();
    let forger = forger_keys().sign(&accord_store::ChainHead {
        position: 5,
        hash: forged[4].hash.clone().try_into().expect("32 bytes"),
    });
    resigned.last_mut().expect("records").checkpoint = Some(v1::SignedCheckpoint {
        position: forger.position,
        hash: forger.hash.to_vec(),
        public_key: forger.public_key.to_vec(),
        signature: forger.signature.to_vec(),
    });
    // Moving the genuine signature onto the forged head.
    let mut moved = forged.clone();
    moved.last_mut().expect("records").checkpoint = Some(v1::SignedCheckpoint {
        hash: forged[4].hash.clone(),
        ..signed.clone()
    });
    // Cutting the last record and moving the checkpoint onto the one before.
    let mut truncated = records[..4].to_vec();
    truncated.last_mut().expect("records").checkpoint = Some(signed.clone());
    // A checkpoint in the middle of the export.
    let mut misplaced = records.clone();
    misplaced[1].checkpoint = Some(signed.clone());

    let cases = [
        (
            "re-chained, original checkpoint",
            forged,
            Code::InvalidArgument,
            "records were changed after they were signed",
        ),
        (
            "re-chained, signed by the forger",
            resigned,
            Code::FailedPrecondition,
            "not this server's key",
        ),
        (
            "re-chained, signature moved",
            moved,
            Code::InvalidArgument,
            "does not verify",
        ),
        (
            "re-chained, unsigned",
            unsigned,
            Code::FailedPrecondition,
            "no signed checkpoint",
        ),
        (
            "truncated",
            truncated,
            Code::InvalidArgument,
            "removed or added",
        ),
        (
            "checkpoint mid-export",
            misplaced,
            Code::InvalidArgument,
            "only on the last record",
        ),
    ];
    for (case, records, code, says) in cases {
        let status = import(&target, records, false).await.expect_err(case);
        assert_eq!(status.code(), code, "{case}: {status:?}");
        assert!(
            status.message().contains(says),
            "{case}: {}",
            status.message()
        );
        assert_eq!(target.head().await, 0, "{case}: nothing imported");
    }

    // The genuine export imports, and the copy verifies clean.
    let imported = import(&target, records.clone(), false)
        .await
        .expect("the genuine export imports");
    assert_eq!(imported.imported, 5);
    assert_eq!(target.read_all().await, source.read_all().await);
    assert_eq!(verify_clean(target.channel()).await, 5);
    source.stop().await;
    target.stop().await;
}

/// Writes `records` as a complete log (indexes and a checkpoint signed by
/// the forger) in `path`, as a forger with Accord's code would.
async fn forge_log(path: &std::path::Path, records: &[v1::ExportedRecord]) {
    let log = SledLog::open(SledOptions::new(path, forger_keys())).expect("opens");
    let raw = records
        .iter()
        .map(|record| RawRecord {
            position: record.position,
            bytes: record.record.clone().into(),
        })
        .collect();
    log.import(Box::new(ImportChunks::new(vec![raw])))
        .await
        .expect("the forged records form a valid log");
    log.close().await.expect("closes");
}

async fn refusal(data_dir: &std::path::Path) -> String {
    // The surgery before it opened the log itself: sled's I/O threads let
    // go of the directory's lock a moment after it closed (see
    // `test_support::open_log`), so a start that finds it held is tried
    // again, for up to 10 s.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let refused = accord_server::start(Config::ephemeral(data_dir))
            .await
            .err()
            .expect("the server refuses to start")
            .to_string();
        if !refused.contains("in use by another process") || tokio::time::Instant::now() >= deadline
        {
            return refused;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Stops `server` and returns a copy of its data directory.
async fn stopped_copy(server: TestServer) -> tempfile::TempDir {
    let copy = tempfile::tempdir().expect("tempdir");
    let data_dir = server.data_dir().to_owned();
    server.stop_then(|| copy_dir(&data_dir, copy.path())).await;
    copy
}

#[tokio::test]
async fn a_log_rewritten_on_disk_without_the_key_is_refused_at_start() {
    let source = source().await;
    let records = source.export().await;
    let copy = stopped_copy(source).await;
    let data_dir = copy.path();
    let genuine = tempfile::tempdir().expect("tempdir");
    copy_dir(&data_dir.join("log"), genuine.path());
    let genuine_checkpoint = stored_checkpoint(genuine.path())
        .expect("reads")
        .expect("a signed log");

    let swap_log = |replacement: &std::path::Path| {
        std::fs::remove_dir_all(data_dir.join("log")).expect("removed");
        copy_dir(replacement, &data_dir.join("log"));
    };
    let forged_dir = tempfile::tempdir().expect("tempdir");
    forge_log(forged_dir.path(), &rechained(&records, 2)).await;
    let truncated_dir = tempfile::tempdir().expect("tempdir");
    forge_log(truncated_dir.path(), &records[..4]).await;

    // Re-chained and signed with the forger's key.
    swap_log(forged_dir.path());
    let said = refusal(data_dir).await;
    assert!(said.contains("not this server's key"), "{said}");
    // Re-chained, with the genuine checkpoint copied over.
    replace_checkpoint(&data_dir.join("log"), Some(&genuine_checkpoint)).expect("forged");
    let said = refusal(data_dir).await;
    assert!(said.contains("records were changed"), "{said}");
    // Re-chained, with the checkpoint removed.
    replace_checkpoint(&data_dir.join("log"), None).expect("forged");
    let said = refusal(data_dir).await;
    assert!(said.contains("--adopt-unsigned-log"), "{said}");
    // The last record cut off, with the genuine checkpoint.
    swap_log(truncated_dir.path());
    replace_checkpoint(&data_dir.join("log"), Some(&genuine_checkpoint)).expect("forged");
    let said = refusal(data_dir).await;
    assert!(said.contains("removed or added"), "{said}");

    // The genuine log, put back, opens and verifies.
    swap_log(genuine.path());
    let server = accord_server::start(Config::ephemeral(data_dir))
        .await
        .expect("the genuine log opens");
    assert_eq!(verify_clean(connect(server.grpc_addr()).await).await, 5);
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_replaced_signing_key_needs_the_old_public_key_until_the_next_write() {
    let server = source().await;
    let old_public_key = server.public_key();
    let copy = stopped_copy(server).await;
    let data_dir = copy.path();
    std::fs::remove_file(data_dir.join("signing-key")).expect("key removed");
    // A new key is made at start; the log signed with the old one is refused.
    let said = refusal(data_dir).await;
    assert!(said.contains("--trusted-key"), "{said}");
    assert_ne!(public_key_of(data_dir), old_public_key);

    let mut config = Config::ephemeral(data_dir);
    config.trusted_keys = vec![old_public_key];
    let rotated = accord_server::start(config)
        .await
        .expect("opens with the old key trusted");
    let channel = connect(rotated.grpc_addr()).await;
    assert_eq!(verify_clean(channel.clone()).await, 5);
    v1::agreement_service_client::AgreementServiceClient::new(channel)
        .record_delivery(deliver("uz-boeing-787", "second-787s", 1))
        .await
        .expect("delivered");
    rotated.shutdown().await.expect("stops");
    // That write was signed with the new key: the old one is not needed.
    let server = accord_server::start(Config::ephemeral(data_dir))
        .await
        .expect("opens with its own key");
    assert_eq!(verify_clean(connect(server.grpc_addr()).await).await, 6);
    server.shutdown().await.expect("stops");
}
