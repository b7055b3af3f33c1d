//! `batch`: N clients, `Execute` with K commands per RPC.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use accord_proto::v1::{self, agreement_service_client::AgreementServiceClient};

use crate::process::ServerProcess;
use crate::report::{Outcome, latency_histogram};
use crate::workload::{connect_many, deliver, prepare};

const CONNECTIONS: usize = 4;

pub(crate) async fn run(
    binary: &Path,
    clients: usize,
    batch_size: usize,
    duration: Duration,
) -> Result<Outcome, String> {
    let data_dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let server = ServerProcess::start(binary, data_dir.path()).await?;
    let channels = connect_many(server.grpc_addr(), CONNECTIONS).await?;
    for client in 0..clients {
        prepare(&channels[client % CONNECTIONS], &format!("batch-{client}")).await?;
    }
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for client in 0..clients {
        let mut agreements = AgreementServiceClient::new(channels[client % CONNECTIONS].clone());
        tasks.push(tokio::spawn(async move {
            let agreement_id = format!("batch-{client}");
            let mut latency = latency_histogram();
            let mut sequence = 0u64;
            while Instant::now() < deadline {
                let commands = (0..batch_size as u64)
                    .map(|offset| v1::Command {
                        command: Some(v1::command::Command::RecordDelivery(deliver(
                            &agreement_id,
                            sequence + offset,
                        ))),
                    })
                    .collect();
                let sent = Instant::now();
                agreements
                    .execute(v1::ExecuteRequest { commands })
                    .await
                    .map_err(|status| status.to_string())?;
                latency.saturating_record(sent.elapsed().as_micros() as u64);
                sequence += batch_size as u64;
            }
            Ok::<_, String>((sequence, latency))
        }));
    }
    let mut events = 0;
    let mut latency_us = latency_histogram();
    for task in tasks {
        let (appended, latency) = task.await.map_err(|error| error.to_string())??;
        events += appended;
        latency_us.add(latency).map_err(|error| error.to_string())?;
    }
    let elapsed = started.elapsed();
    let server_cpu_seconds = server.cpu_seconds() - cpu_before;
    let total_events = events + 2 * clients as u64;
    let outcome = Outcome {
        events,
        elapsed,
        latency_us,
        server_cpu_seconds,
        peak_rss_bytes: server.peak_rss_bytes(),
        bytes_per_event: server.log_bytes() as f64 / total_events as f64,
        extra: BTreeMap::from([
            ("clients".to_owned(), clients as f64),
            ("commands_per_execute".to_owned(), batch_size as f64),
        ]),
    };
    server.stop().await?;
    Ok(outcome)
}
