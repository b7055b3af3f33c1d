//! What only the NATS backend has to prove: idempotency past the server's
//! duplicate window, and the refusal of servers older than 2.10.

use std::time::Duration;

use accord_domain::{
    AgreementKind, Announced, Event, EventMetadata, ExpectedVersion, Party, Timestamp,
};
use accord_store::test_support::test_keys;
use accord_store::{AppendItem, EventLog, NatsLog, NatsOptions, StoreError};
use accord_tests::nats::NatsNode;
use accord_tests::{serving, wait_for_service_health};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

fn announce(agreement_id: &str, command_id: &str, fingerprint: u8) -> AppendItem {
    AppendItem {
        agreement_id: agreement_id.into(),
        expected: ExpectedVersion::NoStream,
        command_id: command_id.into(),
        fingerprint: [fingerprint; 16],
        metadata: EventMetadata {
            command_id: command_id.into(),
            ..EventMetadata::default()
        },
        event: Event::Announced(Announced {
            title: "t".into(),
            kind: AgreementKind::Cooperation,
            buyer: Party::new("b", "KZ"),
            supplier: Party::new("s", "US"),
            sector: "rail".into(),
            product: "p".into(),
            quantity: None,
            value: None,
            announced_at: Timestamp::from_seconds(0),
            venue: String::new(),
            source: String::new(),
        }),
    }
}

#[tokio::test]
async fn a_retry_after_the_duplicate_window_is_still_a_duplicate() {
    let server = NatsNode::single().await;
    let dirs = tempfile::tempdir().expect("tempdir");
    let options = |node: &str| {
        let mut options = NatsOptions::new(server.url(), dirs.path().join(node), test_keys());
        options.duplicate_window = Duration::from_secs(1);
        options
    };
    let a = NatsLog::open(options("a")).await.expect("node A opens");
    let original = a
        .append(vec![announce("kz", "c1", 1)])
        .await
        .expect("appends");
    // Let the server forget the message id: only the replicas remember it.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let b = NatsLog::open(options("b")).await.expect("node B opens");
    for node in [&a, &b] {
        let retry = node
            .append(vec![announce("kz", "c1", 1)])
            .await
            .expect("a retry is answered");
        assert!(retry[0].duplicate);
        assert_eq!(retry[0].position, original[0].position);
        assert_eq!(retry[0].recorded_at, original[0].recorded_at);
        let error = node
            .append(vec![announce("other", "c1", 2)])
            .await
            .expect_err("the id is taken");
        assert!(
            matches!(error, StoreError::CommandIdConflict { .. }),
            "{error}"
        );
    }
    assert_eq!((a.head(), b.head()), (1, 1));
    a.close().await.expect("closes");
    b.close().await.expect("closes");
}

#[tokio::test]
async fn through_the_server_execute_is_one_batch_and_a_late_retry_is_a_duplicate() {
    use accord_proto::v1::{self, command::Command};
    use accord_tests::{TestServer, announce_wabtec, command, sign};

    let nats = NatsNode::single().await;
    // An operator created the stream with a short duplicate window; the
    // servers keep the stream's own settings.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut options = NatsOptions::new(nats.url(), dir.path().join("creator"), test_keys());
    options.duplicate_window = Duration::from_secs(1);
    NatsLog::open(options)
        .await
        .expect("stream created")
        .close()
        .await
        .expect("closes");
    let node = || {
        let url = nats.url().to_owned();
        TestServer::start_with(move |config| {
            config.store = url;
            config.nats_replicas = 1;
        })
    };
    let a = node().await;
    let executed = a
        .agreements()
        .execute(v1::ExecuteRequest {
            commands: vec![
                command(Command::Announce(announce_wabtec("kz-batch"))),
                command(Command::Sign(sign("kz-batch"))),
            ],
        })
        .await
        .expect("executed as one atomic batch")
        .into_inner()
        .results;
    assert_eq!(
        executed
            .iter()
            .map(|result| (result.version, result.position))
            .collect::<Vec<_>>(),
        vec![(1, 1), (2, 2)]
    );
    // Past the server's duplicate window, through the node that wrote it and
    // through a node started afterwards: still the same append.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let b = node().await;
    for server in [&a, &b] {
        let retry = server
            .agreements()
            .sign(sign("kz-batch"))
            .await
            .expect("a late retry is answered")
            .into_inner();
        assert!(retry.duplicate);
        assert_eq!((retry.version, retry.position), (2, 2));
        let mut reused = announce_wabtec("other");
        reused.meta = accord_tests::meta("kz-batch/sign");
        let error = server
            .agreements()
            .announce(reused)
            .await
            .expect_err("the id is taken");
        assert_eq!(error.code(), tonic::Code::AlreadyExists, "{error:?}");
        assert_eq!(server.head().await, 2);
    }
    a.stop().await;
    b.stop().await;
}

