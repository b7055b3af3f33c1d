//! What a reader's streams can make the server hold, in bytes: streams that
//! never read, opened at the start of a log of the largest events, and a
//! consumer-group member that never reads. Each stream holds at most one
//! read of the log (1 MiB) and its channel (1 MiB); a group at most 8 MiB
//! of unsettled events and a member 16 MiB of unread ones, whatever the
//! number of events.

use std::time::Duration;

use accord_proto::v1;
use accord_proto::v1::agreement_service_client::AgreementServiceClient;
use accord_tests::child::ChildServer;
use accord_tests::*;
use tokio_stream::StreamExt;

const SERVER: &str = env!("CARGO_BIN_EXE_accord-server-under-test");
const MIB: u64 = 1024 * 1024;

/// Agreements, and localizations of about 60 KB (under the 64 KiB event
/// limit) recorded for each: 1,500 events, 90 MB.
const AGREEMENTS: usize = 15;
const LOCALIZATIONS: usize = 100;

async fn fill_with_large_events(addr: std::net::SocketAddr, count: usize) -> u64 {
    let mut agreements = AgreementServiceClient::new(connect(addr).await);
    let ids: Vec<String> = (0..count)
        .map(|index| format!("kz-large-{index}"))
        .collect();
    for id in &ids {
        agreements
            .announce(announce_wabtec(id))
            .await
            .expect("announced");
        agreements.sign(sign(id)).await.expect("signed");
    }
    // The agreements' localizations interleaved in the log, as concurrent
    // agreements' events are.
    let mut head = 0;
    for index in 0..LOCALIZATIONS {
        for id in &ids {
            let mut request = localize(id, &format!("{id}/large-{index}"));
            request.technology_transfer = (0..30)
                .map(|entry| format!("{entry}-{}", "t".repeat(1_990)))
                .collect();
            head = agreements
                .record_localization(request)
                .await
                .expect("localized")
                .into_inner()
                .position;
        }
    }
    head
}

/// A `ReadLog` on a connection of its own (no shared flow-control window
/// holds the others back), after its first event, which is position 1.
async fn read_log_started(
    addr: std::net::SocketAddr,
    request: v1::ReadLogRequest,
) -> tonic::Streaming<v1::RecordedEvent> {
    let mut reading = v1::event_log_client::EventLogClient::new(connect(addr).await)
        .read_log(request)
        .await
        .expect("reads")
        .into_inner();
    assert_eq!(
        reading.next().await.expect("one").expect("event").position,
        1
    );
    reading
}

/// Samples the server's resident memory until it has not grown for a
/// second (the streams have filled what they may hold), up to a minute.
async fn settled_rss(server: &ChildServer) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut last = server.rss_bytes();
    let mut steady = 0;
    while steady < 5 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = server.rss_bytes();
        if now > last + MIB {
            steady = 0;
        } else {
            steady += 1;
        }
        last = last.max(now);
    }
    last
}

#[tokio::test]
async fn streams_that_never_read_hold_little_whatever_the_size_of_the_log() {
    let _heavy = heavy().await;
    const READERS: usize = 24;
    let data_dir = tempfile::tempdir().expect("data dir");
    let server =
        ChildServer::start_with_args(std::path::Path::new(SERVER), data_dir.path(), &[]).await;
    let addr = server.grpc_addr();
    let head = fill_with_large_events(addr, AGREEMENTS).await;
    let mut groups = v1::consumer_groups_client::ConsumerGroupsClient::new(connect(addr).await);
    groups
        .create_consumer_group(v1::CreateConsumerGroupRequest {
            name: "deaf".into(),
            settings: Some(v1::ConsumerGroupSettings {
                start: Some(v1::consumer_group_settings::Start::FromStart(
                    v1::subscribe_request::FromStart {},
                )),
                max_in_flight: 10_000,
                ..Default::default()
            }),
        })
        .await
        .expect("created");
    let rss_before = server.rss_bytes();
    // Each stream on a connection of its own (no shared flow-control
    // window holds the others back), none of them read after its first
    // message.
    let (mut reads, mut lives) = (Vec::new(), Vec::new());
    for _ in 0..READERS {
        let reading = read_log_started(
            addr,
            v1::ReadLogRequest {
                from_position: 1,
                ..Default::default()
            },
        )
        .await;
        reads.push(reading);
        let mut live = v1::event_log_client::EventLogClient::new(connect(addr).await)
            .subscribe(v1::SubscribeRequest {
                start: Some(v1::subscribe_request::Start::FromStart(
                    v1::subscribe_request::FromStart {},
                )),
                ..Default::default()
            })
            .await
            .expect("subscribes")
            .into_inner();
        assert!(live.next().await.expect("one").is_ok());
        lives.push(live);
    }
    let (requests, outgoing) = tokio::sync::mpsc::channel(4);
    requests
        .send(v1::ConsumeRequest {
            kind: Some(v1::consume_request::Kind::Join(v1::JoinGroup {
                group: "deaf".into(),
                member_name: "deaf".into(),
            })),
        })
        .await
        .expect("queued");
    let mut member = v1::consumer_groups_client::ConsumerGroupsClient::new(connect(addr).await)
        .consume(tokio_stream::wrappers::ReceiverStream::new(outgoing))
        .await
        .expect("joins")
        .into_inner();
    assert!(member.next().await.expect("joined").is_ok());
    let grown = settled_rss(&server).await.saturating_sub(rss_before);
    println!(
        "{} streams that never read, from the start of {head} events of ~60 KB, and a deaf group member: the server grew {} MiB",
        2 * READERS,
        grown / MIB
    );
    assert!(
        grown < 256 * MIB,
        "streams that never read grew the server by {} MiB",
        grown / MIB
    );
    // The server still answers, and the group held back: it read no more
    // than its byte budget ahead.
    let info = groups
        .get_consumer_group(v1::GetConsumerGroupRequest {
            name: "deaf".into(),
        })
        .await
        .expect("answers")
        .into_inner();
    assert!(
        info.in_flight < 1_500 / 4,
        "the group read ahead past its byte budget: {info:?}"
    );
    drop((reads, lives, member, requests));
    assert!(server.terminate().await.success());
}

