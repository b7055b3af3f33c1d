//! `proofs`: fills a log with M events, then asks one client's worth of
//! transparency questions back to back: an inclusion proof of a random
//! position in the latest tree, a consistency proof from a random size to
//! the latest, and the signed checkpoint. Reports each one's latency (the
//! target: under 1 ms p99 at 1 M events).

use std::collections::BTreeMap;
use std::time::Instant;

use accord_proto::v1::{self, transparency_client::TransparencyClient};
use hdrhistogram::Histogram;

use crate::process::{ServerProcess, Target};
use crate::report::{Outcome, latency_histogram};
use crate::workload::{connect_many, fill};

/// Questions of each kind.
const ASKED: usize = 5_000;

pub(crate) async fn run(target: &Target, events: usize) -> Result<Outcome, String> {
    let data_dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let server = ServerProcess::start(target, data_dir.path()).await?;
    fill(server.grpc_addr(), events).await?;
    let channel = connect_many(server.grpc_addr(), 1).await?.remove(0);
    let mut client = TransparencyClient::new(channel);
    let size = {
        let note = client
            .get_checkpoint(v1::GetCheckpointRequest {})
            .await
            .map_err(|status| status.to_string())?
            .into_inner()
            .note;
        note.lines()
            .nth(1)
            .and_then(|size| size.parse::<u64>().ok())
            .ok_or("the checkpoint has no tree size")?
    };
    // A fixed sequence of positions: the same questions for every binary.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut random = move |below: u64| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    let mut inclusion = latency_histogram();
    let mut consistency = latency_histogram();
    let mut checkpoint = latency_histogram();
    for _ in 0..ASKED {
        let asked = Instant::now();
        let proof = client
            .get_inclusion_proof(v1::GetInclusionProofRequest {
                position: 1 + random(size),
                tree_size: 0,
            })
            .await
            .map_err(|status| status.to_string())?
            .into_inner();
        record(&mut inclusion, asked)?;
        if proof.hashes.is_empty() && size > 1 {
            return Err("an inclusion proof without hashes".into());
        }
        let asked = Instant::now();
        client
            .get_consistency_proof(v1::GetConsistencyProofRequest {
                first_size: 1 + random(size),
                second_size: 0,
            })
            .await
            .map_err(|status| status.to_string())?;
        record(&mut consistency, asked)?;
        let asked = Instant::now();
        client
            .get_checkpoint(v1::GetCheckpointRequest {})
            .await
            .map_err(|status| status.to_string())?;
        record(&mut checkpoint, asked)?;
    }
    let elapsed = started.elapsed();
    let ms = |histogram: &Histogram<u64>, quantile: f64| {
        histogram.value_at_quantile(quantile) as f64 / 1_000.0
    };
    let outcome = Outcome {
        events: (3 * ASKED) as u64,
        elapsed,
        server_cpu_seconds: server.cpu_seconds() - cpu_before,
        peak_rss_bytes: server.peak_rss_bytes(),
        bytes_per_event: 0.0,
        extra: BTreeMap::from([
            ("log_events".to_owned(), size as f64),
            ("inclusion_p50_ms".to_owned(), ms(&inclusion, 0.5)),
            ("inclusion_p99_ms".to_owned(), ms(&inclusion, 0.99)),
            ("consistency_p50_ms".to_owned(), ms(&consistency, 0.5)),
            ("consistency_p99_ms".to_owned(), ms(&consistency, 0.99)),
            ("checkpoint_p99_ms".to_owned(), ms(&checkpoint, 0.99)),
        ]),
        latency_us: inclusion,
    };
    server.stop().await?;
    Ok(outcome)
}

fn record(histogram: &mut Histogram<u64>, asked: Instant) -> Result<(), String> {
    histogram
        .record(asked.elapsed().as_micros() as u64)
        .map_err(|error| error.to_string())
}
