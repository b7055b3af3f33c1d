//! Consumer groups through the real server: members share a group's events,
//! each acknowledged once; what a member does not settle goes to the
//! others; parked events come back on replay; groups and their checkpoints
//! survive a restart; bad input gets the contract's codes.

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use accord_proto::v1::{
    self, consume_request, consume_response, consumer_group_settings::Start,
    consumer_groups_client::ConsumerGroupsClient,
};
use accord_tests::child::ChildServer;
use accord_tests::*;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use tonic::{Code, Streaming};

mod cluster;

const WAIT: Duration = Duration::from_secs(30);

/// A server on a single-node NATS JetStream: its groups live in the
/// cluster's bucket and go through the node that holds their lease.
async fn on_nats(nats: &accord_tests::nats::NatsNode) -> TestServer {
    let url = nats.url().to_owned();
    TestServer::start_with(move |config| {
        config.store = url;
        config.nats_replicas = 1;
    })
    .await
}

/// Runs test `$name` (an `async fn(TestServer)`) against a server on the
/// embedded store and against one on NATS.
macro_rules! on_both_backends {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn on_sled() {
                super::$name(accord_tests::TestServer::start().await).await;
            }

            #[tokio::test]
            async fn on_nats() {
                let nats = accord_tests::nats::NatsNode::single().await;
                super::$name(super::on_nats(&nats).await).await;
            }
        }
    };
}
mod hardening;

const SERVER: &str = env!("CARGO_BIN_EXE_accord-server-under-test");

fn groups(server: &TestServer) -> ConsumerGroupsClient<Channel> {
    ConsumerGroupsClient::new(server.channel())
}

fn settings(adjust: impl FnOnce(&mut v1::ConsumerGroupSettings)) -> v1::ConsumerGroupSettings {
    let mut settings = v1::ConsumerGroupSettings {
        start: Some(Start::FromStart(v1::subscribe_request::FromStart {})),
        ..Default::default()
    };
    adjust(&mut settings);
    settings
}

async fn create(
    server: &TestServer,
    name: &str,
    settings: v1::ConsumerGroupSettings,
) -> v1::ConsumerGroupInfo {
    groups(server)
        .create_consumer_group(v1::CreateConsumerGroupRequest {
            name: name.into(),
            settings: Some(settings),
        })
        .await
        .expect("created")
        .into_inner()
}

async fn info(server: &TestServer, name: &str) -> v1::ConsumerGroupInfo {
    groups(server)
        .get_consumer_group(v1::GetConsumerGroupRequest { name: name.into() })
        .await
        .expect("group")
        .into_inner()
}

