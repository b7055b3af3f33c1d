//! `rebuild`: fills a log with M events through the server, stops it,
//! deletes the read models and starts it again; measures how fast the
//! projector rebuilds them from the log (from process start to lag 0).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use accord_proto::v1::{
    self, admin_client::AdminClient, agreement_service_client::AgreementServiceClient,
};

use tokio_stream::StreamExt;

use crate::process::{ServerProcess, Target};
use crate::report::{Outcome, latency_histogram};
use crate::workload::{announce, connect_many, deliver, sign};

const FILLERS: usize = 8;
/// Agreements per Execute: each announced, signed and delivered to 8 times.
const AGREEMENTS_PER_BATCH: usize = 100;
const EVENTS_PER_AGREEMENT: usize = 10;

pub(crate) async fn run(target: &Target, events: usize) -> Result<Outcome, String> {
    let data_dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let server = ServerProcess::start(target, data_dir.path()).await?;
    let channels = connect_many(server.grpc_addr(), FILLERS).await?;
    let batches = events.div_ceil(AGREEMENTS_PER_BATCH * EVENTS_PER_AGREEMENT);
    let fill_started = Instant::now();
    let mut fillers = Vec::new();
    for (filler, channel) in channels.iter().enumerate() {
        let mut client = AgreementServiceClient::new(channel.clone());
        fillers.push(tokio::spawn(async move {
            for batch in (filler..batches).step_by(FILLERS) {
                let mut commands = Vec::with_capacity(AGREEMENTS_PER_BATCH * EVENTS_PER_AGREEMENT);
                for agreement in 0..AGREEMENTS_PER_BATCH {
                    let id = format!("rebuild-{batch:06}-{agreement:03}");
                    commands.push(v1::command::Command::Announce(announce(&id)));
                    commands.push(v1::command::Command::Sign(sign(&id)));
                    for sequence in 0..(EVENTS_PER_AGREEMENT - 2) as u64 {
                        commands.push(v1::command::Command::RecordDelivery(deliver(&id, sequence)));
                    }
                }
                let commands = commands
                    .into_iter()
                    .map(|command| v1::Command {
                        command: Some(command),
                    })
                    .collect();
                client
                    .execute(v1::ExecuteRequest { commands })
                    .await
                    .map_err(|status| status.to_string())?;
            }
            Ok::<_, String>(())
        }));
    }
    for filler in fillers {
        filler.await.map_err(|error| error.to_string())??;
    }
    let fill_seconds = fill_started.elapsed().as_secs_f64();
    server.stop().await?;
    std::fs::remove_dir_all(data_dir.path().join("read-models"))
        .map_err(|error| error.to_string())?;
    let log_bytes = crate::process::directory_bytes(&data_dir.path().join("log"));

    let started = Instant::now();
    let server = ServerProcess::start(target, data_dir.path()).await?;
    let mut admin = AdminClient::new(connect_many(server.grpc_addr(), 1).await?.remove(0));
    let head = loop {
        let stats = admin
            .get_stats(v1::GetStatsRequest {})
            .await
            .map_err(|status| status.to_string())?
            .into_inner();
        let checkpoint = stats
            .projections
            .first()
            .map_or(0, |projection| projection.checkpoint);
        if stats.head_position > 0 && checkpoint >= stats.head_position {
            break stats.head_position;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
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

    let outcome = Outcome {
        events: head,
        elapsed,
        latency_us: latency_histogram(),
        server_cpu_seconds: server.cpu_seconds(),
        peak_rss_bytes: server.peak_rss_bytes(),
        bytes_per_event: log_bytes as f64 / head as f64,
        extra: BTreeMap::from([
            (
                "agreements".to_owned(),
                (batches * AGREEMENTS_PER_BATCH) as f64,
            ),
            ("fill_events_per_sec".to_owned(), head as f64 / fill_seconds),
            ("verify_seconds".to_owned(), verify_seconds),
            ("rebuild_rpc_seconds".to_owned(), rebuild_rpc_seconds),
        ]),
    };
    server.stop().await?;
    Ok(outcome)
}
