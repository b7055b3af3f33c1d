//! What operators and platforms see: health, reflection, metrics, shutdown.

use std::time::Duration;

use accord_tests::*;
use tokio_stream::StreamExt;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

#[tokio::test]
async fn health_is_serving_once_ready_and_not_serving_on_shutdown() {
    let server = TestServer::start().await;
    let mut health = HealthClient::new(server.channel());
    for service in [
        "",
        "accord.v1.AgreementService",
        "accord.v1.EventLog",
        "accord.v1.Admin",
        "accord.v1.ConsumerGroups",
    ] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .expect("check")
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }
    let mut watch = health
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("watch")
        .into_inner();
    let first = watch.next().await.expect("a status").expect("ok");
    assert_eq!(first.status, ServingStatus::Serving as i32);
    let stopping = tokio::spawn(server.stop());
    let next = tokio::time::timeout(Duration::from_secs(10), watch.next())
        .await
        .expect("a status change arrives")
        .expect("a status")
        .expect("ok");
    assert_eq!(next.status, ServingStatus::NotServing as i32);
    stopping.await.expect("stops");
}

#[tokio::test]
async fn reflection_lists_every_service_in_v1_and_v1alpha() {
    use tonic_reflection::pb::{v1 as reflection, v1alpha as reflection_alpha};
    let server = TestServer::start().await;

    let mut client =
        reflection::server_reflection_client::ServerReflectionClient::new(server.channel());
    let request = reflection::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            reflection::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let mut responses = client
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection v1")
        .into_inner();
    let response = responses.next().await.expect("a response").expect("ok");
    let Some(reflection::server_reflection_response::MessageResponse::ListServicesResponse(list)) =
        response.message_response
    else {
        panic!("unexpected response");
    };
    let names: Vec<String> = list
        .service
        .into_iter()
        .map(|service| service.name)
        .collect();
    for expected in [
        "accord.v1.AgreementService",
        "accord.v1.EventLog",
        "accord.v1.Admin",
        "grpc.health.v1.Health",
    ] {
        assert!(
            names.iter().any(|name| name == expected),
            "{expected} in {names:?}"
        );
    }

    let mut alpha =
        reflection_alpha::server_reflection_client::ServerReflectionClient::new(server.channel());
    let request = reflection_alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            reflection_alpha::server_reflection_request::MessageRequest::FileContainingSymbol(
                "accord.v1.AgreementService".into(),
            ),
        ),
    };
    let mut responses = alpha
        .server_reflection_info(tokio_stream::iter(vec![request]))
        .await
        .expect("reflection v1alpha")
        .into_inner();
    let response = responses.next().await.expect("a response").expect("ok");
    assert!(matches!(
        response.message_response,
        Some(
            reflection_alpha::server_reflection_response::MessageResponse::FileDescriptorResponse(
                _
            )
        )
    ));
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_appends_commits_and_rpcs_by_code() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    client
        .announce(announce_boeing("a"))
        .await
        .expect("announced");
    client.sign(sign("nowhere")).await.expect_err("not found");
    let text = scrape_metrics(server.server().metrics_addr()).await;
    assert!(text.contains("accord_appended_events_total 1"), "{text}");
    assert!(
        text.contains("accord_group_commit_events_count 1"),
        "{text}"
    );
    assert!(text.contains("accord_fsync_seconds_count 1"), "{text}");
    // One event's group: its record's block, the Merkle tree's last tile,
    // the agreement counter and the checkpoint; its index entries wait in
    // the tail for a full window.
    assert!(text.contains("accord_log_store_writes_total 4"), "{text}");
    assert!(
        text.contains(r#"accord_rpc_duration_seconds_count{method="/accord.v1.AgreementService/Announce",code="OK"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"accord_rpc_duration_seconds_count{method="/accord.v1.AgreementService/Sign",code="NOT_FOUND"} 1"#),
        "{text}"
    );
    server.stop().await;
}
