//! The server as a real process: killed with SIGKILL under load it loses no
//! acknowledged event; stopped with SIGTERM it exits 0 with everything flushed.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use accord_proto::v1::agreement_service_client::AgreementServiceClient;
use accord_proto::v1::event_log_client::EventLogClient;
use accord_tests::child::ChildServer;
use accord_tests::*;

const SERVER: &str = env!("CARGO_BIN_EXE_accord-server-under-test");

/// What a client was told: command id -> (position, agreement, version).
type Acknowledged = Arc<Mutex<HashMap<String, (u64, String, u64)>>>;

#[tokio::test]
async fn sigkill_under_load_loses_no_acknowledged_event() {
    let data_dir = tempfile::tempdir().expect("data dir");
    let server = ChildServer::start(Path::new(SERVER), data_dir.path()).await;
    let acknowledged: Acknowledged = Arc::default();
    let (enough_sender, mut enough) = tokio::sync::watch::channel(0usize);
    let enough_sender = Arc::new(enough_sender);

    let mut clients = Vec::new();
    for client_index in 0..8 {
        let channel = connect(server.grpc_addr()).await;
        let acknowledged = acknowledged.clone();
        let enough_sender = enough_sender.clone();
        clients.push(tokio::spawn(async move {
            let mut client = AgreementServiceClient::new(channel);
            let agreement_id = format!("load-{client_index}");
            let mut announce = announce_wabtec(&agreement_id);
            announce.quantity = Some(1_000_000);
            if client.announce(announce).await.is_err() {
                return;
            }
            if client.sign(sign(&agreement_id)).await.is_err() {
                return;
            }
            // Bounded: the kill comes long before this runs out.
            for delivery in 0..100_000 {
                let command_id = format!("{agreement_id}/d{delivery}");
                match client
                    .record_delivery(deliver(&agreement_id, &command_id, 1))
                    .await
                {
                    Ok(result) => {
                        let result = result.into_inner();
                        let mut acknowledged = acknowledged.lock().expect("lock");
                        acknowledged.insert(
                            command_id,
                            (result.position, result.agreement_id, result.version),
                        );
                        enough_sender.send_replace(acknowledged.len());
                    }
                    // The server is gone: stop this client.
                    Err(_) => return,
                }
            }
        }));
    }
    enough
        .wait_for(|count| *count >= 2_000)
        .await
        .expect("load runs");
    server.kill().await;
    for client in clients {
        client.await.expect("client task ends");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() >= 2_000);

    let restarted = ChildServer::start(Path::new(SERVER), data_dir.path()).await;
    let events = read_all(EventLogClient::new(connect(restarted.grpc_addr()).await)).await;
    assert_gap_free(&events, "after SIGKILL");
    let by_command = events_by_command(&events);
    assert_eq!(by_command.len(), events.len(), "no command recorded twice");
    for (command_id, (position, agreement_id, version)) in &acknowledged {
        let event = by_command
            .get(command_id.as_str())
            .unwrap_or_else(|| panic!("acknowledged {command_id} lost"));
        assert_eq!(
            (event.position, &event.agreement_id, event.version),
            (*position, agreement_id, *version)
        );
    }
    // Versions of each agreement are gap-free from 1 too.
    let mut last_version: HashMap<&str, u64> = HashMap::new();
    for event in &events {
        let last = last_version.entry(event.agreement_id.as_str()).or_default();
        assert_eq!(
            event.version,
            *last + 1,
            "versions of {} are gap-free",
            event.agreement_id
        );
        *last = event.version;
    }
    // The restarted server keeps appending where the log ended.
    let mut client = AgreementServiceClient::new(connect(restarted.grpc_addr()).await);
    let next = client
        .announce(announce_boeing("after-crash"))
        .await
        .expect("appends")
        .into_inner();
    assert_eq!(next.position, events.len() as u64 + 1);
    restarted.kill().await;
}

#[tokio::test]
async fn sigterm_drains_flushes_and_exits_zero() {
    let data_dir = tempfile::tempdir().expect("data dir");
    let server = ChildServer::start(Path::new(SERVER), data_dir.path()).await;
    let mut client = AgreementServiceClient::new(connect(server.grpc_addr()).await);
    client
        .announce(announce_boeing("uz-boeing-787"))
        .await
        .expect("announced");
    client.sign(sign("uz-boeing-787")).await.expect("signed");
    let status = server.terminate().await;
    assert!(status.success(), "exit status {status:?}");

    let restarted = ChildServer::start(Path::new(SERVER), data_dir.path()).await;
    let events = read_all(EventLogClient::new(connect(restarted.grpc_addr()).await)).await;
    assert_eq!(events.len(), 2);
    let status = restarted.terminate().await;
    assert!(status.success());
}

