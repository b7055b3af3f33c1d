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
            filter: None,
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
            max_count: 0,
            filter: None,
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