/// Polls the group until `done` holds.
async fn wait_for_group(
    server: &TestServer,
    name: &str,
    done: impl Fn(&v1::ConsumerGroupInfo) -> bool,
) -> v1::ConsumerGroupInfo {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let info = info(server, name).await;
        if done(&info) {
            return info;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "group never got there: {info:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A member's stream, on a connection of its own.
struct Member {
    requests: mpsc::Sender<v1::ConsumeRequest>,
    responses: Streaming<v1::ConsumeResponse>,
}

fn ack(positions: Vec<u64>) -> v1::ConsumeRequest {
    v1::ConsumeRequest {
        kind: Some(consume_request::Kind::Ack(v1::AckEvents { positions })),
    }
}

fn nack(positions: Vec<u64>, action: v1::NackAction) -> v1::ConsumeRequest {
    v1::ConsumeRequest {
        kind: Some(consume_request::Kind::Nack(v1::NackEvents {
            positions,
            action: action as i32,
            reason: "cannot process".into(),
        })),
    }
}

fn join_request(group: &str, member_name: &str) -> v1::ConsumeRequest {
    v1::ConsumeRequest {
        kind: Some(consume_request::Kind::Join(v1::JoinGroup {
            group: group.into(),
            member_name: member_name.into(),
        })),
    }
}

/// Opens a Consume stream that sends `first` first.
async fn open(addr: SocketAddr, first: v1::ConsumeRequest) -> Result<Member, tonic::Status> {
    let (requests, outgoing) = mpsc::channel(1_024);
    requests.send(first).await.expect("queued");
    let channel = connect(addr).await;
    let responses = ConsumerGroupsClient::new(channel)
        .consume(ReceiverStream::new(outgoing))
        .await?
        .into_inner();
    Ok(Member {
        requests,
        responses,
    })
}

impl Member {
    async fn join(addr: SocketAddr, group: &str, name: &str) -> Self {
        let mut member = open(addr, join_request(group, name)).await.expect("joins");
        match member.next().await {
            Some(consume_response::Kind::Joined(joined)) => {
                assert!(joined.member_id.starts_with(group), "{joined:?}");
            }
            other => panic!("expected joined, got {other:?}"),
        }
        member
    }

    /// The next message that is not a heartbeat.
    async fn next(&mut self) -> Option<consume_response::Kind> {
        loop {
            let message = tokio::time::timeout(WAIT, self.responses.next())
                .await
                .expect("a message arrives")?
                .expect("no error");
            match message.kind {
                Some(consume_response::Kind::Heartbeat(_)) => {}
                kind => return kind,
            }
        }
    }

    /// The next delivery: (position, agreement, version, delivery count).
    async fn delivery(&mut self) -> (u64, String, u64, u32) {
        match self.next().await {
            Some(consume_response::Kind::Delivery(delivery)) => {
                let event = delivery.event.expect("event");
                (
                    event.position,
                    event.agreement_id,
                    event.version,
                    delivery.delivery_count,
                )
            }
            other => panic!("expected a delivery, got {other:?}"),
        }
    }

    async fn send(&self, request: v1::ConsumeRequest) {
        self.requests.send(request).await.expect("stream open");
    }

    /// Whether anything but heartbeats arrives within `quiet`.
    async fn quiet_for(&mut self, quiet: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + quiet;
        loop {
            match tokio::time::timeout_at(deadline, self.responses.next()).await {
                Err(_) => return true,
                Ok(Some(Ok(v1::ConsumeResponse {
                    kind: Some(consume_response::Kind::Heartbeat(_)),
                }))) => {}
                Ok(_) => return false,
            }
        }
    }
}

on_both_backends!(three_members_share_ten_thousand_events_each_acknowledged_once);
async fn three_members_share_ten_thousand_events_each_acknowledged_once(server: TestServer) {
    let head = append_deliveries(&server, "kz", 10_000).await;
    create(&server, "billing", settings(|_| {})).await;
    let mut tasks = Vec::new();
    for index in 0..3 {
        let mut member = Member::join(
            server.server().grpc_addr(),
            "billing",
            &format!("worker-{index}"),
        )
        .await;
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            loop {
                let received =
                    tokio::time::timeout(Duration::from_secs(2), member.delivery()).await;
                let Ok((position, _, _, count)) = received else {
                    return acked;
                };
                assert_eq!(count, 1, "no event goes out twice here");
                member.send(ack(vec![position])).await;
                acked.push(position);
            }
        }));
    }
    let mut all = Vec::new();
    let mut per_member = Vec::new();
    for task in tasks {
        let acked = task.await.expect("member");
        per_member.push(acked.len());
        all.extend(acked);
    }
    let unique: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), all.len(), "an event was acknowledged twice");
    assert_eq!(unique, (1..=head).collect(), "the union is the log");
    assert!(per_member.iter().all(|count| *count > 0), "{per_member:?}");
    let info = wait_for_group(&server, "billing", |info| info.checkpoint == head).await;
    assert_eq!((info.lag, info.in_flight, info.parked), (0, 0, 0));
    assert_eq!(info.delivered_total, head);
    assert_eq!(info.redelivered_total, 0);
    // The group's figures are in /metrics (set every 100 ms).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let metrics = scrape_metrics(server.server().metrics_addr()).await;
        let has = |line: &str| metrics.lines().any(|l| l == line);
        if has(&format!(
            "accord_consumer_group_deliveries_total{{group=\"billing\"}} {head}"
        )) && has("accord_consumer_group_lag_events{group=\"billing\"} 0")
            && has("accord_consumer_group_in_flight{group=\"billing\"} 0")
            && has("accord_consumer_group_members{group=\"billing\"} 0")
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{metrics}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

on_both_backends!(what_a_member_does_not_settle_goes_to_the_others);
async fn what_a_member_does_not_settle_goes_to_the_others(server: TestServer) {
    let head = append_deliveries(&server, "kz", 198).await;
    assert_eq!(head, 200);
    create(
        &server,
        "slow",
        settings(|settings| {
            settings.max_in_flight = 100;
            settings.ack_timeout_ms = 3_000;
        }),
    )
    .await;
    // A member that stops reading with 100 events in flight: its stream ends.
    let mut gone = Member::join(server.server().grpc_addr(), "slow", "gone").await;
    let mut held = BTreeSet::new();
    for _ in 0..100 {
        held.insert(gone.delivery().await.0);
    }
    assert!(
        gone.quiet_for(Duration::from_millis(200)).await,
        "at most max_in_flight"
    );
    // One that stays connected and never answers.
    let mut silent = Member::join(server.server().grpc_addr(), "slow", "silent").await;
    let mut silent_held = BTreeSet::new();
    for _ in 0..100 {
        silent_held.insert(silent.delivery().await.0);
    }
    drop(gone);
    let mut others = Member::join(server.server().grpc_addr(), "slow", "others").await;
    let mut redelivered = HashMap::new();
    while redelivered.len() < 200 {
        let (position, _, _, count) = others.delivery().await;
        others.send(ack(vec![position])).await;
        redelivered.insert(position, count);
    }
    for position in held.iter().chain(&silent_held) {
        assert_eq!(redelivered.get(position), Some(&2), "position {position}");
    }
    let info = wait_for_group(&server, "slow", |info| info.checkpoint == head).await;
    assert_eq!(info.redelivered_total, 200);
    // The silent member's late acknowledgements are ignored.
    silent
        .send(ack(silent_held.iter().copied().collect()))
        .await;
    assert_eq!(info.parked, 0);
}

