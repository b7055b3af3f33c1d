//! Live streams through the real server: Subscribe and WatchAgreements never
//! lose, duplicate or reorder an event, whatever the subscriber's speed.

use std::time::Duration;

use accord_proto::v1::{self, subscribe_request::Start, subscribe_response::Message};
use accord_tests::*;
use tokio_stream::StreamExt;
use tonic::{Code, Streaming};

fn from_start() -> v1::SubscribeRequest {
    v1::SubscribeRequest {
        start: Some(Start::FromStart(v1::subscribe_request::FromStart {})),
        ..Default::default()
    }
}

fn after(position: u64) -> v1::SubscribeRequest {
    v1::SubscribeRequest {
        start: Some(Start::AfterPosition(position)),
        ..Default::default()
    }
}

/// Reads events until `position`, checking order; returns their positions.
async fn events_until(stream: &mut Streaming<v1::SubscribeResponse>, position: u64) -> Vec<u64> {
    let mut positions = Vec::new();
    while positions.last().copied().unwrap_or(0) < position {
        let message = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("an event arrives")
            .expect("stream open")
            .expect("ok");
        if let Some(Message::Event(event)) = message.message {
            if let Some(last) = positions.last() {
                assert!(event.position > *last, "in order, no duplicates");
            }
            positions.push(event.position);
        }
    }
    positions
}

#[tokio::test]
async fn a_subscriber_that_reads_nothing_during_10000_appends_then_gets_them_all_in_order() {
    let server = TestServer::start().await;
    let mut stream = server
        .event_log()
        .subscribe(from_start())
        .await
        .expect("subscribed")
        .into_inner();
    let head = append_deliveries(&server, "kz", 10_000).await;
    let positions = events_until(&mut stream, head).await;
    assert_eq!(positions, (1..=head).collect::<Vec<_>>());
    server.stop().await;
}

