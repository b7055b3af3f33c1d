//! Every RPC given garbage: huge strings, huge lists, out-of-range values and
//! foreign tokens. Each is answered INVALID_ARGUMENT or RESOURCE_EXHAUSTED
//! with a message naming the field, the server stays up, and the log stays
//! as it was. (Commands are covered field by field in errors.rs.)

use accord_proto::v1;
use accord_tests::*;
use tonic::Code;

const MIB: usize = 1_048_576;

fn refused<T: std::fmt::Debug>(
    what: &str,
    result: Result<tonic::Response<T>, tonic::Status>,
    field: &str,
) {
    let status = result.expect_err(what);
    assert!(
        matches!(
            status.code(),
            Code::InvalidArgument | Code::ResourceExhausted
        ),
        "{what}: {status:?}"
    );
    assert!(
        status.message().contains(field),
        "{what}: {:?} should name {field}",
        status.message()
    );
}

#[tokio::test]
async fn every_rpc_refuses_garbage_and_the_log_stays_as_it_was() {
    let server = TestServer::start().await;
    let huge = "x".repeat(MIB);
    let many: Vec<String> = (0..100_000).map(|index| format!("a{index}")).collect();
    let mut agreements = server.agreements();
    let mut log = server.event_log();
    let mut admin = server.admin();

    refused(
        "GetAgreement huge id",
        agreements
            .get_agreement(v1::GetAgreementRequest {
                agreement_id: huge.clone(),
                ..Default::default()
            })
            .await,
        "agreement_id",
    );
    refused(
        "GetAgreement bad id",
        agreements
            .get_agreement(v1::GetAgreementRequest {
                agreement_id: "../etc/passwd".into(),
                ..Default::default()
            })
            .await,
        "agreement_id",
    );
    // On a connection of its own: h2 ends the connection of an oversized request.
    let mut oversized = accord_proto::v1::agreement_service_client::AgreementServiceClient::new(
        connect(server.server().grpc_addr()).await,
    );
    refused(
        "GetAgreement over the size limit",
        oversized
            .get_agreement(v1::GetAgreementRequest {
                agreement_id: "x".repeat(5 * MIB),
                ..Default::default()
            })
            .await,
        "message length too large",
    );
    refused(
        "ListAgreements huge country",
        agreements
            .list_agreements(v1::ListAgreementsRequest {
                buyer_country: huge.clone(),
                ..Default::default()
            })
            .await,
        "buyer_country",
    );
    refused(
        "ListAgreements huge supplier",
        agreements
            .list_agreements(v1::ListAgreementsRequest {
                supplier_country: "\u{0}\u{1}".into(),
                ..Default::default()
            })
            .await,
        "supplier_country",
    );
    refused(
        "ListAgreements huge sector",
        agreements
            .list_agreements(v1::ListAgreementsRequest {
                sector: huge.clone(),
                ..Default::default()
            })
            .await,
        "sector",
    );
    refused(
        "ListAgreements bad stage",
        agreements
            .list_agreements(v1::ListAgreementsRequest {
                stage: -7,
                ..Default::default()
            })
            .await,
        "stage",
    );
    refused(
        "ListAgreements huge token",
        agreements
            .list_agreements(v1::ListAgreementsRequest {
                page_token: huge.clone(),
                ..Default::default()
            })
            .await,
        "page_token",
    );
    refused(
        "GetCountryPortfolio huge",
        agreements
            .get_country_portfolio(v1::GetCountryPortfolioRequest {
                country: huge.clone(),
                min_position: 0,
            })
            .await,
        "country",
    );
    refused(
        "GetLocalizationReport bad",
        agreements
            .get_localization_report(v1::GetLocalizationReportRequest {
                country: "kz".into(),
                min_position: 0,
                ..Default::default()
            })
            .await,
        "country",
    );
    refused(
        "WatchAgreements many ids",
        agreements
            .watch_agreements(v1::WatchAgreementsRequest {
                agreement_ids: many.clone(),
                ..Default::default()
            })
            .await,
        "agreement_ids",
    );
    refused(
        "WatchAgreements bad id",
        agreements
            .watch_agreements(v1::WatchAgreementsRequest {
                agreement_ids: vec![huge.clone()],
                ..Default::default()
            })
            .await,
        "agreement_ids[0]",
    );
    refused(
        "WatchAgreements bad country",
        agreements
            .watch_agreements(v1::WatchAgreementsRequest {
                buyer_country: huge.clone(),
                ..Default::default()
            })
            .await,
        "buyer_country",
    );
    refused(
        "Execute too many",
        agreements
            .execute(v1::ExecuteRequest {
                commands: (0..5_000)
                    .map(|index| command(v1::command::Command::Sign(sign(&format!("a{index}")))))
                    .collect(),
            })
            .await,
        "limit is 1000",
    );

    let filter = |filter: v1::SubscriptionFilter| Some(filter);
    refused(
        "Subscribe many ids",
        log.subscribe(v1::SubscribeRequest {
            filter: filter(v1::SubscriptionFilter {
                agreement_ids: many.clone(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await,
        "filter.agreement_ids",
    );
    refused(
        "Subscribe many types",
        log.subscribe(v1::SubscribeRequest {
            filter: filter(v1::SubscriptionFilter {
                event_types: vec!["agreement.signed".into(); 100_000],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await,
        "filter.event_types",
    );
    refused(
        "Subscribe huge country",
        log.subscribe(v1::SubscribeRequest {
            filter: filter(v1::SubscriptionFilter {
                countries: vec![huge.clone()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await,
        "filter.countries[0]",
    );
    refused(
        "Subscribe heartbeat",
        log.subscribe(v1::SubscribeRequest {
            heartbeat_interval_ms: u32::MAX,
            ..Default::default()
        })
        .await,
        "heartbeat_interval_ms",
    );
    refused(
        "ReadLog bad id",
        log.read_log(v1::ReadLogRequest {
            filter: filter(v1::SubscriptionFilter {
                agreement_ids: vec!["UPPER".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await,
        "filter.agreement_ids[0]",
    );
    refused(
        "ReadAgreementHistory huge",
        log.read_agreement_history(v1::ReadAgreementHistoryRequest {
            agreement_id: huge.clone(),
            from_version: u64::MAX,
        })
        .await,
        "agreement_id",
    );
    refused(
        "RebuildProjections many",
        admin
            .rebuild_projections(v1::RebuildProjectionsRequest {
                names: many.clone(),
            })
            .await,
        "names[0]",
    );

    // Still serving, and nothing was appended.
    assert_eq!(server.head().await, 0);
    agreements
        .announce(announce_boeing("still-serving"))
        .await
        .expect("the server is alive");
    assert_eq!(server.head().await, 1);
    server.stop().await;
}

#[tokio::test]
async fn positions_beyond_the_head_are_refused_and_nothing_waits_for_ever() {
    let server = TestServer::start().await;
    let mut agreements = server.agreements();
    agreements
        .announce(announce_wabtec("kz"))
        .await
        .expect("announced");
    agreements.sign(sign("kz")).await.expect("signed");
    let head = server.head().await;
    let mut log = server.event_log();

    for after in [u64::MAX, head + 1] {
        refused(
            "Subscribe after a position the log does not hold",
            log.subscribe(v1::SubscribeRequest {
                start: Some(v1::subscribe_request::Start::AfterPosition(after)),
                ..Default::default()
            })
            .await,
            "after_position",
        );
    }
    // A little ahead is waiting for the next events; far ahead is refused.
    for min_position in [u64::MAX, head + 10_001] {
        // A deadline of years changes nothing: the position is refused at once.
        let mut request = tonic::Request::new(v1::GetAgreementRequest {
            agreement_id: "kz".into(),
            min_position,
            as_of_position: 0,
        });
        request.set_timeout(std::time::Duration::from_secs(10 * 365 * 86_400));
        refused(
            "GetAgreement waiting for a position the log does not hold",
            agreements.get_agreement(request).await,
            "min_position",
        );
        refused(
            "ListCountryPortfolios waiting for a position the log does not hold",
            agreements
                .list_country_portfolios(v1::ListCountryPortfoliosRequest { min_position })
                .await,
            "min_position",
        );
    }
    refused(
        "GetAgreement as of a position the log does not hold",
        agreements
            .get_agreement(v1::GetAgreementRequest {
                agreement_id: "kz".into(),
                min_position: 0,
                as_of_position: u64::MAX,
            })
            .await,
        "as_of_position",
    );

    // At the head, a resumed subscription misses nothing.
    let mut stream = log
        .subscribe(v1::SubscribeRequest {
            start: Some(v1::subscribe_request::Start::AfterPosition(head)),
            ..Default::default()
        })
        .await
        .expect("after the head is fine")
        .into_inner();
    agreements
        .record_delivery(deliver("kz", "after-resume", 1))
        .await
        .expect("delivered");
    use tokio_stream::StreamExt;
    loop {
        let message = stream.next().await.expect("open").expect("message").message;
        if let Some(v1::subscribe_response::Message::Event(event)) = message {
            assert_eq!(event.position, head + 1);
            break;
        }
    }
    assert_eq!(server.head().await, head + 1);
    server.stop().await;
}

#[tokio::test]
async fn technology_transfers_are_listed_once_and_bounded_per_agreement() {
    let server = TestServer::start().await;
    let mut agreements = server.agreements();
    agreements
        .announce(announce_wabtec("kz"))
        .await
        .expect("announced");
    agreements.sign(sign("kz")).await.expect("signed");
    let batch = |from: usize, to: usize, command_id: &str| {
        let mut request = localize("kz", command_id);
        request.technology_transfer = (from..to)
            .flat_map(|index| [format!("technology {index}"), format!("technology {index}")])
            .take(100)
            .collect();
        request
    };
    // 100 entries naming 50 technologies, twice: recorded once each.
    let recorded = agreements
        .record_localization(batch(0, 50, "first"))
        .await
        .expect("accepted")
        .into_inner();
    agreements
        .record_localization(batch(50, 100, "second"))
        .await
        .expect("accepted up to the limit");
    let view = agreements
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "kz".into(),
            min_position: recorded.position + 1,
            as_of_position: 0,
        })
        .await
        .expect("view")
        .into_inner();
    assert_eq!(view.technology_transfer.len(), 100);
    let history = server.read_all().await;
    let Some(v1::recorded_event::Payload::LocalizationRecorded(first)) =
        &history[recorded.position as usize - 1].payload
    else {
        panic!("a localization at {}", recorded.position);
    };
    assert_eq!(first.technology_transfer.len(), 50, "deduplicated");

    let status = agreements
        .record_localization(batch(100, 101, "one-more"))
        .await
        .expect_err("beyond the limit");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(
        status
            .message()
            .contains("at most 100 technology transfers"),
        "{}",
        status.message()
    );
    assert_eq!(server.head().await, recorded.position + 1);
    server.stop().await;
}

#[tokio::test]
async fn calls_to_random_paths_add_no_metric_series() {
    let _heavy = accord_tests::heavy().await;
    const PATHS: usize = 100_000;
    const CLIENTS: usize = 50;
    let server = TestServer::start().await;
    let series = |text: &str| {
        text.lines()
            .filter(|line| line.starts_with("accord_rpc_duration_seconds_count"))
            .count()
    };
    let before = scrape_metrics(server.server().metrics_addr()).await;
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        let channel = server.channel();
        clients.push(tokio::spawn(async move {
            for call in 0..PATHS / CLIENTS {
                let path = format!("/accord.v1.Random{client}/Method{call}");
                let status = raw_call(channel.clone(), &path, None)
                    .await
                    .expect_err("no such method");
                assert_eq!(status.code(), Code::Unimplemented, "{path}");
            }
        }));
    }
    for client in clients {
        client.await.expect("client");
    }
    let after = scrape_metrics(server.server().metrics_addr()).await;
    assert!(!after.contains("Random"), "a client-chosen label");
    assert!(
        after.contains("method=\"unknown\",code=\"UNIMPLEMENTED\""),
        "unknown methods are counted under one label"
    );
    assert!(
        series(&after) <= series(&before) + 1,
        "{} series before, {} after",
        series(&before),
        series(&after)
    );
    assert!(after.contains(&format!(
        "method=\"unknown\",code=\"UNIMPLEMENTED\"}} {PATHS}"
    )));
    server.stop().await;
}

/// A localization as large as the field limits allow: 100 entries of 2,000
/// characters (about 200 KB; up to 800 KB in four-byte characters).
fn largest_localization(command_id: &str) -> v1::RecordLocalizationRequest {
    let mut request = localize("kz-large", command_id);
    request.technology_transfer = (0..100)
        .map(|entry| format!("{entry:03}{}", "é".repeat(1_997)))
        .collect();
    request
}

#[tokio::test]
async fn an_event_over_the_size_limit_is_refused_and_the_limit_can_be_raised() {
    let server = TestServer::start().await;
    let mut agreements = signed_agreement(&server, "kz-large").await;
    let status = agreements
        .record_localization(largest_localization("large-1"))
        .await
        .expect_err("over the default 64 KiB");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().contains("--max-event-bytes") && status.message().contains("65536"),
        "{status:?}"
    );
    let status = agreements
        .execute(v1::ExecuteRequest {
            commands: vec![
                command(v1::command::Command::RecordLocalization(localize(
                    "kz-large", "small",
                ))),
                command(v1::command::Command::RecordLocalization(
                    largest_localization("large-2"),
                )),
            ],
        })
        .await
        .expect_err("a batch holding one is refused whole");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("commands[1].command"),
        "{status:?}"
    );
    assert_eq!(server.head().await, 2, "nothing was appended");
    server.stop().await;

    let server = TestServer::start_with(|config| config.max_event_bytes = 1024 * 1024).await;
    let mut agreements = signed_agreement(&server, "kz-large").await;
    let appended = agreements
        .record_localization(largest_localization("large-1"))
        .await
        .expect("within a raised limit")
        .into_inner();
    assert_eq!(appended.position, 3);
    server.stop().await;
}
