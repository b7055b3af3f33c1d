//! Commands through the real server: the lifecycle, Execute, idempotency and races.

use accord_proto::v1::{self, command::Command as Wire};
use accord_tests::*;
use tonic::Code;

#[tokio::test]
async fn the_boeing_order_is_announced_signed_delivered_and_localized() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    let announced = client
        .announce(announce_boeing("uz-boeing-787"))
        .await
        .expect("announced")
        .into_inner();
    assert_eq!((announced.version, announced.position), (1, 1));
    assert!(!announced.duplicate);
    assert!(announced.recorded_at.is_some());

    let signed = client
        .sign(sign("uz-boeing-787"))
        .await
        .expect("signed")
        .into_inner();
    assert_eq!((signed.version, signed.position), (2, 2));
    let delivered = client
        .record_delivery(deliver("uz-boeing-787", "d1", 2))
        .await
        .expect("delivered")
        .into_inner();
    assert_eq!((delivered.version, delivered.position), (3, 3));
    let localized = client
        .record_localization(localize("uz-boeing-787", "l1"))
        .await
        .expect("localized")
        .into_inner();
    assert_eq!((localized.version, localized.position), (4, 4));
    let delivered_all = client
        .record_delivery(deliver("uz-boeing-787", "d2", 20))
        .await
        .expect("rest delivered")
        .into_inner();
    assert_eq!(delivered_all.version, 5);
    // Localization may still be recorded once everything is delivered.
    client
        .record_localization(localize("uz-boeing-787", "l2"))
        .await
        .expect("localized again");

    let types: Vec<String> = server
        .read_all()
        .await
        .into_iter()
        .map(|event| event.event_type)
        .collect();
    assert_eq!(
        types,
        [
            "agreement.announced",
            "agreement.signed",
            "agreement.delivery_recorded",
            "agreement.localization_recorded",
            "agreement.delivery_recorded",
            "agreement.localization_recorded",
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn positions_are_global_and_versions_per_agreement() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    client.announce(announce_boeing("a")).await.expect("a");
    client.announce(announce_wabtec("b")).await.expect("b");
    let signed_a = client.sign(sign("a")).await.expect("sign a").into_inner();
    let signed_b = client.sign(sign("b")).await.expect("sign b").into_inner();
    assert_eq!((signed_a.position, signed_a.version), (3, 2));
    assert_eq!((signed_b.position, signed_b.version), (4, 2));
    server.stop().await;
}

#[tokio::test]
async fn execute_appends_a_whole_lifecycle_in_one_call() {
    let server = TestServer::start().await;
    let response = server
        .agreements()
        .execute(v1::ExecuteRequest {
            commands: vec![
                command(Wire::Announce(announce_wabtec("kz-wabtec-locomotives"))),
                command(Wire::Sign(sign("kz-wabtec-locomotives"))),
                command(Wire::RecordLocalization(localize(
                    "kz-wabtec-locomotives",
                    "loc-1",
                ))),
                command(Wire::Announce(announce_boeing("uz-boeing-787"))),
            ],
        })
        .await
        .expect("executed")
        .into_inner();
    let placed: Vec<(String, u64, u64)> = response
        .results
        .iter()
        .map(|result| (result.agreement_id.clone(), result.version, result.position))
        .collect();
    assert_eq!(
        placed,
        [
            ("kz-wabtec-locomotives".to_string(), 1, 1),
            ("kz-wabtec-locomotives".to_string(), 2, 2),
            ("kz-wabtec-locomotives".to_string(), 3, 3),
            ("uz-boeing-787".to_string(), 1, 4),
        ]
    );
    server.stop().await;
}

#[tokio::test]
async fn execute_is_all_or_nothing() {
    let server = TestServer::start().await;
    let error = server
        .agreements()
        .execute(v1::ExecuteRequest {
            commands: vec![
                command(Wire::Announce(announce_wabtec("kz"))),
                command(Wire::Sign(sign("kz"))),
                // Over-delivery: 301 of 300.
                command(Wire::RecordDelivery(deliver("kz", "too-many", 301))),
            ],
        })
        .await
        .expect_err("refused");
    assert_eq!(error.code(), Code::FailedPrecondition, "{error:?}");
    assert_eq!(server.head().await, 0, "nothing was appended");
    assert!(server.read_all().await.is_empty());
    // The same commands without the bad one go through, so nothing was half-applied.
    server
        .agreements()
        .execute(v1::ExecuteRequest {
            commands: vec![
                command(Wire::Announce(announce_wabtec("kz"))),
                command(Wire::Sign(sign("kz"))),
            ],
        })
        .await
        .expect("executed");
    assert_eq!(server.head().await, 2);
    server.stop().await;
}

#[tokio::test]
async fn a_retried_command_returns_the_original_result_marked_duplicate() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    let original = client
        .announce(announce_boeing("uz-boeing-787"))
        .await
        .expect("announced")
        .into_inner();
    client.sign(sign("uz-boeing-787")).await.expect("signed");
    // The retry arrives after the agreement moved on; it is still the same command.
    let retry = client
        .announce(announce_boeing("uz-boeing-787"))
        .await
        .expect("duplicate")
        .into_inner();
    assert!(retry.duplicate);
    assert_eq!(
        (
            retry.agreement_id,
            retry.version,
            retry.position,
            retry.recorded_at
        ),
        (
            original.agreement_id,
            original.version,
            original.position,
            original.recorded_at
        )
    );
    assert_eq!(server.head().await, 2, "the retry appended nothing");
    server.stop().await;
}

