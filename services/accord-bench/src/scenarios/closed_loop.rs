//! The shape `append` and `batch` share: a fresh server, N clients on their
//! own agreements over a few pooled connections, each issuing its next call
//! as soon as the last one returns, until the time is up.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use accord_proto::v1::agreement_service_client::AgreementServiceClient;
use tonic::transport::Channel;

use crate::group_commits::CommitMetrics;
use crate::process::{Backend, LoadGeneratorCpu, ServerProcess, Target};
use crate::report::{Outcome, join_clients, latency_histogram};
use crate::workload::{connect_many, prepare};

/// Connections the clients share, as a client library would pool them.
const CONNECTIONS: usize = 4;

/// Runs `call(client, agreement_id, first_sequence)` in a loop per client;
/// each call returns how many events it appended.
pub(crate) async fn run<Call, Calling>(
    target: &Target,
    name: &str,
    clients: usize,
    duration: Duration,
    extra: BTreeMap<String, f64>,
    call: Call,
) -> Result<Outcome, String>
where
    Call:
        Fn(AgreementServiceClient<Channel>, String, u64) -> Calling + Clone + Send + Sync + 'static,
    Calling: Future<Output = Result<u64, String>> + Send,
{
    let client = move |agreements: AgreementServiceClient<Channel>,
                       agreement_id: String,
                       deadline: Instant| {
        let call = call.clone();
        async move {
            let mut latency = latency_histogram();
            let mut sequence = 0;
            while Instant::now() < deadline {
                let sent = Instant::now();
                sequence += call(agreements.clone(), agreement_id.clone(), sequence).await?;
                latency.saturating_record(sent.elapsed().as_micros() as u64);
            }
            Ok::<_, String>((sequence, latency))
        }
    };
    run_clients(target, name, clients, duration, extra, client).await
}

/// Runs `client(agreements, agreement_id, deadline)` once per client, each
/// on its own agreement; each returns the events it appended and their
/// latencies.
pub(crate) async fn run_clients<Client, Running>(
    target: &Target,
    name: &str,
    clients: usize,
    duration: Duration,
    extra: BTreeMap<String, f64>,
    client: Client,
) -> Result<Outcome, String>
where
    Client: Fn(AgreementServiceClient<Channel>, String, Instant) -> Running,
    Running: Future<Output = Result<(u64, hdrhistogram::Histogram<u64>), String>> + Send + 'static,
{
    let data_dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let server = ServerProcess::start(target, data_dir.path()).await?;
    let channels = connect_many(server.grpc_addr(), CONNECTIONS).await?;
    for index in 0..clients {
        prepare(&channels[index % CONNECTIONS], &format!("{name}-{index}")).await?;
    }
    let groups_before = CommitMetrics::parse(&server.metrics().await?);
    let cpu_before = server.cpu_seconds();
    let nats_cpu_before = server.nats_cpu_seconds();
    let load_cpu = LoadGeneratorCpu::start();
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for index in 0..clients {
        let agreements = AgreementServiceClient::new(channels[index % CONNECTIONS].clone());
        tasks.push(tokio::spawn(client(
            agreements,
            format!("{name}-{index}"),
            deadline,
        )));
    }
    let (events, latency_us) = join_clients(tasks).await?;
    let elapsed = started.elapsed();
    let server_cpu_seconds = server.cpu_seconds() - cpu_before;
    let mut extra = extra;
    load_cpu.record(&mut extra);
    let groups = CommitMetrics::parse(&server.metrics().await?).since(&groups_before);
    extra.extend(groups.figures());
    if target.backend != Backend::Sled {
        extra.insert(
            "nats_cpu_seconds".into(),
            server.nats_cpu_seconds() - nats_cpu_before,
        );
    }
    // Every client announced and signed its agreement before the clock started.
    let total_events = events + 2 * clients as u64;
    let outcome = Outcome {
        events,
        elapsed,
        latency_us,
        server_cpu_seconds,
        peak_rss_bytes: server.peak_rss_bytes(),
        bytes_per_event: server.log_bytes() as f64 / total_events as f64,
        extra,
    };
    server.stop().await?;
    Ok(outcome)
}