#[tokio::test]
async fn caught_up_comes_once_after_the_backlog() {
    let server = TestServer::start().await;
    let head = append_deliveries(&server, "kz", 50).await;
    let mut stream = server
        .event_log()
        .subscribe(from_start())
        .await
        .expect("subscribed")
        .into_inner();
    let mut events = 0;
    loop {
        let message = stream.next().await.expect("open").expect("ok");
        match message.message {
            Some(Message::Event(_)) => events += 1,
            Some(Message::CaughtUp(caught_up)) => {
                assert_eq!(caught_up.position, head);
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(events, head);
    let more = server
        .agreements()
        .record_delivery(deliver("kz", "live", 1))
        .await
        .expect("live")
        .into_inner();
    let message = stream.next().await.expect("open").expect("ok");
    match message.message {
        Some(Message::Event(event)) => assert_eq!(event.position, more.position),
        other => panic!("expected the live event, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn two_hundred_concurrent_subscribers_each_receive_every_event() {
    let server = TestServer::start().await;
    let mut readers = Vec::new();
    let (go, _) = tokio::sync::broadcast::channel::<u64>(1);
    for _ in 0..200 {
        let mut stream = server
            .event_log()
            .subscribe(from_start())
            .await
            .expect("subscribed")
            .into_inner();
        let mut head = go.subscribe();
        readers.push(tokio::spawn(async move {
            let head = head.recv().await.expect("head");
            events_until(&mut stream, head).await
        }));
    }
    let head = append_deliveries(&server, "kz", 500).await;
    go.send(head).expect("readers wait");
    for reader in readers {
        assert_eq!(
            reader.await.expect("reader"),
            (1..=head).collect::<Vec<_>>()
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn a_subscriber_that_resumes_after_a_disconnect_misses_nothing() {
    let server = TestServer::start().await;
    let first_head = append_deliveries(&server, "kz", 100).await;
    let mut stream = server
        .event_log()
        .subscribe(from_start())
        .await
        .expect("subscribed")
        .into_inner();
    let seen = events_until(&mut stream, 40).await;
    drop(stream);
    let mut client = server.agreements();
    for index in 0..20 {
        client
            .record_delivery(deliver("kz", &format!("later-{index}"), 1))
            .await
            .expect("appended");
    }
    let head = first_head + 20;
    let mut resumed = server
        .event_log()
        .subscribe(after(*seen.last().expect("seen")))
        .await
        .expect("resumed")
        .into_inner();
    let rest = events_until(&mut resumed, head).await;
    let all: Vec<u64> = seen.into_iter().chain(rest).collect();
    assert_eq!(all, (1..=head).collect::<Vec<_>>());
    server.stop().await;
}

#[tokio::test]
async fn from_end_starts_with_the_next_event() {
    let server = TestServer::start().await;
    append_deliveries(&server, "kz", 10).await;
    let request = v1::SubscribeRequest {
        start: Some(Start::FromEnd(v1::subscribe_request::FromEnd {})),
        ..Default::default()
    };
    let mut stream = server
        .event_log()
        .subscribe(request)
        .await
        .expect("subscribed")
        .into_inner();
    let first = stream.next().await.expect("open").expect("ok");
    assert!(
        matches!(
            first.message,
            Some(Message::CaughtUp(v1::CaughtUp { position: 12 }))
        ),
        "{first:?}"
    );
    let next = server
        .agreements()
        .record_delivery(deliver("kz", "next", 1))
        .await
        .expect("appended")
        .into_inner();
    let message = stream.next().await.expect("open").expect("ok");
    assert!(
        matches!(message.message, Some(Message::Event(event)) if event.position == next.position)
    );
    server.stop().await;
}

#[tokio::test]
async fn filters_select_by_type_agreement_and_buyer_country() {
    let server = TestServer::start().await;
    let commands = accord_dataset::unga80_commands().expect("dataset");
    server
        .agreements()
        .execute(v1::ExecuteRequest { commands })
        .await
        .expect("loaded");
    let collect = |filter: v1::SubscriptionFilter| {
        let mut client = server.event_log();
        async move {
            let request = v1::SubscribeRequest {
                filter: Some(filter),
                ..from_start()
            };
            let mut stream = client
                .subscribe(request)
                .await
                .expect("subscribed")
                .into_inner();
            let mut ids = Vec::new();
            loop {
                match stream.next().await.expect("open").expect("ok").message {
                    Some(Message::Event(event)) => {
                        ids.push(format!("{}#{}", event.agreement_id, event.version))
                    }
                    Some(Message::CaughtUp(_)) => return ids,
                    other => panic!("unexpected {other:?}"),
                }
            }
        }
    };
    let signed = collect(v1::SubscriptionFilter {
        event_types: vec!["agreement.signed".into()],
        ..Default::default()
    })
    .await;
    assert_eq!(signed, ["uz-boeing-787#2", "kz-wabtec-locomotives#2"]);
    let wabtec = collect(v1::SubscriptionFilter {
        agreement_ids: vec!["kz-wabtec-locomotives".into()],
        ..Default::default()
    })
    .await;
    assert_eq!(
        wabtec,
        [
            "kz-wabtec-locomotives#1",
            "kz-wabtec-locomotives#2",
            "kz-wabtec-locomotives#3"
        ]
    );
    let kazakhstan = collect(v1::SubscriptionFilter {
        countries: vec!["KZ".into()],
        ..Default::default()
    })
    .await;
    assert_eq!(kazakhstan, wabtec);
    let uzbek_signatures = collect(v1::SubscriptionFilter {
        countries: vec!["UZ".into()],
        event_types: vec![
            "agreement.signed".into(),
            "agreement.localization_recorded".into(),
        ],
        ..Default::default()
    })
    .await;
    assert_eq!(uzbek_signatures, ["uz-boeing-787#2"]);
    server.stop().await;
}

#[tokio::test]
async fn a_heartbeat_arrives_on_an_idle_stream() {
    let server = TestServer::start().await;
    let head = append_deliveries(&server, "kz", 3).await;
    let request = v1::SubscribeRequest {
        heartbeat_interval_ms: 200,
        ..after(head)
    };
    let mut stream = server
        .event_log()
        .subscribe(request)
        .await
        .expect("subscribed")
        .into_inner();
    let caught_up = stream.next().await.expect("open").expect("ok");
    assert!(matches!(caught_up.message, Some(Message::CaughtUp(_))));
    let heartbeat = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("a heartbeat arrives")
        .expect("open")
        .expect("ok");
    match heartbeat.message {
        Some(Message::Heartbeat(heartbeat)) => {
            assert_eq!(heartbeat.head_position, head);
            assert_eq!(heartbeat.last_position, head);
        }
        other => panic!("expected a heartbeat, got {other:?}"),
    }
    server.stop().await;
}

async fn active_subscriptions(server: &TestServer) -> u64 {
    let text = scrape_metrics(server.server().metrics_addr()).await;
    text.lines()
        .find_map(|line| line.strip_prefix("accord_subscriptions_active "))
        .and_then(|value| value.trim().parse().ok())
        .expect("gauge present")
}

#[tokio::test]
async fn a_thousand_subscriptions_opened_and_dropped_leave_none_active() {
    let server = TestServer::start().await;
    append_deliveries(&server, "kz", 5).await;
    let mut streams = Vec::new();
    for connection in 0..4 {
        let channel = connect(server.server().grpc_addr()).await;
        for _ in 0..250 {
            let mut client =
                accord_proto::v1::event_log_client::EventLogClient::new(channel.clone());
            let mut stream = client
                .subscribe(from_start())
                .await
                .expect("subscribed")
                .into_inner();
            stream.next().await.expect("open").expect("first message");
            streams.push(stream);
        }
        assert_eq!(streams.len(), (connection + 1) * 250);
    }
    assert_eq!(active_subscriptions(&server).await, 1_000);
    drop(streams);
    // Stream tasks notice the cancellation asynchronously: poll, bounded.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while active_subscriptions(&server).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "subscriptions still active"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn the_subscription_limit_is_resource_exhausted() {
    let server = TestServer::start_with(|config| {
        config.max_subscriptions = 3;
        config.max_subscriptions_per_connection = 2;
    })
    .await;
    let mut first = server
        .event_log()
        .subscribe(from_start())
        .await
        .expect("1")
        .into_inner();
    let mut second = server
        .event_log()
        .subscribe(from_start())
        .await
        .expect("2")
        .into_inner();
    first.next().await.expect("open").expect("ok");
    second.next().await.expect("open").expect("ok");
    let status = server
        .event_log()
        .subscribe(from_start())
        .await
        .expect_err("per connection");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("on this connection"),
        "{}",
        status.message()
    );
    let other = connect(server.server().grpc_addr()).await;
    let mut third = accord_proto::v1::event_log_client::EventLogClient::new(other.clone())
        .subscribe(from_start())
        .await
        .expect("3")
        .into_inner();
    third.next().await.expect("open").expect("ok");
    let status = accord_proto::v1::event_log_client::EventLogClient::new(other)
        .subscribe(from_start())
        .await
        .expect_err("global");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("server's limit is 3"),
        "{}",
        status.message()
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_subscription_requests_are_invalid_argument() {
    let server = TestServer::start().await;
    for request in [
        v1::SubscribeRequest {
            heartbeat_interval_ms: 5,
            ..from_start()
        },
        v1::SubscribeRequest {
            filter: Some(v1::SubscriptionFilter {
                event_types: vec!["agreement.cancelled".into()],
                ..Default::default()
            }),
            ..from_start()
        },
    ] {
        let status = server
            .event_log()
            .subscribe(request)
            .await
            .expect_err("refused");
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    }
    let status = server
        .agreements()
        .watch_agreements(v1::WatchAgreementsRequest {
            agreement_ids: vec!["a".into()],
            buyer_country: "UZ".into(),
            include_initial: false,
        })
        .await
        .expect_err("both");
    assert_eq!(status.code(), Code::InvalidArgument);
    server.stop().await;
}

#[tokio::test]
async fn streams_end_with_unavailable_on_shutdown() {
    let server = TestServer::start().await;
    let head = append_deliveries(&server, "kz", 3).await;
    let mut subscription = server
        .event_log()
        .subscribe(from_start())
        .await
        .expect("subscribed")
        .into_inner();
    events_until(&mut subscription, head).await;
    let mut watch = server
        .agreements()
        .watch_agreements(v1::WatchAgreementsRequest {
            include_initial: true,
            ..Default::default()
        })
        .await
        .expect("watching")
        .into_inner();
    watch.next().await.expect("open").expect("initial view");
    let stopping = tokio::spawn(server.stop());
    let mut subscription_end = None;
    while let Some(message) = subscription.next().await {
        if let Err(status) = message {
            subscription_end = Some(status);
            break;
        }
    }
    let status = subscription_end.expect("the subscription ends with a status");
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status
            .message()
            .contains(&format!("after_position = {head}")),
        "{}",
        status.message()
    );
    let mut watch_end = None;
    while let Some(message) = watch.next().await {
        if let Err(status) = message {
            watch_end = Some(status);
            break;
        }
    }
    assert_eq!(
        watch_end.expect("the watch ends with a status").code(),
        Code::Unavailable
    );
    stopping.await.expect("stopped");
}

#[tokio::test]
async fn watch_agreements_sends_initial_views_then_each_change() {
    let server = TestServer::start().await;
    let commands = accord_dataset::unga80_commands().expect("dataset");
    server
        .agreements()
        .execute(v1::ExecuteRequest { commands })
        .await
        .expect("loaded");
    let mut watch = server
        .agreements()
        .watch_agreements(v1::WatchAgreementsRequest {
            agreement_ids: vec!["kz-wabtec-locomotives".into(), "uz-boeing-787".into()],
            buyer_country: String::new(),
            include_initial: true,
        })
        .await
        .expect("watching")
        .into_inner();
    let mut initial = Vec::new();
    for _ in 0..2 {
        let update = watch.next().await.expect("open").expect("ok");
        initial.push(update.agreement.expect("view").agreement_id);
    }
    assert_eq!(initial, ["kz-wabtec-locomotives", "uz-boeing-787"]);

    let mut client = server.agreements();
    client
        .announce(announce_boeing("not-watched"))
        .await
        .expect("other agreement");
    let delivered = client
        .record_delivery(deliver("uz-boeing-787", "first-787", 2))
        .await
        .expect("delivered")
        .into_inner();
    let update = watch.next().await.expect("open").expect("ok");
    assert_eq!(update.position, delivered.position);
    let view = update.agreement.expect("view");
    assert_eq!(view.agreement_id, "uz-boeing-787");
    assert_eq!(view.delivered_units, 2);
    assert_eq!(view.stage, v1::AgreementStage::Delivering as i32);
    server.stop().await;
}

#[tokio::test]
async fn watch_by_buyer_country_follows_new_agreements_of_that_country() {
    let server = TestServer::start().await;
    let mut watch = server
        .agreements()
        .watch_agreements(v1::WatchAgreementsRequest {
            buyer_country: "KZ".into(),
            ..Default::default()
        })
        .await
        .expect("watching")
        .into_inner();
    let mut client = server.agreements();
    client
        .announce(announce_boeing("uz-order"))
        .await
        .expect("UZ, not watched");
    let announced = client
        .announce(announce_wabtec("kz-order"))
        .await
        .expect("KZ")
        .into_inner();
    let signed = client
        .sign(sign("kz-order"))
        .await
        .expect("signed")
        .into_inner();
    // The UZ agreement is never sent. The first view is the announcement's,
    // or (a watcher that lags, as the README says) already the signature's:
    // either way the view is the one of the position it names.
    let first = watch.next().await.expect("open").expect("ok");
    let stage_at = |position: u64| {
        if position == announced.position {
            v1::AgreementStage::Announced as i32
        } else {
            v1::AgreementStage::Signed as i32
        }
    };
    assert!(
        first.position == announced.position || first.position == signed.position,
        "{first:?}"
    );
    assert_eq!(
        first.agreement.as_ref().map(|view| view.stage),
        Some(stage_at(first.position))
    );
    assert_eq!(
        first
            .agreement
            .as_ref()
            .map(|view| view.agreement_id.as_str()),
        Some("kz-order")
    );
    let mut last = first;
    // A watcher that lags may see the later view at once; it never goes backwards.
    while last.position < signed.position {
        let next = watch.next().await.expect("open").expect("ok");
        assert!(next.position > last.position);
        last = next;
    }
    assert_eq!(
        last.agreement.map(|view| view.stage),
        Some(v1::AgreementStage::Signed as i32)
    );
    server.stop().await;
}

#[tokio::test]
async fn more_connections_do_not_get_around_the_per_client_limit() {
    let server = TestServer::start_with(|config| {
        config.max_subscriptions_per_client = 3;
    })
    .await;
    let mut open = Vec::new();
    for _ in 0..3 {
        // Each on a connection of its own, from the same address.
        let channel = connect(server.server().grpc_addr()).await;
        let mut stream = accord_proto::v1::event_log_client::EventLogClient::new(channel)
            .subscribe(from_start())
            .await
            .expect("within the limit")
            .into_inner();
        stream.next().await.expect("open").expect("ok");
        open.push(stream);
    }
    let channel = connect(server.server().grpc_addr()).await;
    let status = accord_proto::v1::event_log_client::EventLogClient::new(channel.clone())
        .subscribe(from_start())
        .await
        .expect_err("a fourth connection does not help");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("--max-subscriptions-per-client"),
        "{}",
        status.message()
    );
    // ReadLog holds a slot too.
    let status = accord_proto::v1::event_log_client::EventLogClient::new(channel.clone())
        .read_log(v1::ReadLogRequest::default())
        .await
        .expect_err("ReadLog counts against the limit");
    assert_eq!(status.code(), Code::ResourceExhausted);
    let status = accord_proto::v1::event_log_client::EventLogClient::new(channel.clone())
        .read_agreement_history(v1::ReadAgreementHistoryRequest {
            agreement_id: "uz-boeing-787".into(),
            from_version: 1,
        })
        .await
        .expect_err("ReadAgreementHistory counts against the limit");
    assert_eq!(status.code(), Code::ResourceExhausted);
    let status = accord_proto::v1::admin_client::AdminClient::new(channel.clone())
        .export_log(v1::ExportLogRequest { from_position: 1 })
        .await
        .expect_err("ExportLog counts against the limit");
    assert_eq!(status.code(), Code::ResourceExhausted);
    let status = accord_proto::v1::agreement_service_client::AgreementServiceClient::new(channel)
        .watch_agreements(v1::WatchAgreementsRequest::default())
        .await
        .expect_err("WatchAgreements counts against the limit");
    assert_eq!(status.code(), Code::ResourceExhausted);
    server.stop().await;
}

#[tokio::test]
async fn each_token_has_its_own_stream_limit() {
    use accord_server::auth::{TokenTable, new_token};
    let (first, second) = (new_token(), new_token());
    let file = tempfile::NamedTempFile::new().expect("token file");
    std::fs::write(
        file.path(),
        [
            TokenTable::line_for("dashboard", "reader", &first),
            TokenTable::line_for("indexer", "reader", &second),
        ]
        .join("\n"),
    )
    .expect("written");
    let path = file.path().to_path_buf();
    let server = TestServer::start_with(|config| {
        config.token_file = Some(path);
        config.max_subscriptions_per_client = 2;
    })
    .await;
    let subscribe = |token: String| {
        let channel = server.channel();
        async move {
            let mut request = tonic::Request::new(from_start());
            request.metadata_mut().insert(
                "authorization",
                format!("Bearer {token}").parse().expect("header"),
            );
            accord_proto::v1::event_log_client::EventLogClient::new(channel)
                .subscribe(request)
                .await
        }
    };
    let _a = subscribe(first.clone()).await.expect("1 of 2");
    let _b = subscribe(first.clone()).await.expect("2 of 2");
    let status = subscribe(first).await.expect_err("3 of 2");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("\"dashboard\""),
        "{}",
        status.message()
    );
    // The same address with another token is another client.
    let _c = subscribe(second).await.expect("another token");
    server.stop().await;
}