/// A TCP server that greets like nats-server 2.9 and answers pings.
async fn pretend_nats_2_9() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binds");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let info = r#"INFO {"server_id":"OLD","server_name":"old","version":"2.9.25","proto":1,"go":"go1.20","host":"127.0.0.1","port":4222,"headers":true,"max_payload":1048576,"jetstream":true}"#;
                if write
                    .write_all(format!("{info}\r\n").as_bytes())
                    .await
                    .is_err()
                {
                    return;
                }
                let mut lines = BufReader::new(read).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line.starts_with("PING") && write.write_all(b"PONG\r\n").await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_server_older_than_2_10_is_refused_with_the_reason() {
    let addr = pretend_nats_2_9().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let error = NatsLog::open(NatsOptions::new(
        format!("nats://{addr}"),
        dir.path(),
        test_keys(),
    ))
    .await
    .err()
    .expect("refused");
    let message = error.to_string();
    assert!(
        message.contains("2.9.25") && message.contains("2.10"),
        "{message}"
    );

    let mut config = accord_server::Config::ephemeral(dir.path().join("server"));
    config.store = format!("nats://{addr}");
    let error = accord_server::start(config)
        .await
        .err()
        .expect("the server refuses to start");
    assert!(error.to_string().contains("needs 2.10 or newer"), "{error}");
}

/// A replica that is not a prefix of the stream (here: the node's data
/// directory pointed at a fresh stream, shorter than the replica; the same
/// holds after a power cut kept a replica the stream never had) is derived
/// again from the stream at open, never served as it was.
#[tokio::test]
async fn a_replica_that_is_not_a_prefix_of_the_stream_is_derived_again() {
    let replica = tempfile::tempdir().expect("tempdir");
    let first = NatsNode::single().await;
    let log = NatsLog::open(NatsOptions::new(first.url(), replica.path(), test_keys()))
        .await
        .expect("opens");
    for index in 0..5 {
        log.append(vec![announce(
            &format!("old-{index}"),
            &format!("old-{index}"),
            1,
        )])
        .await
        .expect("appends");
    }
    log.close().await.expect("closes");
    drop(log);

    let second = NatsNode::single().await;
    let log = NatsLog::open(NatsOptions::new(second.url(), replica.path(), test_keys()))
        .await
        .expect("opens on another stream");
    assert_eq!(log.head(), 0, "the replica follows the new, empty stream");
    log.append(vec![announce("new", "new", 1)])
        .await
        .expect("appends");
    let events = log.read_log(1, 100).await.expect("reads");
    let ids: Vec<&str> = events
        .iter()
        .map(|event| event.agreement_id.as_str())
        .collect();
    assert_eq!(ids, vec!["new"]);
    let report = accord_store::verify_log(&log, &test_keys(), |_, _, _| {})
        .await
        .expect("verifies");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(
        log.find_command("old-1").await.expect("looks up").is_none(),
        "no command of the old replica is remembered"
    );
    log.close().await.expect("closes");
}