#[tokio::test]
async fn a_retry_inside_execute_appends_only_the_new_commands() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    client
        .announce(announce_boeing("a"))
        .await
        .expect("announced");
    let response = client
        .execute(v1::ExecuteRequest {
            commands: vec![
                command(Wire::Announce(announce_boeing("a"))),
                command(Wire::Sign(sign("a"))),
            ],
        })
        .await
        .expect("executed")
        .into_inner();
    assert!(response.results[0].duplicate);
    assert_eq!(response.results[0].position, 1);
    assert!(!response.results[1].duplicate);
    assert_eq!(response.results[1].position, 2);
    server.stop().await;
}

#[tokio::test]
async fn idempotency_survives_a_restart() {
    let mut server = TestServer::start().await;
    let original = server
        .agreements()
        .announce(announce_boeing("uz-boeing-787"))
        .await
        .expect("announced")
        .into_inner();
    server.restart().await;
    let retry = server
        .agreements()
        .announce(announce_boeing("uz-boeing-787"))
        .await
        .expect("duplicate after restart")
        .into_inner();
    assert!(retry.duplicate);
    assert_eq!(retry.position, original.position);
    assert_eq!(retry.recorded_at, original.recorded_at);
    let mut other = announce_wabtec("kz");
    other.meta = meta("uz-boeing-787/announce");
    let error = server
        .agreements()
        .announce(other)
        .await
        .expect_err("reused id");
    assert_eq!(error.code(), Code::AlreadyExists);
    assert_eq!(server.head().await, 1);
    server.stop().await;
}

#[tokio::test]
async fn thirty_two_racers_on_one_version_have_exactly_one_winner() {
    let server = TestServer::start().await;
    server
        .agreements()
        .announce(announce_wabtec("kz"))
        .await
        .expect("announced");
    server.agreements().sign(sign("kz")).await.expect("signed");
    let mut racers = Vec::new();
    for index in 0..32 {
        let mut client = server.agreements();
        racers.push(tokio::spawn(async move {
            let mut request = deliver("kz", &format!("racer-{index}"), 1);
            request.meta = meta_expecting(&format!("racer-{index}"), 2);
            client.record_delivery(request).await
        }));
    }
    let mut winners = 0;
    for racer in racers {
        match racer.await.expect("joins") {
            Ok(result) => {
                winners += 1;
                assert_eq!(result.into_inner().version, 3);
            }
            Err(status) => {
                assert_eq!(status.code(), Code::Aborted, "{status:?}");
                assert!(
                    status
                        .message()
                        .contains("expected version 2, actual version 3"),
                    "{}",
                    status.message()
                );
            }
        }
    }
    assert_eq!(winners, 1);
    assert_eq!(server.head().await, 3);
    server.stop().await;
}

#[tokio::test]
async fn concurrent_writers_without_expectations_all_succeed_in_order() {
    let server = TestServer::start().await;
    server
        .agreements()
        .announce(announce_wabtec("kz"))
        .await
        .expect("announced");
    server.agreements().sign(sign("kz")).await.expect("signed");
    let mut writers = Vec::new();
    for index in 0..40 {
        let mut client = server.agreements();
        writers.push(tokio::spawn(async move {
            client
                .record_delivery(deliver("kz", &format!("w-{index}"), 1))
                .await
        }));
    }
    for writer in writers {
        writer.await.expect("joins").expect("appended");
    }
    let versions: Vec<u64> = server
        .read_all()
        .await
        .iter()
        .map(|event| event.version)
        .collect();
    assert_eq!(versions, (1..=42).collect::<Vec<_>>());
    server.stop().await;
}
