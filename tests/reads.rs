//! Finite reads of the log through the real server.

use accord_proto::v1;
use accord_tests::*;
use tokio_stream::StreamExt;

async fn read(server: &TestServer, request: v1::ReadLogRequest) -> Vec<v1::RecordedEvent> {
    let mut stream = server
        .event_log()
        .read_log(request)
        .await
        .expect("read")
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.expect("event"));
    }
    events
}

async fn seed(server: &TestServer) {
    let mut client = server.agreements();
    client
        .announce(announce_boeing("uz-boeing-787"))
        .await
        .expect("1");
    client
        .announce(announce_wabtec("kz-wabtec-locomotives"))
        .await
        .expect("2");
    client.sign(sign("uz-boeing-787")).await.expect("3");
    client.sign(sign("kz-wabtec-locomotives")).await.expect("4");
    client
        .record_localization(localize("kz-wabtec-locomotives", "loc"))
        .await
        .expect("5");
    client
        .record_delivery(deliver("uz-boeing-787", "d1", 2))
        .await
        .expect("6");
}

#[tokio::test]
async fn read_log_returns_every_event_in_position_order_with_its_envelope() {
    let server = TestServer::start().await;
    seed(&server).await;
    let events = read(&server, v1::ReadLogRequest::default()).await;
    assert_eq!(
        events
            .iter()
            .map(|event| event.position)
            .collect::<Vec<_>>(),
        vec![1, 2, 3, 4, 5, 6]
    );
    let first = &events[0];
    assert_eq!(first.agreement_id, "uz-boeing-787");
    assert_eq!(first.event_type, "agreement.announced");
    assert_eq!(first.event_id.len(), 36, "a UUID: {}", first.event_id);
    assert_eq!(
        first.metadata.as_ref().map(|meta| meta.command_id.as_str()),
        Some("uz-boeing-787/announce")
    );
    match &first.payload {
        Some(v1::recorded_event::Payload::Announced(announced)) => {
            assert_eq!(announced.quantity, Some(22));
            assert_eq!(
                announced.value.as_ref().map(|value| value.minor_units),
                Some(850_000_000_000)
            );
        }
        other => panic!("unexpected payload {other:?}"),
    }
    let ids: std::collections::HashSet<_> =
        events.iter().map(|event| event.event_id.clone()).collect();
    assert_eq!(ids.len(), 6, "event ids are unique");
    server.stop().await;
}