/// A delivery of one unit to "kz" with a 1 KB reference.
fn big_delivery(command_id: &str) -> accord_proto::v1::RecordDeliveryRequest {
    let mut request = accord_tests::deliver("kz", command_id, 1);
    request.reference = "x".repeat(1_000);
    request
}

/// A server on a one-node NATS whose file store holds 256 KiB, with "kz"
/// announced and signed.
async fn server_on_a_small_store() -> (NatsNode, accord_tests::TestServer) {
    use accord_tests::{TestServer, announce_wabtec, sign};

    let nats = NatsNode::single_with_file_store_limit(256 * 1024).await;
    let url = nats.url().to_owned();
    let server = TestServer::start_with(move |config| {
        config.store = url;
        config.nats_replicas = 1;
    })
    .await;
    let mut announce = announce_wabtec("kz");
    announce.quantity = Some(100_000_000);
    server
        .agreements()
        .announce(announce)
        .await
        .expect("announced");
    server.agreements().sign(sign("kz")).await.expect("signed");
    (nats, server)
}

/// The commands of the `round`th batch of 20 deliveries.
fn delivery_batch(round: usize) -> Vec<accord_proto::v1::Command> {
    use accord_proto::v1::command::Command;
    (0..20)
        .map(|index| {
            accord_tests::command(Command::RecordDelivery(big_delivery(&format!(
                "b{round}-{index}"
            ))))
        })
        .collect()
}

#[tokio::test]
async fn a_full_jetstream_store_refuses_an_append_with_resource_exhausted() {
    use accord_tests::{assert_gap_free, verify_clean};

    let (_nats, server) = server_on_a_small_store().await;
    let mut acknowledged = 2u64;
    let refusal = loop {
        match server
            .agreements()
            .record_delivery(big_delivery(&format!("d{acknowledged}")))
            .await
        {
            Ok(_) => acknowledged += 1,
            Err(status) => break status,
        }
        assert!(acknowledged < 10_000, "NATS never ran out of room");
    };
    assert_eq!(
        refusal.code(),
        tonic::Code::ResourceExhausted,
        "a full store: {refusal:?}"
    );
    assert!(
        refusal.message().contains("NATS refused the append"),
        "{}",
        refusal.message()
    );
    // Nothing of the refused append is in the log; everything acknowledged is.
    let events = server.read_all().await;
    assert_gap_free(&events, "after the refusal");
    assert_eq!(events.len() as u64, acknowledged);
    assert_eq!(verify_clean(server.channel()).await, acknowledged);
    server.stop().await;
}