on_both_backends!(a_parked_event_comes_back_on_replay_and_after_max_deliveries);
async fn a_parked_event_comes_back_on_replay_and_after_max_deliveries(server: TestServer) {
    let head = append_deliveries(&server, "kz", 0).await;
    create(
        &server,
        "parking",
        settings(|settings| {
            settings.max_deliveries = 2;
            settings.ack_timeout_ms = 300;
        }),
    )
    .await;
    let mut member = Member::join(server.server().grpc_addr(), "parking", "one").await;
    let (first, ..) = member.delivery().await;
    member.send(nack(vec![first], v1::NackAction::Park)).await;
    let (second, _, _, count) = member.delivery().await;
    assert_eq!(count, 1);
    // Never answered: delivered twice, then parked.
    let (again, _, _, count) = member.delivery().await;
    assert_eq!((again, count), (second, 2));
    let info = wait_for_group(&server, "parking", |info| info.parked == 2).await;
    assert_eq!(info.checkpoint, head, "parked events count as settled");
    let replayed = groups(&server)
        .replay_parked(v1::ReplayParkedRequest {
            name: "parking".into(),
        })
        .await
        .expect("replayed")
        .into_inner()
        .replayed;
    assert_eq!(replayed, 2);
    let mut back = BTreeSet::new();
    for _ in 0..2 {
        let (position, _, _, count) = member.delivery().await;
        assert_eq!(count, 1);
        member.send(ack(vec![position])).await;
        back.insert(position);
    }
    assert_eq!(back, BTreeSet::from([first, second]));
    wait_for_group(&server, "parking", |info| {
        info.parked == 0 && info.in_flight == 0
    })
    .await;
}

on_both_backends!(skip_settles_and_retry_delivers_again);
async fn skip_settles_and_retry_delivers_again(server: TestServer) {
    let head = append_deliveries(&server, "kz", 0).await;
    create(&server, "answers", settings(|_| {})).await;
    let mut member = Member::join(server.server().grpc_addr(), "answers", "one").await;
    let (first, ..) = member.delivery().await;
    let (second, ..) = member.delivery().await;
    member.send(nack(vec![first], v1::NackAction::Skip)).await;
    member.send(nack(vec![second], v1::NackAction::Retry)).await;
    let (again, _, _, count) = member.delivery().await;
    assert_eq!((again, count), (second, 2));
    member.send(ack(vec![second])).await;
    let info = wait_for_group(&server, "answers", |info| info.checkpoint == head).await;
    assert_eq!((info.parked, info.in_flight), (0, 0));
}

on_both_backends!(pinned_agreements_go_out_in_order_to_one_member_at_a_time);
async fn pinned_agreements_go_out_in_order_to_one_member_at_a_time(server: TestServer) {
    append_deliveries(&server, "kz", 30).await;
    append_deliveries(&server, "uz", 30).await;
    let head = append_deliveries(&server, "tm", 30).await;
    create(
        &server,
        "pinned",
        settings(|settings| {
            settings.strategy = v1::ConsumerStrategy::PinnedByAgreement as i32;
            settings.max_in_flight = 2;
        }),
    )
    .await;
    let (log, outgoing) = mpsc::unbounded_channel();
    let mut tasks = Vec::new();
    for index in 0..3 {
        let mut member =
            Member::join(server.server().grpc_addr(), "pinned", &format!("m{index}")).await;
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            // The third member leaves half-way: its agreements move.
            let limit = if index == 2 { 10 } else { usize::MAX };
            for _ in 0..limit {
                let received =
                    tokio::time::timeout(Duration::from_secs(2), member.delivery()).await;
                let Ok((position, agreement, version, count)) = received else {
                    return;
                };
                log.send((index, agreement, version, count)).expect("log");
                tokio::time::sleep(Duration::from_millis(2)).await;
                log.send((index, String::new(), version, 0)).expect("log");
                member.send(ack(vec![position])).await;
            }
        }));
    }
    drop(log);
    for task in tasks {
        task.await.expect("member");
    }
    let mut outgoing = outgoing;
    let mut last_version: HashMap<String, u64> = HashMap::new();
    let mut holding: HashMap<usize, String> = HashMap::new();
    // (member, agreement, version, delivery count) when a member got an
    // event, (member, "", version, 0) when it acknowledged it.
    while let Ok((member, agreement, version, count)) = outgoing.try_recv() {
        if count > 0 {
            let previous = last_version.insert(agreement.clone(), version).unwrap_or(0);
            // A redelivery (at least once) repeats the version it had.
            let expected = if count > 1 {
                [previous, previous + 1]
            } else {
                [previous + 1; 2]
            };
            assert!(
                expected.contains(&version),
                "{agreement} version {version} after {previous}"
            );
            for (other, held) in &holding {
                assert!(
                    *other == member || *held != agreement,
                    "{agreement} held by two members"
                );
            }
            holding.insert(member, agreement);
        } else {
            holding.remove(&member);
        }
    }
    assert_eq!(last_version.get("kz"), Some(&32));
    assert_eq!(last_version.get("uz"), Some(&32));
    assert_eq!(last_version.get("tm"), Some(&32));
    wait_for_group(&server, "pinned", |info| info.checkpoint == head).await;
}

