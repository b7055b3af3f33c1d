//! Every rejection through the real server: the status code and message the
//! contract names, nothing appended, and the server still serving.

use accord_proto::v1::{self, command::Command as Wire};
use accord_tests::*;
use tonic::{Code, Status};

/// Asserts the code, that the message names `needle`, and that the log is unchanged.
async fn assert_refused(
    server: &TestServer,
    result: Result<tonic::Response<v1::AppendResult>, Status>,
    code: Code,
    needle: &str,
) {
    let head_before = server.head().await;
    let status = result.expect_err("must be refused");
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(needle),
        "message {:?} should name {needle:?}",
        status.message()
    );
    assert_eq!(
        server.head().await,
        head_before,
        "a refused command appended nothing"
    );
}

#[tokio::test]
async fn malformed_announcements_are_invalid_argument_naming_the_field() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    let base = announce_boeing("uz-boeing-787");
    let cases: Vec<(v1::AnnounceRequest, &str)> = vec![
        (
            v1::AnnounceRequest {
                meta: None,
                ..base.clone()
            },
            "meta.command_id",
        ),
        (
            v1::AnnounceRequest {
                meta: meta(&"x".repeat(129)),
                ..base.clone()
            },
            "meta.command_id",
        ),
        (
            v1::AnnounceRequest {
                meta: meta("tab\tin id"),
                ..base.clone()
            },
            "meta.command_id",
        ),
        (
            v1::AnnounceRequest {
                agreement_id: "Has Upper".into(),
                ..base.clone()
            },
            "agreement_id",
        ),
        (
            v1::AnnounceRequest {
                agreement_id: String::new(),
                ..base.clone()
            },
            "agreement_id",
        ),
        (
            v1::AnnounceRequest {
                title: String::new(),
                ..base.clone()
            },
            "title",
        ),
        (
            v1::AnnounceRequest {
                title: "t".repeat(201),
                ..base.clone()
            },
            "title",
        ),
        (
            v1::AnnounceRequest {
                kind: 0,
                ..base.clone()
            },
            "kind",
        ),
        (
            v1::AnnounceRequest {
                kind: 42,
                ..base.clone()
            },
            "kind",
        ),
        (
            v1::AnnounceRequest {
                buyer: None,
                ..base.clone()
            },
            "buyer",
        ),
        (
            v1::AnnounceRequest {
                buyer: Some(v1::Party {
                    name: "Uzbekistan Airways".into(),
                    country: "uz".into(),
                }),
                ..base.clone()
            },
            "buyer.country",
        ),
        (
            v1::AnnounceRequest {
                supplier: Some(v1::Party {
                    name: String::new(),
                    country: "US".into(),
                }),
                ..base.clone()
            },
            "supplier.name",
        ),
        (
            v1::AnnounceRequest {
                sector: "Aviation".into(),
                ..base.clone()
            },
            "sector",
        ),
        (
            v1::AnnounceRequest {
                product: String::new(),
                ..base.clone()
            },
            "product",
        ),
        (
            v1::AnnounceRequest {
                quantity: Some(0),
                ..base.clone()
            },
            "quantity",
        ),
        (
            v1::AnnounceRequest {
                value: Some(v1::Money {
                    currency: "USD".into(),
                    minor_units: -1,
                }),
                ..base.clone()
            },
            "value.minor_units",
        ),
        (
            v1::AnnounceRequest {
                value: Some(v1::Money {
                    currency: "dollars".into(),
                    minor_units: 1,
                }),
                ..base.clone()
            },
            "value.currency",
        ),
        (
            v1::AnnounceRequest {
                announced_at: None,
                ..base.clone()
            },
            "announced_at",
        ),
        // 10000-01-01, beyond year 9999.
        (
            v1::AnnounceRequest {
                announced_at: at(253_402_300_800),
                ..base.clone()
            },
            "announced_at",
        ),
        (
            v1::AnnounceRequest {
                announced_at: at(-2_208_988_801),
                ..base.clone()
            },
            "announced_at",
        ),
        (
            v1::AnnounceRequest {
                announced_at: Some(prost_types::Timestamp {
                    seconds: 0,
                    nanos: -1,
                }),
                ..base.clone()
            },
            "announced_at",
        ),
        (
            v1::AnnounceRequest {
                source: "s".repeat(2_001),
                ..base.clone()
            },
            "source",
        ),
        (
            v1::AnnounceRequest {
                venue: "v".repeat(1_048_576),
                ..base.clone()
            },
            "venue",
        ),
    ];
    for (request, field) in cases {
        let result = client.announce(request).await;
        assert_refused(&server, result, Code::InvalidArgument, field).await;
    }
    assert!(server.read_all().await.is_empty());
    // Still serving, and the valid request goes through.
    client.announce(base).await.expect("valid announcement");
    server.stop().await;
}

