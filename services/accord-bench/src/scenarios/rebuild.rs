//! `rebuild`: fills a log with M events through the server, stops it,
//! deletes the read models and starts it again; measures how fast the
//! projector rebuilds them from the log (from process start to lag 0).

use std::collections::BTreeMap;
use std::time::Instant;

use accord_proto::v1::{self, admin_client::AdminClient};

use tokio_stream::StreamExt;

use crate::process::{ServerProcess, Target};
use crate::report::{Outcome, latency_histogram};
use crate::workload::{connect_many, fill, read_models_at_head};

pub(crate) async fn run(target: &Target, events: usize) -> Result<Outcome, String> {
    let data_dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let server = ServerProcess::start(target, data_dir.path()).await?;
    let fill_started = Instant::now();
    let agreements = fill(server.grpc_addr(), events).await?;
    let fill_seconds = fill_started.elapsed().as_secs_f64();
    server.stop().await?;
    std::fs::remove_dir_all(data_dir.path().join("read-models"))
        .map_err(|error| error.to_string())?;
    let log_bytes = crate::process::directory_bytes(&data_dir.path().join("log"));

    let started = Instant::now();
    let server = ServerProcess::start(target, data_dir.path()).await?;
    let mut admin = AdminClient::new(connect_many(server.grpc_addr(), 1).await?.remove(0));
    let head = read_models_at_head(&mut admin).await?;
    let elapsed = started.elapsed();

    // The operator's view of the same log: VerifyLog and RebuildProjections.
    let verify_started = Instant::now();
    let mut verify = admin
        .verify_log(v1::VerifyLogRequest {})
        .await
        .map_err(|status| status.to_string())?
        .into_inner();
    while let Some(progress) = verify.next().await {
        let progress = progress.map_err(|status| status.to_string())?;
        if progress.done && !progress.problems.is_empty() {
            return Err(format!("verify found problems: {:?}", progress.problems));
        }
    }
    let verify_seconds = verify_started.elapsed().as_secs_f64();
    let rebuild_started = Instant::now();
    let mut rebuild = admin
        .rebuild_projections(v1::RebuildProjectionsRequest { names: Vec::new() })
        .await
        .map_err(|status| status.to_string())?
        .into_inner();
    while let Some(progress) = rebuild.next().await {
        progress.map_err(|status| status.to_string())?;
    }
    let rebuild_rpc_seconds = rebuild_started.elapsed().as_secs_f64();

    // Reading the whole log back over gRPC, as a client would.
    let read_started = Instant::now();
    let mut reading = v1::event_log_client::EventLogClient::new(
        connect_many(server.grpc_addr(), 1).await?.remove(0),
    )
    .read_log(v1::ReadLogRequest {
        from_position: 1,
        ..Default::default()
    })
    .await
    .map_err(|status| status.to_string())?
    .into_inner();
    let mut read = 0u64;
    while let Some(event) = reading.next().await {
        event.map_err(|status| status.to_string())?;
        read += 1;
    }
    let read_log_events_per_sec = read as f64 / read_started.elapsed().as_secs_f64();
    if read != head {
        return Err(format!("ReadLog read {read} of {head} events"));
    }

    let outcome = Outcome {
        events: head,
        elapsed,
        latency_us: latency_histogram(),
        server_cpu_seconds: server.cpu_seconds(),
        peak_rss_bytes: server.peak_rss_bytes(),
        bytes_per_event: log_bytes as f64 / head as f64,
        extra: BTreeMap::from([
            ("agreements".to_owned(), agreements as f64),
            ("fill_events_per_sec".to_owned(), head as f64 / fill_seconds),
            ("verify_seconds".to_owned(), verify_seconds),
            ("rebuild_rpc_seconds".to_owned(), rebuild_rpc_seconds),
            (
                "read_log_events_per_sec".to_owned(),
                read_log_events_per_sec,
            ),
        ]),
    };
    server.stop().await?;
    Ok(outcome)
}