on_both_backends!(groups_and_their_checkpoints_survive_a_restart);
async fn groups_and_their_checkpoints_survive_a_restart(mut server: TestServer) {
    let head = append_deliveries(&server, "kz", 8).await;
    create(
        &server,
        "durable",
        settings(|settings| {
            settings.filter = Some(v1::SubscriptionFilter {
                event_types: vec!["agreement.delivery_recorded".into()],
                ..Default::default()
            });
        }),
    )
    .await;
    let mut member = Member::join(server.server().grpc_addr(), "durable", "one").await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let (position, ..) = member.delivery().await;
        member.send(ack(vec![position])).await;
        seen.push(position);
    }
    // Positions 1-2 (announce, sign) do not match; 3-7 are acknowledged.
    assert_eq!(seen, vec![3, 4, 5, 6, 7]);
    wait_for_group(&server, "durable", |info| info.checkpoint == 7).await;
    drop(member);
    server.restart().await;
    let info = info(&server, "durable").await;
    assert_eq!(info.checkpoint, 7);
    let filter = info
        .settings
        .and_then(|settings| settings.filter)
        .expect("filter");
    assert_eq!(
        filter.event_types,
        vec!["agreement.delivery_recorded".to_string()]
    );
    let mut member = Member::join(server.server().grpc_addr(), "durable", "one-again").await;
    let (next, ..) = member.delivery().await;
    assert_eq!(next, 8, "delivery resumes after the checkpoint");
    member.send(ack(vec![next])).await;
    let (last, ..) = member.delivery().await;
    assert_eq!((last, head), (9, 10));
}

on_both_backends!(a_filtered_group_behind_the_head_reads_from_the_index);
/// A group with a buyer-country filter that starts far behind the head
/// gets exactly the matching events, read at the positions the position
/// index lists (the rest of the log passed over, not read), then the new
/// matching events live; its checkpoint reaches the head.
async fn a_filtered_group_behind_the_head_reads_from_the_index(server: TestServer) {
    let mut client = server.agreements();
    let mut commands = Vec::new();
    let mut kazakh = Vec::new();
    for index in 0..200u64 {
        let id = format!("deal-{index}");
        let mut announce = announce_wabtec(&id);
        let country = if index.is_multiple_of(20) { "KZ" } else { "UZ" };
        announce.buyer.as_mut().expect("buyer").country = country.into();
        commands.push(command(v1::command::Command::Announce(announce)));
        commands.push(command(v1::command::Command::Sign(sign(&id))));
        if country == "KZ" {
            kazakh.push(2 * index + 1);
            kazakh.push(2 * index + 2);
        }
    }
    let head = client
        .execute(v1::ExecuteRequest { commands })
        .await
        .expect("executes")
        .into_inner()
        .results
        .last()
        .expect("results")
        .position;
    client
        .list_agreements(v1::ListAgreementsRequest {
            page_size: 1,
            min_position: head,
            ..Default::default()
        })
        .await
        .expect("the read models reach the head");
    const SKIPPED: &str = "accord_indexed_read_skipped_positions_total";
    let before = metric(server.server().metrics_addr(), SKIPPED).await;
    create(
        &server,
        "kazakh-deals",
        settings(|settings| {
            settings.filter = Some(v1::SubscriptionFilter {
                countries: vec!["KZ".into()],
                ..Default::default()
            });
        }),
    )
    .await;
    let mut member = Member::join(server.server().grpc_addr(), "kazakh-deals", "one").await;
    let mut seen = Vec::new();
    for _ in 0..kazakh.len() {
        let (position, ..) = member.delivery().await;
        member.send(ack(vec![position])).await;
        seen.push(position);
    }
    assert_eq!(seen, kazakh);
    let after = metric(server.server().metrics_addr(), SKIPPED).await;
    assert!(
        after - before >= (head - kazakh.len() as u64 - 1) as f64,
        "the other agreements' events are passed over through the index: {before} -> {after}"
    );
    let mut announce = announce_wabtec("deal-new");
    announce.buyer.as_mut().expect("buyer").country = "KZ".into();
    let new = client
        .announce(announce)
        .await
        .expect("announces")
        .into_inner()
        .position;
    let (position, ..) = member.delivery().await;
    assert_eq!(position, new);
    member.send(ack(vec![position])).await;
    wait_for_group(&server, "kazakh-deals", |info| info.checkpoint == new).await;
}