/// The signal handlers are in place before the server says it listens: a
/// SIGTERM the moment it is up is a graceful shutdown, never the default
/// action.
#[tokio::test]
async fn sigterm_the_moment_the_server_is_up_is_a_graceful_shutdown() {
    let data_dir = tempfile::tempdir().expect("data dir");
    for attempt in 0..10 {
        let server = ChildServer::start(Path::new(SERVER), data_dir.path()).await;
        let status = server.terminate().await;
        assert!(
            status.success(),
            "attempt {attempt}: exit status {status:?}"
        );
    }
}

#[tokio::test]
async fn a_second_server_on_the_same_data_directory_refuses_to_start() {
    let data_dir = tempfile::tempdir().expect("data dir");
    let server = ChildServer::start(Path::new(SERVER), data_dir.path()).await;
    let output = tokio::process::Command::new(SERVER)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--console-listen",
            "",
            "--data-dir",
        ])
        .arg(data_dir.path())
        .output()
        .await
        .expect("runs");
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(said.contains("in use by another process"), "{said}");
    server.kill().await;
}

#[tokio::test]
async fn read_models_after_sigkill_neither_double_count_nor_skip() {
    use accord_proto::v1;
    let data_dir = tempfile::tempdir().expect("data dir");
    let server = ChildServer::start(Path::new(SERVER), data_dir.path()).await;
    let (progress_sender, mut progress) = tokio::sync::watch::channel(0usize);
    let progress_sender = Arc::new(progress_sender);
    let mut writers = Vec::new();
    for writer in 0..4 {
        let channel = connect(server.grpc_addr()).await;
        let progress_sender = progress_sender.clone();
        writers.push(tokio::spawn(async move {
            let mut client = AgreementServiceClient::new(channel);
            let agreement_id = format!("kz-{writer}");
            let mut announce = announce_wabtec(&agreement_id);
            announce.quantity = Some(1_000_000);
            if client.announce(announce).await.is_err()
                || client.sign(sign(&agreement_id)).await.is_err()
            {
                return;
            }
            for delivery in 0..100_000 {
                let request = deliver(
                    &agreement_id,
                    &format!("{agreement_id}/{delivery}"),
                    1 + delivery % 3,
                );
                if client.record_delivery(request).await.is_err() {
                    return;
                }
                progress_sender.send_modify(|count| *count += 1);
            }
        }));
    }
    progress
        .wait_for(|count| *count >= 1_500)
        .await
        .expect("load runs");
    server.kill().await;
    for writer in writers {
        writer.await.expect("writer ends");
    }

    let restarted = ChildServer::start(Path::new(SERVER), data_dir.path()).await;
    let channel = connect(restarted.grpc_addr()).await;
    let events = read_all(EventLogClient::new(channel.clone())).await;
    let head = events.len() as u64;
    let mut delivered_by_agreement: HashMap<String, u64> = HashMap::new();
    for event in &events {
        if let Some(v1::recorded_event::Payload::DeliveryRecorded(delivery)) = &event.payload {
            *delivered_by_agreement
                .entry(event.agreement_id.clone())
                .or_default() += delivery.units;
        }
    }
    let mut client = AgreementServiceClient::new(channel);
    for (agreement_id, delivered) in &delivered_by_agreement {
        let view = client
            .get_agreement(v1::GetAgreementRequest {
                agreement_id: agreement_id.clone(),
                min_position: head,
                as_of_position: 0,
            })
            .await
            .expect("view")
            .into_inner();
        assert_eq!(
            view.delivered_units, *delivered,
            "{agreement_id} counted exactly once"
        );
    }
    let portfolio = client
        .get_country_portfolio(v1::GetCountryPortfolioRequest {
            country: "KZ".into(),
            min_position: head,
        })
        .await
        .expect("portfolio")
        .into_inner();
    assert_eq!(
        portfolio.delivered_units,
        delivered_by_agreement.values().sum::<u64>()
    );
    assert_eq!(
        portfolio.agreement_count,
        delivered_by_agreement.len() as u64
    );
    restarted.kill().await;
}