#[tokio::test]
async fn read_log_honours_from_position_and_max_count() {
    let server = TestServer::start().await;
    seed(&server).await;
    let events = read(
        &server,
        v1::ReadLogRequest {
            from_position: 3,
            max_count: 2,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        events
            .iter()
            .map(|event| event.position)
            .collect::<Vec<_>>(),
        vec![3, 4]
    );
    let beyond = read(
        &server,
        v1::ReadLogRequest {
            from_position: 99,
            ..Default::default()
        },
    )
    .await;
    assert!(beyond.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn read_log_filters_by_type_agreement_and_buyer_country() {
    let server = TestServer::start().await;
    seed(&server).await;
    let by_type = read(
        &server,
        v1::ReadLogRequest {
            filter: Some(v1::SubscriptionFilter {
                event_types: vec!["agreement.signed".into()],
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        by_type
            .iter()
            .map(|event| event.position)
            .collect::<Vec<_>>(),
        vec![3, 4]
    );
    let by_agreement = read(
        &server,
        v1::ReadLogRequest {
            filter: Some(v1::SubscriptionFilter {
                agreement_ids: vec!["uz-boeing-787".into()],
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        by_agreement
            .iter()
            .map(|event| event.position)
            .collect::<Vec<_>>(),
        vec![1, 3, 6]
    );
    let by_country = read(
        &server,
        v1::ReadLogRequest {
            filter: Some(v1::SubscriptionFilter {
                countries: vec!["KZ".into()],
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        by_country
            .iter()
            .map(|event| event.position)
            .collect::<Vec<_>>(),
        vec![2, 4, 5]
    );
    let combined = read(
        &server,
        v1::ReadLogRequest {
            max_count: 1,
            filter: Some(v1::SubscriptionFilter {
                countries: vec!["UZ".into()],
                event_types: vec![
                    "agreement.delivery_recorded".into(),
                    "agreement.signed".into(),
                ],
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(
        combined
            .iter()
            .map(|event| event.position)
            .collect::<Vec<_>>(),
        vec![3]
    );
    server.stop().await;
}

#[tokio::test]
async fn read_agreement_history_returns_one_agreement_from_a_version() {
    let server = TestServer::start().await;
    seed(&server).await;
    let mut stream = server
        .event_log()
        .read_agreement_history(v1::ReadAgreementHistoryRequest {
            agreement_id: "uz-boeing-787".into(),
            from_version: 2,
        })
        .await
        .expect("history")
        .into_inner();
    let mut versions = Vec::new();
    while let Some(event) = stream.next().await {
        let event = event.expect("event");
        assert_eq!(event.agreement_id, "uz-boeing-787");
        versions.push((event.version, event.position));
    }
    assert_eq!(versions, vec![(2, 3), (3, 6)]);
    server.stop().await;
}

#[tokio::test]
async fn a_large_log_is_read_in_full() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    client
        .announce(announce_wabtec("kz"))
        .await
        .expect("announced");
    client.sign(sign("kz")).await.expect("signed");
    let commands = (0..298)
        .map(|index| {
            command(v1::command::Command::RecordDelivery(deliver(
                "kz",
                &format!("d{index}"),
                1,
            )))
        })
        .collect();
    client
        .execute(v1::ExecuteRequest { commands })
        .await
        .expect("executed");
    let events = server.read_all().await;
    assert_eq!(events.len(), 300);
    assert!(
        events
            .iter()
            .enumerate()
            .all(|(index, event)| event.position == index as u64 + 1)
    );
    server.stop().await;
}

#[tokio::test]
async fn get_stats_counts_events_and_agreements() {
    let server = TestServer::start().await;
    seed(&server).await;
    let stats = server
        .admin()
        .get_stats(v1::GetStatsRequest {})
        .await
        .expect("stats")
        .into_inner();
    assert_eq!(stats.head_position, 6);
    assert_eq!(stats.event_count, 6);
    assert_eq!(stats.agreement_count, 2);
    assert!(stats.disk_bytes > 0);
    server.stop().await;
}

/// `ReadLog` and `Subscribe` from a time: the first event recorded at or
/// after it (found by a binary search over positions), nothing when the
/// time is still to come, and a refusal naming the field for an instant out
/// of range or a request that names a position too.
#[tokio::test]
async fn reads_start_at_the_first_event_recorded_at_or_after_a_time() {
    let server = TestServer::start().await;
    // Appends one at a time: each has its own recording instant.
    let mut agreements = server.agreements();
    for index in 0..12 {
        agreements
            .announce(announce_boeing(&format!("uz-{index}")))
            .await
            .expect("announced");
    }
    let all = read_all(server.event_log()).await;
    assert_eq!(all.len(), 12);
    let at = |position: usize| all[position - 1].recorded_at.expect("recorded_at");
    // Instants compared as (seconds, nanos).
    let key = |time: prost_types::Timestamp| (time.seconds, time.nanos);
    let from_time = |time: prost_types::Timestamp| v1::ReadLogRequest {
        from_time: Some(time),
        ..Default::default()
    };
    let positions = |events: Vec<v1::RecordedEvent>| -> Vec<u64> {
        events.iter().map(|event| event.position).collect()
    };
    for start in [1, 2, 7, 12] {
        let events = read(&server, from_time(at(start))).await;
        // Recording instants never decrease; equal ones before `start`
        // belong to the answer too.
        let expected: Vec<u64> = all
            .iter()
            .filter(|event| key(event.recorded_at.expect("recorded_at")) >= key(at(start)))
            .map(|event| event.position)
            .collect();
        assert_eq!(positions(events), expected, "from the time of {start}");
    }
    // A nanosecond after event 7's instant: the next event recorded later.
    let mut after_seven = at(7);
    after_seven.nanos += 1;
    if after_seven.nanos >= 1_000_000_000 {
        after_seven.seconds += 1;
        after_seven.nanos -= 1_000_000_000;
    }
    let first_later = all
        .iter()
        .find(|event| key(event.recorded_at.expect("recorded_at")) > key(at(7)))
        .map(|event| event.position);
    let events = read(&server, from_time(after_seven)).await;
    assert_eq!(events.first().map(|event| event.position), first_later);
    // Before the first event: everything; after the last: nothing.
    let events = read(
        &server,
        from_time(prost_types::Timestamp {
            seconds: 0,
            nanos: 0,
        }),
    )
    .await;
    assert_eq!(events.len(), 12);
    let future = prost_types::Timestamp {
        seconds: at(12).seconds + 3_600,
        nanos: 0,
    };
    assert!(read(&server, from_time(future)).await.is_empty());

    // Subscribe from event 7's instant: event 7 first, then live ones.
    let mut live = server
        .event_log()
        .subscribe(v1::SubscribeRequest {
            start: Some(v1::subscribe_request::Start::FromTime(at(7))),
            ..Default::default()
        })
        .await
        .expect("subscribes")
        .into_inner();
    let mut seen = Vec::new();
    while seen.len() < 6 {
        let message = live.next().await.expect("a message").expect("no error");
        if let Some(v1::subscribe_response::Message::Event(event)) = message.message {
            seen.push(event.position);
        }
    }
    assert_eq!(seen, (7..=12).collect::<Vec<_>>());

    // Refusals name the field and append nothing.
    let both = v1::ReadLogRequest {
        from_position: 3,
        from_time: Some(at(1)),
        ..Default::default()
    };
    let status = server
        .event_log()
        .read_log(both)
        .await
        .expect_err("both refused");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("from_time"), "{status:?}");
    let broken = prost_types::Timestamp {
        seconds: 1,
        nanos: 2_000_000_000,
    };
    let status = server
        .event_log()
        .read_log(from_time(broken))
        .await
        .expect_err("out of range");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("from_time"), "{status:?}");
    let status = server
        .event_log()
        .subscribe(v1::SubscribeRequest {
            start: Some(v1::subscribe_request::Start::FromTime(broken)),
            ..Default::default()
        })
        .await
        .expect_err("out of range");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(status.message().contains("from_time"), "{status:?}");
    assert_eq!(server.head().await, 12);
    server.stop().await;
}