on_both_backends!(deleting_a_group_ends_its_members_streams);
async fn deleting_a_group_ends_its_members_streams(server: TestServer) {
    append_deliveries(&server, "kz", 0).await;
    create(&server, "short-lived", settings(|_| {})).await;
    let mut member = Member::join(server.server().grpc_addr(), "short-lived", "one").await;
    member.delivery().await;
    groups(&server)
        .delete_consumer_group(v1::DeleteConsumerGroupRequest {
            name: "short-lived".into(),
        })
        .await
        .expect("deleted");
    let ended = loop {
        match tokio::time::timeout(WAIT, member.responses.next())
            .await
            .expect("the stream ends")
        {
            Some(Ok(_)) => {}
            Some(Err(status)) => break status,
            None => panic!("the stream ended without a status"),
        }
    };
    assert_eq!(ended.code(), Code::NotFound);
    assert!(ended.message().contains("was deleted"), "{ended:?}");
    let listed = groups(&server)
        .list_consumer_groups(v1::ListConsumerGroupsRequest {})
        .await
        .expect("list")
        .into_inner();
    assert!(listed.groups.is_empty());
}

on_both_backends!(bad_input_gets_the_contract_codes);
async fn bad_input_gets_the_contract_codes(server: TestServer) {
    let head = append_deliveries(&server, "kz", 0).await;
    let mut client = groups(&server);
    let refuse = |name: &str, settings: v1::ConsumerGroupSettings| v1::CreateConsumerGroupRequest {
        name: name.into(),
        settings: Some(settings),
    };
    for (request, code, says) in [
        (
            refuse("Bad", settings(|_| {})),
            Code::InvalidArgument,
            "does not match",
        ),
        (
            refuse("", settings(|_| {})),
            Code::InvalidArgument,
            "does not match",
        ),
        (
            refuse(&"a".repeat(129), settings(|_| {})),
            Code::InvalidArgument,
            "does not match",
        ),
        (
            refuse("huge", settings(|s| s.max_in_flight = 1_000_000)),
            Code::InvalidArgument,
            "max_in_flight",
        ),
        (
            refuse("huge", settings(|s| s.ack_timeout_ms = u32::MAX)),
            Code::InvalidArgument,
            "ack_timeout_ms",
        ),
        (
            refuse("huge", settings(|s| s.max_deliveries = 1_001)),
            Code::InvalidArgument,
            "max_deliveries",
        ),
        (
            refuse(
                "ahead",
                settings(|s| s.start = Some(Start::AfterPosition(head + 1))),
            ),
            Code::InvalidArgument,
            "beyond the head",
        ),
        (
            refuse(
                "filter",
                settings(|s| {
                    s.filter = Some(v1::SubscriptionFilter {
                        event_types: vec!["Nope".into()],
                        ..Default::default()
                    })
                }),
            ),
            Code::InvalidArgument,
            "unknown event type",
        ),
        (
            refuse("strategy", settings(|s| s.strategy = 7)),
            Code::InvalidArgument,
            "strategy",
        ),
    ] {
        let status = client
            .create_consumer_group(request)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), code, "{status:?}");
        assert!(status.message().contains(says), "{status:?}");
    }
    // Zero means the defaults.
    let created = create(&server, "defaults", settings(|_| {})).await;
    let stored = created.settings.expect("settings");
    assert_eq!(
        (
            stored.max_in_flight,
            stored.ack_timeout_ms,
            stored.max_deliveries
        ),
        (100, 30_000, 10)
    );
    let again = client
        .create_consumer_group(refuse("defaults", settings(|_| {})))
        .await
        .expect_err("exists");
    assert_eq!(again.code(), Code::AlreadyExists);
    for status in [
        client
            .get_consumer_group(v1::GetConsumerGroupRequest {
                name: "nope".into(),
            })
            .await
            .expect_err("unknown"),
        client
            .delete_consumer_group(v1::DeleteConsumerGroupRequest {
                name: "nope".into(),
            })
            .await
            .expect_err("unknown"),
        client
            .replay_parked(v1::ReplayParkedRequest {
                name: "nope".into(),
            })
            .await
            .expect_err("unknown"),
        client
            .update_consumer_group(v1::UpdateConsumerGroupRequest {
                name: "nope".into(),
                settings: None,
            })
            .await
            .expect_err("unknown"),
    ] {
        assert_eq!(status.code(), Code::NotFound, "{status:?}");
    }
    // The first message must be join; joins of unknown groups are NOT_FOUND.
    let Err(status) = open(server.server().grpc_addr(), ack(vec![1])).await else {
        panic!("a stream that starts with an ack was accepted");
    };
    assert_eq!(status.code(), Code::InvalidArgument);
    let Err(status) = open(server.server().grpc_addr(), join_request("nope", "one")).await else {
        panic!("joined an unknown group");
    };
    assert_eq!(status.code(), Code::NotFound);
    // Acknowledgements of positions the member does not hold are ignored.
    let mut member = Member::join(server.server().grpc_addr(), "defaults", "one").await;
    member.send(ack(vec![head + 100, 0, u64::MAX])).await;
    let (position, _, _, count) = member.delivery().await;
    assert_eq!((position, count), (1, 1));
    // A second join on the same stream ends it.
    member.send(join_request("defaults", "twice")).await;
    let status = loop {
        match member.responses.next().await.expect("ends with a status") {
            Ok(_) => {}
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::InvalidArgument);
    // Update changes the settings, not the start.
    let updated = client
        .update_consumer_group(v1::UpdateConsumerGroupRequest {
            name: "defaults".into(),
            settings: Some(settings(|s| {
                s.max_in_flight = 5;
                s.start = Some(Start::FromEnd(v1::subscribe_request::FromEnd {}));
            })),
        })
        .await
        .expect("updated")
        .into_inner()
        .settings
        .expect("settings");
    assert_eq!(updated.max_in_flight, 5);
    assert_eq!(updated.start, Some(Start::AfterPosition(0)));
}

