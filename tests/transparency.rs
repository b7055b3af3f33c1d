//! The log as a transparency log, through the real server: its signed
//! checkpoint, inclusion proofs of every position and consistency proofs
//! between sizes are RFC 9162's and C2SP's as an independent implementation
//! (`accord_tests::rfc9162`) computes them from the exported records; bad
//! sizes and positions are refused naming the field; and a client holding
//! a checkpoint catches a rollback of the data directory, and a log that
//! grew back to the same size with another history.

use accord_proto::v1::{self, transparency_client::TransparencyClient};
use accord_tests::rfc9162;
use accord_tests::*;
use tonic::Code;
use tonic::transport::Channel;

const ORIGIN: &str = "accord/transparency.test";

fn transparency(server: &TestServer) -> TransparencyClient<Channel> {
    TransparencyClient::new(server.channel())
}

async fn start() -> TestServer {
    TestServer::start_with(|config| config.log_origin = Some(ORIGIN.to_owned())).await
}

fn public_key(server: &TestServer) -> [u8; 32] {
    let hex = server.public_key();
    (0..32)
        .map(|at| u8::from_str_radix(&hex[2 * at..2 * at + 2], 16).expect("hex"))
        .collect::<Vec<_>>()
        .try_into()
        .expect("32 bytes")
}

/// The latest checkpoint, its signature checked independently: (size, root).
async fn checkpoint(server: &TestServer) -> (u64, rfc9162::Hash, String) {
    let note = transparency(server)
        .get_checkpoint(v1::GetCheckpointRequest {})
        .await
        .expect("checkpoint")
        .into_inner()
        .note;
    let (origin, size, root) =
        rfc9162::open_checkpoint(&note, ORIGIN, &public_key(server)).expect("verifies");
    assert_eq!(origin, ORIGIN);
    (size, root, note)
}

/// Every record's bytes, as `ExportLog` gives them: the tree's leaves.
async fn leaves(server: &TestServer) -> Vec<Vec<u8>> {
    server
        .export()
        .await
        .into_iter()
        .map(|record| record.record)
        .collect()
}

#[tokio::test]
async fn checkpoints_and_proofs_are_rfc_9162s_over_the_exported_records() {
    let server = start().await;
    let (size, root, _) = checkpoint(&server).await;
    assert_eq!((size, root), (0, rfc9162::mth(&[])), "the empty log");
    append_deliveries(&server, "kz-locomotives", 298).await;
    let records = leaves(&server).await;
    let (size, root, _) = checkpoint(&server).await;
    assert_eq!(size, 300);
    assert_eq!(size, records.len() as u64);
    assert_eq!(root, rfc9162::mth(&records));
    // Every position's inclusion proof, in the latest tree and an older one.
    let mut client = transparency(&server);
    for tree_size in [0, 257] {
        let size = if tree_size == 0 { 300 } else { tree_size };
        for position in 1..=size {
            let proof = client
                .get_inclusion_proof(v1::GetInclusionProofRequest {
                    position,
                    tree_size,
                })
                .await
                .expect("proof")
                .into_inner();
            let index = (position - 1) as usize;
            assert_eq!(
                (proof.leaf_index, proof.tree_size),
                (position - 1, size),
                "{position}"
            );
            assert_eq!(
                proof.leaf, records[index],
                "the leaf is the exported record"
            );
            assert_eq!(
                rfc9162::hashes(&proof.hashes),
                rfc9162::path(index, &records[..size as usize]),
                "PATH({index}, {size})"
            );
        }
    }
    // The log grows: the old checkpoint is a prefix of the new one.
    append_deliveries(&server, "uz-locomotives", 40).await;
    let grown = leaves(&server).await;
    let (new_size, new_root, _) = checkpoint(&server).await;
    assert_eq!(new_root, rfc9162::mth(&grown));
    for first in [0, 1, 2, 255, 256, 257, 300, new_size] {
        let proof = client
            .get_consistency_proof(v1::GetConsistencyProofRequest {
                first_size: first,
                second_size: 0,
            })
            .await
            .expect("proof")
            .into_inner();
        assert_eq!((proof.first_size, proof.second_size), (first, new_size));
        assert_eq!(
            rfc9162::hashes(&proof.hashes),
            rfc9162::proof(first as usize, &grown),
            "PROOF({first}, {new_size})"
        );
    }
    // The client's own check with the old checkpoint it held.
    let proof = client
        .get_consistency_proof(v1::GetConsistencyProofRequest {
            first_size: size,
            second_size: new_size,
        })
        .await
        .expect("proof")
        .into_inner();
    accord_tlog::verify_consistency(
        size,
        new_size,
        &root,
        &new_root,
        &rfc9162::hashes(&proof.hashes),
    )
    .expect("the new checkpoint extends the old one");
    // Checkpoints survive a restart unchanged.
    let mut server = server;
    server.restart().await;
    assert_eq!(checkpoint(&server).await.1, new_root);
}