/// nats-server 2.15 stores a prefix of an atomic batch and never answers
/// when its file store fills up mid-batch (and stores the rest when it
/// restarts). Accord says exactly which events are stored, and a retry of
/// the same commands, once there is room, completes the batch without
/// storing any event twice.
#[tokio::test]
async fn a_batch_cut_short_by_a_full_store_is_reported_and_a_retry_completes_it() {
    use accord_proto::v1;
    use accord_tests::{assert_gap_free, verify_clean};

    let (mut nats, server) = server_on_a_small_store().await;
    let mut acknowledged = 2u64;
    let mut round = 0;
    let refusal = loop {
        match server
            .agreements()
            .execute(v1::ExecuteRequest {
                commands: delivery_batch(round),
            })
            .await
        {
            Ok(response) => acknowledged += response.into_inner().results.len() as u64,
            Err(status) => break status,
        }
        round += 1;
        assert!(round < 1_000, "NATS never ran out of room");
    };
    let events = server.read_all().await;
    assert_gap_free(&events, "after the refusal");
    let stored = events.len() as u64 - acknowledged;
    println!(
        "refused after {acknowledged} acknowledged events, {stored} of the batch stored: {}",
        refusal.message()
    );
    if stored == 0 {
        assert!(
            matches!(
                refusal.code(),
                tonic::Code::ResourceExhausted | tonic::Code::Unavailable
            ),
            "{refusal:?}"
        );
        assert!(
            refusal.message().contains("NATS refused the append")
                || refusal.message().contains("the outcome is unknown"),
            "{}",
            refusal.message()
        );
    } else {
        assert_eq!(refusal.code(), tonic::Code::Unavailable, "{refusal:?}");
        let expected = format!(
            "has stored only {stored} of its 20 events so far (positions {} to {})",
            acknowledged + 1,
            events.len()
        );
        assert!(
            refusal.message().contains(&expected),
            "expected {expected:?} in {:?}",
            refusal.message()
        );
    }
    assert_eq!(verify_clean(server.channel()).await, events.len() as u64);

    // With room again, the same commands complete the batch.
    nats.restart_with_file_store_limit(64 * 1024 * 1024).await;
    let mut attempts = 0;
    let results = loop {
        match server
            .agreements()
            .execute(v1::ExecuteRequest {
                commands: delivery_batch(round),
            })
            .await
        {
            Ok(response) => break response.into_inner().results,
            // The node reconnects to the restarted NATS: UNAVAILABLE until
            // then, which clients retry.
            Err(status) if status.code() == tonic::Code::Unavailable && attempts < 100 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(status) => panic!("the retry failed: {status:?}"),
        }
    };
    assert_eq!(results.len(), 20);
    let duplicates = results.iter().filter(|result| result.duplicate).count() as u64;
    assert!(duplicates >= stored, "{results:?}");
    let events = server.read_all().await;
    assert_gap_free(&events, "after the retry");
    assert_eq!(events.len() as u64, acknowledged + 20, "each event once");
    let by_command = accord_tests::events_by_command(&events);
    for (index, result) in results.iter().enumerate() {
        let command_id = format!("b{round}-{index}");
        assert_eq!(
            by_command
                .get(command_id.as_str())
                .map(|event| event.position),
            Some(result.position),
            "{command_id}"
        );
    }
    assert_eq!(verify_clean(server.channel()).await, acknowledged + 20);
    server.stop().await;
}

/// Polls health until it is `wanted` (the server checks its store every second).
async fn wait_for_health(server: &accord_tests::TestServer, wanted: bool) {
    wait_for_service_health(server, "", wanted).await;
}