#[tokio::test]
async fn malformed_follow_up_commands_are_invalid_argument() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    client
        .announce(announce_wabtec("kz"))
        .await
        .expect("announced");
    let result = client
        .sign(v1::SignRequest {
            signatories: vec!["x".into(); 101],
            ..sign("kz")
        })
        .await;
    assert_refused(&server, result, Code::InvalidArgument, "signatories").await;
    let result = client
        .sign(v1::SignRequest {
            signed_at: None,
            ..sign("kz")
        })
        .await;
    assert_refused(&server, result, Code::InvalidArgument, "signed_at").await;
    client.sign(sign("kz")).await.expect("signed");
    let result = client.record_delivery(deliver("kz", "zero", 0)).await;
    assert_refused(&server, result, Code::InvalidArgument, "units").await;
    let result = client
        .record_localization(v1::RecordLocalizationRequest {
            localization_rate_bp: 10_001,
            ..localize("kz", "l")
        })
        .await;
    assert_refused(
        &server,
        result,
        Code::InvalidArgument,
        "localization_rate_bp",
    )
    .await;
    let result = client
        .record_localization(v1::RecordLocalizationRequest {
            facility: String::new(),
            ..localize("kz", "l")
        })
        .await;
    assert_refused(&server, result, Code::InvalidArgument, "facility").await;
    let result = client
        .record_localization(v1::RecordLocalizationRequest {
            technology_transfer: vec!["t".into(); 100_000],
            ..localize("kz", "l")
        })
        .await;
    assert_refused(
        &server,
        result,
        Code::InvalidArgument,
        "technology_transfer",
    )
    .await;
    let mut exact_zero = deliver("kz", "d", 1);
    exact_zero.meta = meta_expecting("d", 0);
    let result = client.record_delivery(exact_zero).await;
    assert_refused(&server, result, Code::InvalidArgument, "expected_version").await;
    let mut empty_expectation = deliver("kz", "d", 1);
    empty_expectation.meta = Some(v1::CommandMeta {
        command_id: "d".into(),
        expected_version: Some(v1::ExpectedVersion { kind: None }),
        ..Default::default()
    });
    let result = client.record_delivery(empty_expectation).await;
    assert_refused(&server, result, Code::InvalidArgument, "expected_version").await;
    server.stop().await;
}

#[tokio::test]
async fn a_message_over_the_size_limit_is_invalid_argument() {
    let server = TestServer::start_with(|config| config.max_message_bytes = 64 * 1024).await;
    let mut client = server.agreements();
    let request = v1::AnnounceRequest {
        source: "s".repeat(100 * 1024),
        ..announce_boeing("big")
    };
    let result = client.announce(request).await;
    assert_refused(
        &server,
        result,
        Code::InvalidArgument,
        "message length too large",
    )
    .await;
    client
        .announce(announce_boeing("small"))
        .await
        .expect("still serving");
    server.stop().await;
}

#[tokio::test]
async fn commands_on_unknown_agreements_are_not_found_naming_the_id() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    let result = client.sign(sign("nowhere")).await;
    assert_refused(&server, result, Code::NotFound, "nowhere").await;
    let result = client.record_delivery(deliver("nowhere", "d", 1)).await;
    assert_refused(&server, result, Code::NotFound, "nowhere").await;
    let result = client.record_localization(localize("nowhere", "l")).await;
    assert_refused(&server, result, Code::NotFound, "nowhere").await;
    server.stop().await;
}

#[tokio::test]
async fn duplicates_are_already_exists_naming_the_id() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    client
        .announce(announce_boeing("uz-boeing-787"))
        .await
        .expect("announced");
    let mut again = announce_boeing("uz-boeing-787");
    again.meta = meta("another command id");
    let result = client.announce(again).await;
    assert_refused(&server, result, Code::AlreadyExists, "uz-boeing-787").await;
    // The same command id for a different command.
    let mut reused = announce_wabtec("kz");
    reused.meta = meta("uz-boeing-787/announce");
    let result = client.announce(reused).await;
    assert_refused(
        &server,
        result,
        Code::AlreadyExists,
        "uz-boeing-787/announce",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn a_wrong_expected_version_is_aborted_naming_both_versions() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    client
        .announce(announce_wabtec("kz"))
        .await
        .expect("announced");
    let mut stale = sign("kz");
    stale.meta = meta_expecting("kz/sign", 3);
    let result = client.sign(stale).await;
    assert_refused(
        &server,
        result,
        Code::Aborted,
        "expected version 3, actual version 1",
    )
    .await;
    let mut no_stream = announce_boeing("kz");
    no_stream.meta = Some(v1::CommandMeta {
        command_id: "explicit".into(),
        expected_version: Some(v1::ExpectedVersion {
            kind: Some(v1::expected_version::Kind::Exact(7)),
        }),
        ..Default::default()
    });
    let result = client.announce(no_stream).await;
    assert_refused(
        &server,
        result,
        Code::Aborted,
        "expected version 7, actual version 1",
    )
    .await;
    let mut right = sign("kz");
    right.meta = meta_expecting("kz/sign", 1);
    client
        .sign(right)
        .await
        .expect("the right expectation passes");
    server.stop().await;
}