#[tokio::test]
async fn sizes_and_positions_beyond_the_checkpoint_are_refused_naming_the_field() {
    let server = start().await;
    append_deliveries(&server, "kz-locomotives", 8).await;
    let head = server.head().await;
    let mut client = transparency(&server);
    let refused = |status: tonic::Status, field: &str| {
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(
            status
                .message()
                .starts_with(&format!("invalid argument: {field}: ")),
            "{status:?}"
        );
    };
    for (position, tree_size, field) in [
        (1, head + 1, "tree_size"),
        (0, 0, "position"),
        (head + 1, 0, "position"),
        (6, 5, "position"),
    ] {
        let status = client
            .get_inclusion_proof(v1::GetInclusionProofRequest {
                position,
                tree_size,
            })
            .await
            .expect_err("refused");
        refused(status, field);
    }
    for (first_size, second_size, field) in [
        (1, head + 1, "second_size"),
        (head + 1, 0, "first_size"),
        (5, 4, "first_size"),
    ] {
        let status = client
            .get_consistency_proof(v1::GetConsistencyProofRequest {
                first_size,
                second_size,
            })
            .await
            .expect_err("refused");
        refused(status, field);
    }
    assert_eq!(server.head().await, head, "nothing was appended");
    assert_eq!(checkpoint(&server).await.0, head);
}

#[tokio::test]
async fn a_client_holding_a_checkpoint_catches_a_rollback_and_a_rewritten_history() {
    let mut server = start().await;
    append_deliveries(&server, "kz-locomotives", 10).await;
    let backup = tempfile::tempdir().expect("a backup directory");
    server
        .restart_after(|data| copy_dir(data, backup.path()))
        .await;
    append_deliveries(&server, "uz-locomotives", 10).await;
    // The client keeps the checkpoint it saw.
    let (held_size, held_root, _) = checkpoint(&server).await;
    assert_eq!(held_size, 24);
    // The operator puts the earlier data directory back: genuinely signed,
    // every record intact, and shorter.
    server
        .restart_after(|data| {
            std::fs::remove_dir_all(data).expect("removes");
            copy_dir(backup.path(), data);
        })
        .await;
    let (size, root, _) = checkpoint(&server).await;
    assert_eq!(size, 12, "the rolled-back log still signs its checkpoints");
    assert!(
        size < held_size,
        "the client sees a smaller tree than it holds: a rollback"
    );
    let status = transparency(&server)
        .get_consistency_proof(v1::GetConsistencyProofRequest {
            first_size: held_size,
            second_size: 0,
        })
        .await
        .expect_err("the server cannot extend what the client holds");
    assert_eq!(status.code(), Code::InvalidArgument);
    // It grows back to the same size with another history: the sizes agree,
    // the roots do not, and no consistency proof can join them.
    append_deliveries(&server, "uz-other", 10).await;
    let (size, root_now, _) = checkpoint(&server).await;
    assert_eq!(size, held_size);
    assert_ne!(root_now, held_root, "another history, another root");
    let proof = transparency(&server)
        .get_consistency_proof(v1::GetConsistencyProofRequest {
            first_size: 12,
            second_size: size,
        })
        .await
        .expect("proof")
        .into_inner();
    assert!(
        accord_tlog::verify_consistency(
            12,
            size,
            &root,
            &root_now,
            &rfc9162::hashes(&proof.hashes)
        )
        .is_ok(),
        "the rolled-back log extends its own past"
    );
    assert!(
        accord_tlog::verify_consistency(size, size, &held_root, &root_now, &[]).is_err(),
        "but not what the client held"
    );
}