#[tokio::test]
async fn health_is_not_serving_while_nats_is_away_and_serving_once_it_is_back() {
    use accord_tests::{TestServer, announce_wabtec, scrape_metrics};

    let mut nats = NatsNode::single().await;
    let url = nats.url().to_owned();
    let server = TestServer::start_with(move |config| {
        config.store = url;
        config.nats_replicas = 1;
    })
    .await;
    wait_for_health(&server, true).await;
    nats.kill().await;
    wait_for_health(&server, false).await;
    let metrics = scrape_metrics(server.server().metrics_addr()).await;
    assert!(metrics.contains("accord_store_degraded 1"), "{metrics}");
    nats.restart().await;
    wait_for_health(&server, true).await;
    server
        .agreements()
        .announce(announce_wabtec("after-the-outage"))
        .await
        .expect("serves again");
    let metrics = scrape_metrics(server.server().metrics_addr()).await;
    assert!(metrics.contains("accord_store_degraded 0"), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn an_existing_stream_that_would_lose_events_refuses_the_start_naming_the_setting() {
    use async_nats::jetstream::stream::{Config, StorageType};

    let nats = NatsNode::single().await;
    let client = async_nats::connect(nats.url()).await.expect("connects");
    let jetstream = async_nats::jetstream::new(client);
    let cases: Vec<(&str, Config, &str)> = vec![
        (
            "AGED",
            Config {
                max_age: Duration::from_secs(86_400),
                deny_delete: true,
                deny_purge: true,
                ..Config::default()
            },
            "max_age is",
        ),
        // A stream made with a plain client's defaults lets events be deleted.
        ("PLAIN", Config::default(), "deny_delete is false"),
        (
            "IN_MEMORY",
            Config {
                storage: StorageType::Memory,
                deny_delete: true,
                deny_purge: true,
                ..Config::default()
            },
            "storage is Memory",
        ),
    ];
    for (name, mut config, expected) in cases {
        config.name = name.into();
        // Streams cannot share subjects: one at a time.
        config.subjects = vec!["accord.agreement.>".into()];
        jetstream
            .create_stream(config)
            .await
            .expect("stream created");
        let data_dir = tempfile::tempdir().expect("data dir");
        let mut accord = accord_server::Config::ephemeral(data_dir.path());
        accord.store = nats.url().to_owned();
        accord.nats_replicas = 1;
        accord.nats_stream = name.into();
        let error = match accord_server::start(accord).await {
            Ok(_) => panic!("stream {name} must be refused"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains(expected), "{name}: {error}");
        assert!(error.contains(&format!("stream {name}")), "{error}");
        jetstream.delete_stream(name).await.expect("stream deleted");
    }
}

#[tokio::test]
async fn a_node_reaches_nats_over_tls_with_its_credentials_and_not_without() {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

    let pki = tempfile::tempdir().expect("pki");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
        .expect("params")
        .signed_by(&key, &ca)
        .expect("server certificate");
    let write = |name: &str, content: String| {
        let path = pki.path().join(name);
        std::fs::write(&path, content).expect("written");
        path
    };
    let ca_file = write("ca.pem", ca.pem());
    let cert_file = write("nats.pem", cert.pem());
    let key_file = write("nats.key", key.serialize_pem());
    let nats = NatsNode::single_with(&format!(
        "authorization {{\n  user: accord\n  password: s3cret-pw\n}}\ntls {{\n  cert_file: {cert_file:?}\n  key_file: {key_file:?}\n}}\n"
    ))
    .await;
    let address = nats.url().trim_start_matches("nats://").to_owned();
    let start = |store: String, ca: Option<std::path::PathBuf>| async move {
        let data_dir = tempfile::tempdir().expect("data dir");
        let mut config = accord_server::Config::ephemeral(data_dir.path());
        config.store = store;
        config.nats_replicas = 1;
        config.nats_tls_ca = ca;
        let started = accord_server::start(config).await;
        (data_dir, started)
    };

    // With the authority and the password: served.
    let (_dir, started) = start(
        format!("tls://accord:s3cret-pw@{address}"),
        Some(ca_file.clone()),
    )
    .await;
    let server = started.expect("connects over TLS with its password");
    let channel = accord_tests::connect(server.grpc_addr()).await;
    accord_proto::v1::agreement_service_client::AgreementServiceClient::new(channel)
        .announce(accord_tests::announce_wabtec("over-tls"))
        .await
        .expect("appends through TLS");
    server.shutdown().await.expect("stops");

    // A wrong password, or no way to trust the server: refused, and the
    // password never shows in the message.
    for (store, ca, what) in [
        (
            format!("tls://accord:wrong-pw@{address}"),
            Some(ca_file.clone()),
            "a wrong password",
        ),
        (
            format!("tls://accord:s3cret-pw@{address}"),
            None,
            "no trusted authority",
        ),
    ] {
        let (_dir, started) = start(store, ca).await;
        let error = match started {
            Ok(_) => panic!("{what} must be refused"),
            Err(error) => error.to_string(),
        };
        assert!(error.contains("cannot connect to NATS"), "{what}: {error}");
        assert!(!error.contains("pw@"), "{what}: a password in {error}");
    }
}

#[tokio::test]
async fn a_node_authenticates_to_nats_with_an_nkey_seed() {
    let user = nkeys::KeyPair::new_user();
    let nats = NatsNode::single_with(&format!(
        "authorization {{\n  users: [ {{ nkey: {} }} ]\n}}\n",
        user.public_key()
    ))
    .await;
    let keys = tempfile::tempdir().expect("dir");
    let seed_file = keys.path().join("accord.nk");
    std::fs::write(&seed_file, user.seed().expect("seed")).expect("written");
    let start = |nkey: Option<std::path::PathBuf>| {
        let url = nats.url().to_owned();
        async move {
            let data_dir = tempfile::tempdir().expect("data dir");
            let mut config = accord_server::Config::ephemeral(data_dir.path());
            config.store = url;
            config.nats_replicas = 1;
            config.nats_nkey = nkey;
            (data_dir, accord_server::start(config).await)
        }
    };
    let (_dir, started) = start(Some(seed_file)).await;
    let server = started.expect("authenticates with the seed");
    server.shutdown().await.expect("stops");
    let (_dir, started) = start(None).await;
    let error = started.err().expect("refused without it").to_string();
    assert!(error.contains("authorization violation"), "{error}");
}

#[tokio::test]
async fn a_foreign_message_on_the_log_is_quarantined_and_alarmed_and_the_rest_goes_on() {
    use accord_proto::v1;
    use accord_tests::{TestServer, announce_boeing, announce_wabtec, scrape_metrics, sign};

    let nats = NatsNode::single().await;
    let url = nats.url().to_owned();
    let start = move || {
        let url = url.clone();
        TestServer::start_with(move |config| {
            config.store = url;
            config.nats_replicas = 1;
        })
    };
    let mut server = start().await;
    server
        .agreements()
        .announce(announce_wabtec("kz"))
        .await
        .expect("announced");
    server.agreements().sign(sign("kz")).await.expect("signed");
    // Any client with publish rights on Accord's subjects can do this: a
    // message that is no record, and a record out of order.
    let client = async_nats::connect(nats.url()).await.expect("connects");
    let jetstream = async_nats::jetstream::new(client);
    let garbage = jetstream
        .publish("accord.agreement.kz", "not an Accord record".into())
        .await
        .expect("published")
        .await
        .expect("stored by the stream");
    assert_eq!(garbage.sequence, 3);
    let first = server.read_all().await.remove(0);
    let out_of_order = jetstream
        .get_stream("ACCORD")
        .await
        .expect("stream")
        .get_raw_message(1)
        .await
        .expect("message 1")
        .payload;
    let replayed = jetstream
        .publish("accord.agreement.other", out_of_order)
        .await
        .expect("published")
        .await
        .expect("stored by the stream");
    assert_eq!(replayed.sequence, 4);
    assert_eq!(first.position, 1);

    // Alarmed: a health service of its own and a metric; the server serves.
    wait_for_service_health(&server, "accord.quarantine", false).await;
    assert!(serving(&server, "").await, "the server keeps serving");
    let metrics = scrape_metrics(server.server().metrics_addr()).await;
    assert!(
        metrics.contains("accord_quarantined_messages 2"),
        "{metrics}"
    );
    assert!(metrics.contains("accord_store_degraded 0"), "{metrics}");

    // Other agreements go on: appended after the quarantined positions,
    // projected, read.
    let appended = server
        .agreements()
        .announce(announce_boeing("uz"))
        .await
        .expect("another agreement is appended")
        .into_inner();
    assert_eq!(appended.position, 5);
    let uz = server
        .agreements()
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "uz".into(),
            min_position: 5,
            ..Default::default()
        })
        .await
        .expect("projected past the quarantined positions")
        .into_inner();
    assert_eq!(uz.position, 5);
    let positions = |events: Vec<v1::RecordedEvent>| -> Vec<u64> {
        events.iter().map(|event| event.position).collect()
    };
    assert_eq!(positions(server.read_all().await), vec![1, 2, 5]);
    // The agreement whose subject ends with the foreign message is refused,
    // naming it.
    let status = server
        .agreements()
        .record_delivery(accord_tests::deliver("kz", "after-the-poison", 1))
        .await
        .expect_err("kz's subject ends with a quarantined message");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
    assert!(
        status.message().contains("stream message 3") && status.message().contains("quarantined"),
        "{}",
        status.message()
    );
    // VerifyLog reports the quarantined positions, nothing else.
    let problems = verify_problems(&server).await;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].contains("positions 3..4: quarantined"),
        "{problems:?}"
    );

    // A node started after the poison follows the stream past it, and the
    // quarantine survives a restart.
    let second = start().await;
    assert_eq!(positions(second.read_all().await), vec![1, 2, 5]);
    wait_for_service_health(&second, "accord.quarantine", false).await;
    second.stop().await;
    server.restart().await;
    wait_for_service_health(&server, "accord.quarantine", false).await;
    assert_eq!(positions(server.read_all().await), vec![1, 2, 5]);
    server.stop().await;
}

