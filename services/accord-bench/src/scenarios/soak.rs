//! `soak`: single appends from many clients for a long time (the `append`
//! workload), the server's resident memory sampled as the log grows; then
//! how long the server takes to open that log, after a clean stop and
//! after SIGKILL, and how much memory it idles in once open. Says whether
//! the server's cost grows with its log.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use accord_proto::v1::GetStatsRequest;
use accord_proto::v1::admin_client::AdminClient;
use accord_proto::v1::agreement_service_client::AgreementServiceClient;

use crate::process::{ServerProcess, Target};
use crate::report::{Outcome, join_clients, latency_histogram};
use crate::workload::{connect_many, deliver, prepare};

const CONNECTIONS: usize = 4;
/// Seconds between two samples of the server's memory.
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Seconds an opened server is left idle before its memory is read.
const IDLE_FOR: Duration = Duration::from_secs(5);

pub(crate) async fn run(
    target: &Target,
    clients: usize,
    duration: Duration,
    crash_first: bool,
) -> Result<Outcome, String> {
    let data_dir = tempfile::tempdir_in("/var/tmp").map_err(|error| error.to_string())?;
    let server = ServerProcess::start(target, data_dir.path()).await?;
    let channels = connect_many(server.grpc_addr(), CONNECTIONS).await?;
    for index in 0..clients {
        prepare(&channels[index % CONNECTIONS], &format!("soak-{index}")).await?;
    }
    let mut admin = AdminClient::new(channels[0].clone());
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for index in 0..clients {
        let agreements = AgreementServiceClient::new(channels[index % CONNECTIONS].clone());
        let agreement_id = format!("soak-{index}");
        tasks.push(tokio::spawn(async move {
            let mut latency = latency_histogram();
            let mut sequence = 0;
            while Instant::now() < deadline {
                let sent = Instant::now();
                agreements
                    .clone()
                    .record_delivery(deliver(&agreement_id, sequence))
                    .await
                    .map_err(|status| status.to_string())?;
                sequence += 1;
                latency.saturating_record(sent.elapsed().as_micros() as u64);
            }
            Ok::<_, String>((sequence, latency))
        }));
    }
    // (events in the log, resident bytes) along the way.
    let mut samples: Vec<(u64, u64)> = Vec::new();
    while Instant::now() + SAMPLE_EVERY < deadline {
        tokio::time::sleep(SAMPLE_EVERY).await;
        samples.push((head(&mut admin).await?, server.rss_bytes()));
    }
    let (events, latency_us) = join_clients(tasks).await?;
    let elapsed = started.elapsed();
    let server_cpu_seconds = server.cpu_seconds() - cpu_before;
    let peak_rss_bytes = server.peak_rss_bytes();
    let log_head = head(&mut admin).await?;
    let bytes_per_event = server.log_bytes() as f64 / log_head as f64;
    drop(admin);
    drop(channels);
    // How the run ends: SIGKILL under load (the next open derives the
    // index tail again) or a clean stop.
    if crash_first {
        server.kill().await?;
    } else {
        server.stop().await?;
    }

    let mut extra = BTreeMap::from([
        ("clients".to_owned(), clients as f64),
        ("log_events".to_owned(), log_head as f64),
    ]);
    // Growth once the caches are full: from the sample at a quarter of the
    // run to the last, in MiB per million events.
    if let (Some(quarter), Some(last)) = (samples.get(samples.len() / 4), samples.last())
        && last.0 > quarter.0
    {
        let grown = last.1 as f64 - quarter.1 as f64;
        let per_million = grown / 1_048_576.0 / ((last.0 - quarter.0) as f64 / 1e6);
        extra.insert("rss_growth_mib_per_million_events".into(), per_million);
        extra.insert("rss_at_quarter_mib".into(), quarter.1 as f64 / 1_048_576.0);
        extra.insert("rss_at_end_mib".into(), last.1 as f64 / 1_048_576.0);
    }

    // Open after the run's end, idle, stop cleanly; open again, idle, stop.
    // sled 0.34 writes its snapshot only at open, so the first open reads
    // every segment the run wrote, however the run ended; the second one
    // only what the first open's session wrote.
    let first = if crash_first { "sigkill" } else { "clean_stop" };
    for name in [first, "reopen"] {
        let opening = Instant::now();
        let server = ServerProcess::start(target, data_dir.path()).await?;
        let mut admin = AdminClient::new(connect_many(server.grpc_addr(), 1).await?.remove(0));
        let reopened = head(&mut admin).await?;
        let open_seconds = opening.elapsed().as_secs_f64();
        if reopened != log_head {
            return Err(format!("reopened at {reopened}, not {log_head}"));
        }
        tokio::time::sleep(IDLE_FOR).await;
        extra.insert(format!("open_after_{name}_seconds"), open_seconds);
        extra.insert(
            format!("idle_rss_after_{name}_mib"),
            server.rss_bytes() as f64 / 1_048_576.0,
        );
        drop(admin);
        server.stop().await?;
    }
    Ok(Outcome {
        events,
        elapsed,
        latency_us,
        server_cpu_seconds,
        peak_rss_bytes,
        bytes_per_event,
        extra,
    })
}

async fn head(admin: &mut AdminClient<tonic::transport::Channel>) -> Result<u64, String> {
    Ok(admin
        .get_stats(GetStatsRequest {})
        .await
        .map_err(|status| status.to_string())?
        .into_inner()
        .head_position)
}