const ACCORDCTL: &str = env!("CARGO_BIN_EXE_accordctl-under-test");

/// `accordctl` against `server` (or offline when `server` is `None`).
async fn accordctl(server: Option<&TestServer>, args: &[&str]) -> std::process::Output {
    let mut command = tokio::process::Command::new(ACCORDCTL);
    if let Some(server) = server {
        command
            .arg("--server")
            .arg(format!("http://{}", server.server().grpc_addr()));
    }
    command.args(args).output().await.expect("accordctl runs")
}

fn said(output: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn accordctl_proves_an_agreement_offline_and_catches_a_rollback() {
    let mut server = start().await;
    load_unga80(&server).await;
    let key = server.public_key();
    let files = tempfile::tempdir().expect("a directory");
    let path = |name: &str| files.path().join(name).to_string_lossy().into_owned();
    // The client keeps a checkpoint.
    let held = path("held.note");
    let output = accordctl(
        Some(&server),
        &["checkpoint", "--key", &key, "--out", &held],
    )
    .await;
    assert!(output.status.success(), "{}", said(&output));
    let held_note = std::fs::read_to_string(&held).expect("the checkpoint");
    let (_, held_size, _) = rfc9162::open_checkpoint(&held_note, ORIGIN, &public_key(&server))
        .expect("accordctl wrote a genuine checkpoint");
    // A proof bundle of one agreement, checked with no server.
    let output = accordctl(Some(&server), &["prove", "uz-boeing-787", "--key", &key]).await;
    assert!(output.status.success(), "{}", said(&output));
    let bundle = path("bundle.json");
    std::fs::write(&bundle, &output.stdout).expect("writes the bundle");
    let output = accordctl(None, &["check-proof", &bundle, "--key", &key]).await;
    assert!(output.status.success(), "{}", said(&output));
    assert!(
        said(&output).contains("proven: uz-boeing-787 versions 1 to"),
        "{}",
        said(&output)
    );
    // A changed leaf, a changed proof, another key: refused.
    let text = std::fs::read_to_string(&bundle).expect("reads");
    let mut value: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    let original = value.clone();
    let leaf = value["entries"][0]["leaf"]
        .as_str()
        .expect("a leaf")
        .to_owned();
    let mut bytes = base64_decode(&leaf);
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    value["entries"][0]["leaf"] = base64_encode(&bytes).into();
    let tampered = path("tampered.json");
    std::fs::write(&tampered, value.to_string()).expect("writes");
    let output = accordctl(None, &["check-proof", &tampered, "--key", &key]).await;
    assert_eq!(output.status.code(), Some(1), "{}", said(&output));
    assert!(said(&output).contains("NOT PROVEN"), "{}", said(&output));
    let mut value = original.clone();
    let hash = value["entries"][0]["hashes"][0]
        .as_str()
        .expect("a hash")
        .to_owned();
    let mut bytes = base64_decode(&hash);
    bytes[0] ^= 1;
    value["entries"][0]["hashes"][0] = base64_encode(&bytes).into();
    std::fs::write(&tampered, value.to_string()).expect("writes");
    let output = accordctl(None, &["check-proof", &tampered, "--key", &key]).await;
    assert_eq!(output.status.code(), Some(1), "{}", said(&output));
    let other_key = "11".repeat(32);
    let output = accordctl(None, &["check-proof", &bundle, "--key", &other_key]).await;
    assert_eq!(output.status.code(), Some(1), "{}", said(&output));
    // The log grows: consistent with what the client holds.
    let backup = tempfile::tempdir().expect("a backup directory");
    server
        .restart_after(|data| copy_dir(data, backup.path()))
        .await;
    append_deliveries(&server, "kz-more", 5).await;
    let output = accordctl(
        Some(&server),
        &["check-consistency", &held, "--key", &key, "--update"],
    )
    .await;
    assert!(output.status.success(), "{}", said(&output));
    assert!(
        said(&output).contains(&format!("consistent: {held_size} -> ")),
        "{}",
        said(&output)
    );
    let updated = std::fs::read_to_string(&held).expect("the newer checkpoint");
    let (_, newer_size, _) =
        rfc9162::open_checkpoint(&updated, ORIGIN, &public_key(&server)).expect("genuine");
    assert_eq!(newer_size, server.head().await);
    // The operator puts the earlier data directory back: caught.
    server
        .restart_after(|data| {
            std::fs::remove_dir_all(data).expect("removes");
            copy_dir(backup.path(), data);
        })
        .await;
    let output = accordctl(Some(&server), &["check-consistency", &held, "--key", &key]).await;
    assert_eq!(output.status.code(), Some(1), "{}", said(&output));
    assert!(said(&output).contains("ROLLBACK"), "{}", said(&output));
    // It grows past the held size with another history: caught.
    append_deliveries(&server, "kz-other", 12).await;
    let output = accordctl(Some(&server), &["check-consistency", &held, "--key", &key]).await;
    assert_eq!(output.status.code(), Some(1), "{}", said(&output));
    assert!(
        said(&output).contains("NOT AN EXTENSION"),
        "{}",
        said(&output)
    );
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn the_log_is_served_as_c2sp_tiles_on_the_consoles_port() {
    let server = start().await;
    append_deliveries(&server, "kz-locomotives", 298).await;
    let console = server.server().console_addr().expect("the console");
    let records = leaves(&server).await;
    assert_eq!(records.len(), 300);
    // The checkpoint, as gRPC gives it.
    let (status, note) = http_get_body(console, "/checkpoint").await;
    assert_eq!(status, 200);
    let (_, size, root) = rfc9162::open_checkpoint(
        &String::from_utf8(note).expect("text"),
        ORIGIN,
        &public_key(&server),
    )
    .expect("verifies");
    assert_eq!((size, root), (300, rfc9162::mth(&records)));
    // Level 0: the leaf hashes; level 1: the roots of each 256 leaves.
    let leaf_hashes: Vec<u8> = records
        .iter()
        .flat_map(|leaf| rfc9162::leaf(leaf))
        .collect();
    let (status, full) = http_get_body(console, "/tile/0/000").await;
    assert_eq!(status, 200);
    assert_eq!(full, leaf_hashes[..256 * 32]);
    let (status, partial) = http_get_body(console, "/tile/0/001.p/44").await;
    assert_eq!(status, 200);
    assert_eq!(partial, leaf_hashes[256 * 32..]);
    let (status, shorter) = http_get_body(console, "/tile/0/001.p/3").await;
    assert_eq!(
        (status, shorter),
        (200, leaf_hashes[256 * 32..259 * 32].to_vec())
    );
    let (status, level_one) = http_get_body(console, "/tile/1/000.p/1").await;
    assert_eq!(status, 200);
    assert_eq!(level_one, rfc9162::mth(&records[..256]));
    // The entries: each record after its length.
    let mut bundle = Vec::new();
    for record in &records[..256] {
        bundle.extend_from_slice(&(record.len() as u16).to_be_bytes());
        bundle.extend_from_slice(record);
    }
    let (status, entries) = http_get_body(console, "/tile/entries/000").await;
    assert_eq!(status, 200);
    assert_eq!(entries, bundle);
    let (status, entries) = http_get_body(console, "/tile/entries/001.p/44").await;
    assert_eq!(status, 200);
    assert_eq!(
        entries.len(),
        records[256..].iter().map(|r| r.len() + 2).sum::<usize>()
    );
    // What the tree does not have yet, or what is no tile, is not found.
    for path in [
        "/tile/0/001",
        "/tile/0/001.p/45",
        "/tile/1/000",
        "/tile/2/000.p/1",
        "/tile/entries/002.p/1",
        "/tile/0/1",
        "/tile/0/000.p/256",
        "/tile/64/000",
    ] {
        let (status, _) = http_get_body(console, path).await;
        assert_eq!(status, 404, "{path}");
    }
}

/// A witness process (`accordctl witness`) for the log `ORIGIN` signed by
/// `log_key`, keeping its state in `state`: its URL, public key and process.
async fn witness(
    log_key: &str,
    key_file: &std::path::Path,
    state: &std::path::Path,
) -> (String, [u8; 32], tokio::process::Child) {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(ACCORDCTL)
        .args([
            "witness",
            "--listen",
            "127.0.0.1:0",
            "--name",
            "witness.test",
        ])
        .arg("--key-file")
        .arg(key_file)
        .arg("--log")
        .arg(format!("{ORIGIN}={log_key}"))
        .arg("--state")
        .arg(state)
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the witness starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let listening = lines.next_line().await.expect("reads").expect("a line");
    let address = listening
        .rsplit(' ')
        .next()
        .expect("the witness says where it listens")
        .to_owned();
    let key_line = lines.next_line().await.expect("reads").expect("a line");
    let key: [u8; 32] = base16(key_line.trim_start_matches("public key "));
    (format!("http://{address}"), key, child)
}

fn base16(hex: &str) -> [u8; 32] {
    (0..32)
        .map(|at| u8::from_str_radix(&hex[2 * at..2 * at + 2], 16).expect("hex"))
        .collect::<Vec<_>>()
        .try_into()
        .expect("32 bytes")
}

#[tokio::test]
async fn a_witness_cosigns_extensions_and_refuses_a_rollback_and_a_split_view() {
    let mut server = start().await;
    let key = server.public_key();
    let files = tempfile::tempdir().expect("a directory");
    let key_file = files.path().join("witness-key");
    let made = accordctl(None, &["new-signing-key", &key_file.to_string_lossy()]).await;
    assert!(made.status.success(), "{}", said(&made));
    let state = files.path().join("witness-state.json");
    let (url, witness_key, mut process) = witness(&key, &key_file, &state).await;
    let cosign = |server: &TestServer| {
        let url = url.clone();
        let key = key.clone();
        let address = format!("http://{}", server.server().grpc_addr());
        async move {
            tokio::process::Command::new(ACCORDCTL)
                .args([
                    "--server",
                    &address,
                    "cosign",
                    "--witness",
                    &url,
                    "--key",
                    &key,
                ])
                .output()
                .await
                .expect("accordctl runs")
        }
    };
    // The first checkpoint, and an extension of it: cosigned.
    append_deliveries(&server, "kz-locomotives", 10).await;
    let backup = tempfile::tempdir().expect("a backup directory");
    server
        .restart_after(|data| copy_dir(data, backup.path()))
        .await;
    for round in 0..2 {
        let output = cosign(&server).await;
        assert!(output.status.success(), "round {round}: {}", said(&output));
        let note = String::from_utf8(output.stdout).expect("text");
        let (_, size, _) =
            rfc9162::open_checkpoint(&note, ORIGIN, &public_key(&server)).expect("the log signed");
        assert_eq!(size, server.head().await);
        rfc9162::open_cosignature(&note, "witness.test", &witness_key)
            .expect("the witness cosigned, verified independently");
        append_deliveries(&server, &format!("uz-{round}"), 5).await;
    }
    let cosigned = server.head().await - 7;
    // A rollback: the earlier data directory, genuinely signed, is refused.
    server
        .restart_after(|data| {
            std::fs::remove_dir_all(data).expect("removes");
            copy_dir(backup.path(), data);
        })
        .await;
    let output = cosign(&server).await;
    assert_eq!(output.status.code(), Some(1), "{}", said(&output));
    assert!(said(&output).contains("ROLLBACK"), "{}", said(&output));
    // A split view: another server with the same key and origin and another
    // history, longer than what the witness cosigned: refused, also after
    // the witness restarts (its state is on disk).
    let other_dir = tempfile::tempdir().expect("a data directory");
    std::fs::copy(
        server.data_dir().join("signing-key"),
        other_dir.path().join("signing-key"),
    )
    .expect("the same key");
    let other = TestServer::start_in(other_dir, |config| {
        config.log_origin = Some(ORIGIN.to_owned());
    })
    .await;
    assert_eq!(other.public_key(), key);
    append_deliveries(&other, "kz-elsewhere", cosigned as usize + 5).await;
    process.kill().await.expect("stops the witness");
    let (url_again, _, _process) = witness(&key, &key_file, &state).await;
    let output = tokio::process::Command::new(ACCORDCTL)
        .args([
            "--server",
            &format!("http://{}", other.server().grpc_addr()),
            "cosign",
            "--witness",
            &url_again,
            "--key",
            &key,
        ])
        .output()
        .await
        .expect("accordctl runs");
    assert_eq!(output.status.code(), Some(1), "{}", said(&output));
    assert!(
        said(&output).contains("REFUSED by the witness (422)"),
        "{}",
        said(&output)
    );
}

#[tokio::test]
async fn the_server_submits_its_checkpoints_to_its_witnesses_and_serves_them_cosigned() {
    let data = tempfile::tempdir().expect("a data directory");
    let made = accordctl(
        None,
        &[
            "new-signing-key",
            &data.path().join("signing-key").to_string_lossy(),
        ],
    )
    .await;
    assert!(made.status.success(), "{}", said(&made));
    let key = public_key_of(data.path());
    let files = tempfile::tempdir().expect("a directory");
    let witness_key_file = files.path().join("witness-key");
    let made = accordctl(
        None,
        &["new-signing-key", &witness_key_file.to_string_lossy()],
    )
    .await;
    assert!(made.status.success(), "{}", said(&made));
    let (url, witness_key, _process) =
        witness(&key, &witness_key_file, &files.path().join("state.json")).await;
    let witness_key_hex: String = witness_key
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let server = TestServer::start_in(data, |config| {
        config.log_origin = Some(ORIGIN.to_owned());
        config.witnesses = vec![format!("witness.test={witness_key_hex}@{url}")];
    })
    .await;
    append_deliveries(&server, "kz-locomotives", 10).await;
    let head = server.head().await;
    // The server submits within a second of the head moving.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    let note = loop {
        let note = transparency(&server)
            .get_checkpoint(v1::GetCheckpointRequest {})
            .await
            .expect("checkpoint")
            .into_inner()
            .note;
        let (_, size, _) = rfc9162::open_checkpoint(&note, ORIGIN, &public_key(&server))
            .expect("the log signed it");
        if size == head && rfc9162::open_cosignature(&note, "witness.test", &witness_key).is_ok() {
            break note;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no cosigned checkpoint of size {head}: {note}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        note.matches('\u{2014}').count(),
        2,
        "the log's signature and one cosignature"
    );
    let metrics = scrape_metrics(server.server().metrics_addr()).await;
    assert!(
        metrics.contains("accord_witness_cosignatures 1"),
        "{metrics}"
    );
    assert!(metrics.contains("accord_witness_quorum 1"), "{metrics}");
    // A bad witness configuration stops the start.
    let dir = tempfile::tempdir().expect("dir");
    let mut config = accord_server::Config::ephemeral(dir.path());
    config.witnesses = vec!["no-key@http://127.0.0.1:1".into()];
    let error = match accord_server::start(config).await {
        Ok(_) => panic!("a malformed --witness must stop the start"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("--witness"), "{error}");
}

#[tokio::test]
async fn the_consoles_agreement_page_offers_a_proof_bundle_accordctl_verifies() {
    let server = start().await;
    load_unga80(&server).await;
    let console = server.server().console_addr().expect("the console");
    let (status, page) = http_get_body(console, "/fragment/agreements/uz-boeing-787").await;
    assert_eq!(status, 200);
    let page = String::from_utf8(page).expect("text");
    let head = server.head().await;
    assert!(
        page.contains(&format!("checkpoint of {head} entries")),
        "{page}"
    );
    assert!(
        page.contains("/agreements/uz-boeing-787/proof.json"),
        "{page}"
    );
    let (status, bundle) = http_get_body(console, "/agreements/uz-boeing-787/proof.json").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bundle));
    let files = tempfile::tempdir().expect("a directory");
    let path = files.path().join("bundle.json");
    std::fs::write(&path, &bundle).expect("writes");
    let key = server.public_key();
    let output = accordctl(
        None,
        &["check-proof", &path.to_string_lossy(), "--key", &key],
    )
    .await;
    assert!(output.status.success(), "{}", said(&output));
    assert!(
        said(&output).contains("proven: uz-boeing-787 versions 1 to"),
        "{}",
        said(&output)
    );
    // An agreement the log does not have: not found; a malformed id: refused.
    let (status, _) = http_get_body(console, "/agreements/nowhere/proof.json").await;
    assert_eq!(status, 404);
    let (status, _) = http_get_body(console, "/agreements/..%2Fetc/proof.json").await;
    assert_eq!(status, 400);
}