/// A stream whose channel is full in bytes, and whose client then goes
/// away, ends and frees its place: its producer does not wait for room
/// that will never come.
#[tokio::test]
async fn a_stream_full_in_bytes_whose_client_leaves_frees_its_place() {
    const STREAMS: usize = 4;
    let server = TestServer::start().await;
    let addr = server.server().grpc_addr();
    // About 6 MB: more than a stream's read and channel hold.
    fill_with_large_events(addr, 1).await;
    let mut held = Vec::new();
    for _ in 0..STREAMS {
        let channel = connect(addr).await;
        let mut reading = v1::event_log_client::EventLogClient::new(channel.clone())
            .read_log(v1::ReadLogRequest {
                from_position: 1,
                ..Default::default()
            })
            .await
            .expect("reads")
            .into_inner();
        assert!(reading.next().await.expect("one").is_ok());
        held.push((channel, reading));
    }
    let active = || async {
        scrape_metrics(server.server().metrics_addr())
            .await
            .lines()
            .find_map(|line| line.strip_prefix("accord_subscriptions_active "))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(active().await, STREAMS as f64);
    drop(held);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while active().await > 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "streams whose clients left still hold their places"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

/// Reads of agreements' streams hold no more than reads of the log: a
/// history read and a read filtered by agreements hold one read (1 MiB)
/// and their channel (1 MiB) whatever the size of the events, not a batch
/// of 512 events (30 MB of these) or a whole stream.
#[tokio::test]
async fn agreement_reads_that_never_read_hold_little_whatever_the_size_of_the_events() {
    let _heavy = heavy().await;
    const READERS: usize = 24;
    const FILLED: usize = 6;
    let data_dir = tempfile::tempdir().expect("data dir");
    let server =
        ChildServer::start_with_args(std::path::Path::new(SERVER), data_dir.path(), &[]).await;
    let addr = server.grpc_addr();
    let head = fill_with_large_events(addr, FILLED).await;
    let agreement_ids: Vec<String> = (0..FILLED)
        .map(|index| format!("kz-large-{index}"))
        .collect();
    let rss_before = server.rss_bytes();
    let (mut histories, mut filtered) = (Vec::new(), Vec::new());
    for reader in 0..READERS {
        let mut history = v1::event_log_client::EventLogClient::new(connect(addr).await)
            .read_agreement_history(v1::ReadAgreementHistoryRequest {
                agreement_id: agreement_ids[reader % FILLED].clone(),
                from_version: 1,
            })
            .await
            .expect("reads a history")
            .into_inner();
        assert_eq!(
            history.next().await.expect("one").expect("event").version,
            1
        );
        histories.push(history);
        let reading = read_log_started(
            addr,
            v1::ReadLogRequest {
                from_position: 1,
                filter: Some(v1::SubscriptionFilter {
                    agreement_ids: agreement_ids.clone(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
        .await;
        filtered.push(reading);
    }
    let grown = settled_rss(&server).await.saturating_sub(rss_before);
    println!(
        "{} agreement reads that never read, over {head} events of ~60 KB: the server grew {} MiB",
        2 * READERS,
        grown / MIB
    );
    assert!(
        grown < 256 * MIB,
        "agreement reads that never read grew the server by {} MiB",
        grown / MIB
    );
    // Read to the end, each gives every event of its agreements in order.
    let mut history = histories.pop().expect("a history");
    let mut versions = vec![1];
    while let Some(event) = history.next().await {
        versions.push(event.expect("event").version);
    }
    let expected_versions: Vec<u64> = (1..=LOCALIZATIONS as u64 + 2).collect();
    assert_eq!(versions, expected_versions);
    let mut reading = filtered.pop().expect("a filtered read");
    let mut positions = vec![1];
    while let Some(event) = reading.next().await {
        positions.push(event.expect("event").position);
    }
    let expected_positions: Vec<u64> = (1..=head).collect();
    assert_eq!(positions, expected_positions);
    drop((histories, filtered));
    assert!(server.terminate().await.success());
    // A command on an agreement whose stream is several reads long, with
    // nothing cached after the restart, folds the whole stream first.
    let server =
        ChildServer::start_with_args(std::path::Path::new(SERVER), data_dir.path(), &[]).await;
    let recorded = AgreementServiceClient::new(connect(server.grpc_addr()).await)
        .record_localization(localize(&agreement_ids[0], "after-restart"))
        .await
        .expect("localized")
        .into_inner();
    assert_eq!(
        (recorded.version, recorded.position),
        (LOCALIZATIONS as u64 + 3, head + 1)
    );
    assert!(server.terminate().await.success());
}