/// Acknowledges everything `member` gets until nothing came for 2 s.
async fn drain(member: &mut Member) -> BTreeSet<u64> {
    let mut acked = BTreeSet::new();
    while let Ok((position, ..)) =
        tokio::time::timeout(Duration::from_secs(2), member.delivery()).await
    {
        member.send(ack(vec![position])).await;
        acked.insert(position);
    }
    acked
}

#[tokio::test]
async fn a_server_killed_with_sigkill_loses_no_event_of_a_group() {
    let data_dir = tempfile::tempdir().expect("data dir");
    let server = ChildServer::start(Path::new(SERVER), data_dir.path()).await;
    let head = append_deliveries_at(server.grpc_addr(), "kz", 498).await;
    let mut client = ConsumerGroupsClient::new(connect(server.grpc_addr()).await);
    client
        .create_consumer_group(v1::CreateConsumerGroupRequest {
            name: "survivor".into(),
            settings: Some(settings(|settings| settings.max_in_flight = 20)),
        })
        .await
        .expect("created");
    let mut member = Member::join(server.grpc_addr(), "survivor", "before").await;
    let mut acked_before = BTreeSet::new();
    while acked_before.len() < 300 {
        let (position, ..) = member.delivery().await;
        member.send(ack(vec![position])).await;
        acked_before.insert(position);
    }
    server.kill().await;

    let restarted = ChildServer::start(Path::new(SERVER), data_dir.path()).await;
    let mut client = ConsumerGroupsClient::new(connect(restarted.grpc_addr()).await);
    let info = client
        .get_consumer_group(v1::GetConsumerGroupRequest {
            name: "survivor".into(),
        })
        .await
        .expect("the group survived")
        .into_inner();
    // The stored checkpoint never claims more than was acknowledged.
    assert!(
        (1..=info.checkpoint).all(|position| acked_before.contains(&position)),
        "checkpoint {} beyond what was acknowledged",
        info.checkpoint
    );
    let mut member = Member::join(restarted.grpc_addr(), "survivor", "after").await;
    let acked_after = drain(&mut member).await;
    assert!(
        acked_after
            .iter()
            .all(|position| *position > info.checkpoint),
        "an event at or below the checkpoint came again"
    );
    let union: BTreeSet<u64> = acked_before.union(&acked_after).copied().collect();
    assert_eq!(union, (1..=head).collect(), "an event was lost");
    restarted.kill().await;
}

