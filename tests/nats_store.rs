//! What only the NATS backend has to prove: idempotency past the server's
//! duplicate window, and the refusal of servers older than 2.10.

use std::time::Duration;

use accord_domain::{
    AgreementKind, Announced, Event, EventMetadata, ExpectedVersion, Party, Timestamp,
};
use accord_store::{AppendItem, EventLog, NatsLog, NatsOptions, StoreError};
use accord_tests::nats::NatsNode;
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
        let mut options = NatsOptions::new(server.url(), dirs.path().join(node));
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
    let mut options = NatsOptions::new(nats.url(), dir.path().join("creator"));
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
    let error = NatsLog::open(NatsOptions::new(format!("nats://{addr}"), dir.path()))
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
    let log = NatsLog::open(NatsOptions::new(first.url(), replica.path()))
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
    let log = NatsLog::open(NatsOptions::new(second.url(), replica.path()))
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
    let report = accord_store::verify_log(&log, |_, _, _| {})
        .await
        .expect("verifies");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert!(
        log.find_command("old-1").await.expect("looks up").is_none(),
        "no command of the old replica is remembered"
    );
    log.close().await.expect("closes");
}