async fn verify_problems(server: &accord_tests::TestServer) -> Vec<String> {
    use tokio_stream::StreamExt;
    let mut stream = server
        .admin()
        .verify_log(accord_proto::v1::VerifyLogRequest {})
        .await
        .expect("verify")
        .into_inner();
    let mut problems = Vec::new();
    while let Some(progress) = stream.next().await {
        let progress = progress.expect("progress");
        if progress.done {
            return progress.problems;
        }
        problems.extend(progress.problems);
    }
    problems
}

/// Stops or resumes a process with a signal.
fn signal(pid: u32, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(pid).expect("pid");
    // SAFETY: a plain signal to a child process this test started.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "signal sent");
}

#[tokio::test]
async fn an_append_nats_never_answered_is_reported_as_unknown_and_a_retry_settles_it() {
    use accord_proto::v1::command::Command;
    use accord_tests::{TestServer, announce_boeing, announce_wabtec, command};

    let nats = NatsNode::single().await;
    let url = nats.url().to_owned();
    let server = TestServer::start_with(move |config| {
        config.store = url;
        config.nats_replicas = 1;
    })
    .await;
    let pid = nats.pid().expect("nats-server runs");
    let batch = accord_proto::v1::ExecuteRequest {
        commands: vec![
            command(Command::Announce(announce_boeing("uz-boeing-787"))),
            command(Command::Announce(announce_wabtec("kz-locomotives"))),
        ],
    };
    let mut single = announce_boeing("uz-787-second");
    single.meta = accord_tests::meta("second-order");

    // NATS stops answering (its process is frozen, the connection stays up):
    // the messages are on their way, and may be stored once it resumes.
    signal(pid, libc::SIGSTOP);
    let mut client = server.agreements();
    let batch_status = client
        .execute(batch.clone())
        .await
        .expect_err("no answer from NATS");
    let single_status = client
        .announce(single.clone())
        .await
        .expect_err("no answer from NATS");
    signal(pid, libc::SIGCONT);
    for (what, status) in [("batch", &batch_status), ("single", &single_status)] {
        assert_eq!(
            status.code(),
            tonic::Code::Unavailable,
            "{what}: {status:?}"
        );
        assert!(
            status.message().contains("outcome is unknown")
                && status.message().contains("Retry the same"),
            "{what}: never \"nothing appended\": {}",
            status.message()
        );
    }

    // The retries settle it: each command is in the log exactly once.
    client.execute(batch).await.expect("the batch retried");
    client.announce(single).await.expect("the append retried");
    let events = server.read_all().await;
    accord_tests::assert_gap_free(&events, "after the retries");
    let command_ids: Vec<&str> = events
        .iter()
        .map(|event| {
            event
                .metadata
                .as_ref()
                .expect("metadata")
                .command_id
                .as_str()
        })
        .collect();
    for command_id in [
        "uz-boeing-787/announce",
        "kz-locomotives/announce",
        "second-order",
    ] {
        assert_eq!(
            command_ids.iter().filter(|id| **id == command_id).count(),
            1,
            "{command_id} once: {command_ids:?}"
        );
    }
    assert_eq!(command_ids.len(), 3, "{command_ids:?}");
    server.stop().await;
}