/// A member that acknowledges what it gets, parking every tenth event,
/// until it settled `count` events; returns (acknowledged, parked).
async fn settle(member: &mut Member, count: usize) -> (Vec<u64>, Vec<u64>) {
    let (mut acked, mut parked) = (Vec::new(), Vec::new());
    while acked.len() + parked.len() < count {
        let Ok((position, ..)) =
            tokio::time::timeout(Duration::from_secs(2), member.delivery()).await
        else {
            break;
        };
        if position % 10 == 0 {
            member
                .send(nack(vec![position], v1::NackAction::Park))
                .await;
            parked.push(position);
        } else {
            member.send(ack(vec![position])).await;
            acked.push(position);
        }
    }
    (acked, parked)
}

/// Appends to a new agreement until the server stops answering.
async fn write_until_refused(addr: SocketAddr, agreement_id: String) {
    let mut client = accord_proto::v1::agreement_service_client::AgreementServiceClient::new(
        connect(addr).await,
    );
    if client
        .announce(announce_wabtec(&agreement_id))
        .await
        .is_err()
        || client.sign(sign(&agreement_id)).await.is_err()
    {
        return;
    }
    for index in 0.. {
        let delivery = deliver(&agreement_id, &format!("{agreement_id}/{index}"), 1);
        if client.record_delivery(delivery).await.is_err() {
            return;
        }
    }
}

/// The group's database on the power-cut file system: a group created
/// survives, the stored checkpoint never passes an event that was neither
/// acknowledged nor parked, and a parked event is never lost with the
/// checkpoint that passed it (they are stored in one synced batch).
#[tokio::test]
async fn a_group_keeps_its_promises_through_power_cuts() {
    let mountpoint = tempfile::tempdir().expect("mount point");
    let mut disk = power_cut_fs::PowerCutDisk::mount_with(
        mountpoint.path(),
        power_cut_fs::Names::SyncedByDirectory,
    )
    .expect("mounts the power-cut file system (needs root and /dev/fuse)");
    let data_dir = disk.path().join("data");
    let mut server = ChildServer::start(Path::new(SERVER), &data_dir).await;
    let head = append_deliveries_at(server.grpc_addr(), "kz", 298).await;
    ConsumerGroupsClient::new(connect(server.grpc_addr()).await)
        .create_consumer_group(v1::CreateConsumerGroupRequest {
            name: "through-cuts".into(),
            settings: Some(settings(|settings| settings.max_in_flight = 20)),
        })
        .await
        .expect("created");
    let mut settled = BTreeSet::new();
    let mut parked_total = BTreeSet::new();
    for cycle in 0..3 {
        // A writer keeps appending while the member settles and the
        // server is killed, so that the cut finds unsynced writes.
        let writer = tokio::spawn(write_until_refused(
            server.grpc_addr(),
            format!("uz-{cycle}"),
        ));
        let mut member = Member::join(server.grpc_addr(), "through-cuts", "member").await;
        let (acked, parked) = settle(&mut member, 60).await;
        settled.extend(acked.iter().chain(&parked).copied());
        parked_total.extend(parked);
        server.kill().await;
        writer.abort();
        disk.power_cut().expect("power cut");
        server = ChildServer::start(Path::new(SERVER), &data_dir).await;
        let info = ConsumerGroupsClient::new(connect(server.grpc_addr()).await)
            .get_consumer_group(v1::GetConsumerGroupRequest {
                name: "through-cuts".into(),
            })
            .await
            .unwrap_or_else(|status| panic!("cycle {cycle}: the group is gone: {status:?}"))
            .into_inner();
        assert!(
            (1..=info.checkpoint).all(|position| settled.contains(&position)),
            "cycle {cycle}: checkpoint {} passes an unsettled event",
            info.checkpoint
        );
        let parked_below = parked_total
            .iter()
            .filter(|position| **position <= info.checkpoint)
            .count() as u64;
        assert!(
            info.parked >= parked_below,
            "cycle {cycle}: {} parked events stored, {parked_below} below the checkpoint {}",
            info.parked,
            info.checkpoint
        );
    }
    // Replay the parked events and drain the rest: nothing is missing.
    let mut client = ConsumerGroupsClient::new(connect(server.grpc_addr()).await);
    client
        .replay_parked(v1::ReplayParkedRequest {
            name: "through-cuts".into(),
        })
        .await
        .expect("replayed");
    let mut member = Member::join(server.grpc_addr(), "through-cuts", "last").await;
    let after = drain(&mut member).await;
    let head = head.max(
        client
            .get_consumer_group(v1::GetConsumerGroupRequest {
                name: "through-cuts".into(),
            })
            .await
            .expect("group")
            .into_inner()
            .head_position,
    );
    let union: BTreeSet<u64> = settled.union(&after).copied().collect();
    assert_eq!(union, (1..=head).collect(), "an event was lost");
    assert!(
        parked_total.iter().all(|position| after.contains(position)),
        "a parked event did not come back on replay"
    );
    assert!(
        disk.stats().lost_bytes > 0,
        "the cuts dropped unsynced writes"
    );
    server.kill().await;
}