#[tokio::test]
async fn lifecycle_violations_are_failed_precondition_naming_stage_and_rule() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    client
        .announce(announce_wabtec("kz"))
        .await
        .expect("announced");
    let result = client.record_delivery(deliver("kz", "early", 1)).await;
    assert_refused(
        &server,
        result,
        Code::FailedPrecondition,
        "AGREEMENT_STAGE_ANNOUNCED",
    )
    .await;
    let result = client
        .record_localization(localize("kz", "early-loc"))
        .await;
    assert_refused(
        &server,
        result,
        Code::FailedPrecondition,
        "once the agreement is signed",
    )
    .await;
    client.sign(sign("kz")).await.expect("signed");
    let mut twice = sign("kz");
    twice.meta = meta("sign again");
    let result = client.sign(twice).await;
    assert_refused(
        &server,
        result,
        Code::FailedPrecondition,
        "signed only once",
    )
    .await;
    client
        .record_delivery(deliver("kz", "d1", 299))
        .await
        .expect("delivered");
    let result = client.record_delivery(deliver("kz", "d2", 2)).await;
    assert_refused(
        &server,
        result,
        Code::FailedPrecondition,
        "299 of 300 delivered",
    )
    .await;

    let mut no_quantity = announce_boeing("protocol");
    no_quantity.quantity = None;
    client.announce(no_quantity).await.expect("announced");
    client.sign(sign("protocol")).await.expect("signed");
    let result = client.record_delivery(deliver("protocol", "d3", 1)).await;
    assert_refused(
        &server,
        result,
        Code::FailedPrecondition,
        "contracted quantity",
    )
    .await;
    server.stop().await;
}

#[tokio::test]
async fn execute_rejections_name_the_command_and_append_nothing() {
    let server = TestServer::start_with(|config| config.max_execute_commands = 3).await;
    let mut client = server.agreements();
    let status = client
        .execute(v1::ExecuteRequest { commands: vec![] })
        .await
        .expect_err("empty");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("commands"),
        "{}",
        status.message()
    );

    let status = client
        .execute(v1::ExecuteRequest {
            commands: (0..4)
                .map(|index| command(Wire::Announce(announce_boeing(&format!("a{index}")))))
                .collect(),
        })
        .await
        .expect_err("too many");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert!(
        status.message().contains("limit is 3"),
        "{}",
        status.message()
    );

    let mut bad = announce_wabtec("kz");
    bad.title = String::new();
    let status = client
        .execute(v1::ExecuteRequest {
            commands: vec![
                command(Wire::Announce(announce_boeing("a"))),
                command(Wire::Announce(bad)),
            ],
        })
        .await
        .expect_err("invalid second command");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("commands[1].title"),
        "{}",
        status.message()
    );

    let status = client
        .execute(v1::ExecuteRequest {
            commands: vec![
                command(Wire::Announce(announce_boeing("a"))),
                command(Wire::Announce(announce_boeing("a"))),
            ],
        })
        .await
        .expect_err("same command id twice");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("commands[1].meta.command_id"),
        "{}",
        status.message()
    );

    let status = client
        .execute(v1::ExecuteRequest {
            commands: vec![v1::Command { command: None }],
        })
        .await
        .expect_err("no command");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(server.head().await, 0);
    server.stop().await;
}

#[tokio::test]
async fn reads_reject_bad_filters_and_unknown_agreements() {
    let server = TestServer::start().await;
    let mut log = server.event_log();
    let status = log
        .read_log(v1::ReadLogRequest {
            filter: Some(v1::SubscriptionFilter {
                event_types: vec!["agreement.exploded".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("unknown event type");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(
        status.message().contains("filter.event_types[0]"),
        "{}",
        status.message()
    );
    let status = log
        .read_log(v1::ReadLogRequest {
            filter: Some(v1::SubscriptionFilter {
                countries: vec!["Uzbekistan".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect_err("bad country");
    assert_eq!(status.code(), Code::InvalidArgument);
    let status = log
        .read_agreement_history(v1::ReadAgreementHistoryRequest {
            agreement_id: "nowhere".into(),
            from_version: 0,
        })
        .await
        .expect_err("unknown");
    assert_eq!(status.code(), Code::NotFound);
    assert!(status.message().contains("nowhere"));
    server.stop().await;
}