#[tokio::test]
async fn members_take_stream_slots_and_groups_are_bounded() {
    let server = TestServer::start_with(|config| config.max_subscriptions = 2).await;
    append_deliveries(&server, "kz", 0).await;
    create(&server, "slots", settings(|_| {})).await;
    let first = Member::join(server.server().grpc_addr(), "slots", "one").await;
    let _second = Member::join(server.server().grpc_addr(), "slots", "two").await;
    let Err(status) = open(server.server().grpc_addr(), join_request("slots", "three")).await
    else {
        panic!("a third stream beyond --max-subscriptions 2 was accepted");
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    // A member that leaves frees its slot.
    drop(first);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match open(server.server().grpc_addr(), join_request("slots", "three")).await {
            Ok(_) => break,
            Err(status) if status.code() == Code::ResourceExhausted => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the slot never came back"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(status) => panic!("{status:?}"),
        }
    }
    // At most 1,000 groups per server.
    let mut client = groups(&server);
    for index in 1..1_000 {
        client
            .create_consumer_group(v1::CreateConsumerGroupRequest {
                name: format!("g{index}"),
                settings: Some(settings(|_| {})),
            })
            .await
            .expect("created");
    }
    let status = client
        .create_consumer_group(v1::CreateConsumerGroupRequest {
            name: "one-too-many".into(),
            settings: Some(settings(|_| {})),
        })
        .await
        .expect_err("beyond the cap");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains("at most 1000"), "{status:?}");
}

impl Member {
    /// Up to `count` deliveries that arrive within 50 ms each.
    async fn some(&mut self, count: usize) -> Vec<(u64, u32)> {
        let mut got = Vec::new();
        while got.len() < count {
            let Ok((position, _, _, delivery_count)) =
                tokio::time::timeout(Duration::from_millis(50), self.delivery()).await
            else {
                break;
            };
            got.push((position, delivery_count));
        }
        got
    }
}

on_both_backends!(random_members_joining_leaving_and_timing_out_lose_nothing);
/// Members join, leave, acknowledge, retry, skip and let events time out at
/// random through the real server; whatever happens, every event ends up
/// acknowledged or skipped, nothing is left in flight, and the checkpoint
/// reaches the head. The seed is printed (`ACCORD_CRASH_SEED` repeats it).
async fn random_members_joining_leaving_and_timing_out_lose_nothing(server: TestServer) {
    use accord_tests::crash_cycles::{Random, seed_from_env};
    let seed = seed_from_env();
    println!("ACCORD_CRASH_SEED={seed}");
    let mut random = Random(seed);
    let addr = server.server().grpc_addr();
    let head = append_deliveries(&server, "kz", 198).await;
    create(
        &server,
        "churn",
        settings(|settings| {
            settings.max_in_flight = 8;
            settings.ack_timeout_ms = 300;
            settings.max_deliveries = 1_000;
        }),
    )
    .await;
    let mut members: Vec<Option<Member>> = (0..3).map(|_| None).collect();
    let mut settled = BTreeSet::new();
    for step in 0..200 {
        let slot = random.below(3) as usize;
        let action = random.below(7);
        if members[slot].is_none() {
            members[slot] = Some(Member::join(addr, "churn", &format!("m{slot}-{step}")).await);
            continue;
        }
        let Some(member) = members[slot].as_mut() else {
            continue;
        };
        match action {
            // Leaves: what it holds goes to the others.
            0 => members[slot] = None,
            1..=3 => {
                let got = member.some(4).await;
                let positions: Vec<u64> = got.iter().map(|(position, _)| *position).collect();
                member.send(ack(positions.clone())).await;
                settled.extend(positions);
            }
            4 => {
                let got = member.some(1).await;
                member
                    .send(nack(
                        got.iter().map(|(p, _)| *p).collect(),
                        v1::NackAction::Retry,
                    ))
                    .await;
            }
            5 => {
                let got = member.some(1).await;
                let positions: Vec<u64> = got.iter().map(|(position, _)| *position).collect();
                member
                    .send(nack(positions.clone(), v1::NackAction::Skip))
                    .await;
                settled.extend(positions);
            }
            // Takes events and never answers: they time out.
            _ => {
                member.some(2).await;
            }
        }
    }
    drop(members);
    let mut last = Member::join(addr, "churn", "last").await;
    settled.extend(drain(&mut last).await);
    assert_eq!(
        settled,
        (1..=head).collect(),
        "an event was lost (seed {seed})"
    );
    let info = wait_for_group(&server, "churn", |info| info.checkpoint == head).await;
    assert_eq!(
        (info.in_flight, info.parked),
        (0, 0),
        "seed {seed}: {info:?}"
    );
}
