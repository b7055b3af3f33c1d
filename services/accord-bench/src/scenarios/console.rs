//! `console`: the web console on a log of M events (the `rebuild`
//! scenario's fill). How long each view's figures take to answer (`GET` of
//! its fragment over a fresh connection, one at a time, `ROUNDS` times
//! each), and what `tails` open live tails of the log view cost the server
//! while writers append at `rate` events/s: its CPU with the tails open
//! against the same writers without them, and whether every tail got every
//! event.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use accord_proto::v1::{self, admin_client::AdminClient};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::process::{ServerProcess, Target, http_get};
use crate::report::{Outcome, latency_histogram};
use crate::workload::{
    EVENTS_PER_AGREEMENT, connect_many, fill, fill_id, prepare_writers, read_models_at_head,
    steady_writers_from,
};

/// Requests per page.
const ROUNDS: usize = 20;
/// Writers sharing the rate.
const WRITERS: usize = 4;

/// `GET path` over a fresh connection: the status line and the time to
/// the last byte.
async fn get(addr: SocketAddr, path: &str) -> Result<(String, Duration), String> {
    let started = Instant::now();
    let answer = http_get(addr, path).await?;
    let elapsed = started.elapsed();
    let status = answer.lines().next().unwrap_or_default().to_owned();
    Ok((status, elapsed))
}

/// Opens a live tail of the log view and counts the events it gets.
async fn tail(addr: SocketAddr, after: u64, got: Arc<AtomicU64>) -> Result<(), String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|error| format!("tail: {error}"))?;
    stream
        // The console answers only the names it knows (DNS rebinding):
        // its own address is one.
        .write_all(format!("GET /live?after={after} HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
        .await
        .map_err(|error| format!("tail: {error}"))?;
    let mut lines = BufReader::new(stream).lines();
    let status = lines
        .next_line()
        .await
        .map_err(|error| format!("tail: {error}"))?
        .unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200") {
        return Err(format!("tail: the console answered {status:?}"));
    }
    while let Ok(Some(line)) = lines.next_line().await {
        if line == "event: append" {
            got.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

/// Server CPU seconds per second while the writers append deliveries
/// `sequences` each at `rate`.
async fn writing_cost(
    server: &ServerProcess,
    channels: &[tonic::transport::Channel],
    sequences: std::ops::Range<u64>,
    rate: u64,
) -> Result<f64, String> {
    let (cpu, started) = (server.cpu_seconds(), Instant::now());
    steady_writers_from(channels, WRITERS, sequences, rate).await?;
    Ok((server.cpu_seconds() - cpu) / started.elapsed().as_secs_f64())
}

pub(crate) async fn run(
    target: &Target,
    events: usize,
    tails: usize,
    rate: u64,
    duration: Duration,
) -> Result<Outcome, String> {
    let data_dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let server = ServerProcess::start(target, data_dir.path()).await?;
    let agreements = fill(server.grpc_addr(), events).await?;
    let mut admin = AdminClient::new(connect_many(server.grpc_addr(), 1).await?.remove(0));
    let head = read_models_at_head(&mut admin).await?;
    let console = server.console_addr()?;
    let middle = fill_id(agreements / 200, 50);
    let pages = [
        ("countries", "/fragment/".to_owned()),
        ("agreements", "/fragment/agreements".to_owned()),
        (
            "agreements_filtered",
            "/fragment/agreements?buyer=KZ&stage=signed".to_owned(),
        ),
        ("agreement", format!("/fragment/agreements/{middle}")),
        (
            "agreement_as_of",
            format!(
                "/fragment/agreements/{middle}?as_of={}",
                head - (EVENTS_PER_AGREEMENT as u64) * 10
            ),
        ),
        ("log", "/fragment/log".to_owned()),
        (
            "log_filtered",
            "/fragment/log?type=agreement.signed".to_owned(),
        ),
        ("operations", "/fragment/operations".to_owned()),
    ];
    let mut latency_us = latency_histogram();
    let mut extra = BTreeMap::new();
    let started = Instant::now();
    for (name, path) in &pages {
        let mut slowest = Duration::ZERO;
        let mut page_latency = latency_histogram();
        for _ in 0..ROUNDS {
            let (status, elapsed) = get(console, path).await?;
            if !status.contains(" 200 ") && !status.contains(" 404 ") {
                return Err(format!("{path}: {status}"));
            }
            slowest = slowest.max(elapsed);
            let micros = elapsed.as_micros() as u64;
            latency_us
                .record(micros)
                .map_err(|error| error.to_string())?;
            page_latency
                .record(micros)
                .map_err(|error| error.to_string())?;
        }
        extra.insert(
            format!("page_{name}_p50_ms"),
            page_latency.value_at_quantile(0.5) as f64 / 1_000.0,
        );
        extra.insert(
            format!("page_{name}_max_ms"),
            slowest.as_secs_f64() * 1_000.0,
        );
    }
    let pages_elapsed = started.elapsed();

    // Live tails: the server's CPU with them open against without.
    let channels = prepare_writers(server.grpc_addr(), WRITERS, 2).await?;
    let per_writer = (rate * duration.as_secs()).div_ceil(WRITERS as u64);
    let without = writing_cost(&server, &channels, 0..per_writer, rate).await?;
    let after = admin
        .get_stats(v1::GetStatsRequest {})
        .await
        .map_err(|status| status.to_string())?
        .into_inner()
        .head_position;
    let counts: Vec<Arc<AtomicU64>> = (0..tails).map(|_| Arc::default()).collect();
    let mut readers = Vec::with_capacity(tails);
    for count in &counts {
        readers.push(tokio::spawn(tail(console, after, count.clone())));
    }
    // Every tail connected and told where the head is before the writers start.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let with = writing_cost(&server, &channels, per_writer..2 * per_writer, rate).await?;
    let expected = per_writer * WRITERS as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    while counts
        .iter()
        .any(|count| count.load(Ordering::Relaxed) < expected)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let least = counts
        .iter()
        .map(|count| count.load(Ordering::Relaxed))
        .min()
        .unwrap_or(0);
    // A tail that ended (refused, or cut off) says why.
    for reader in readers {
        if reader.is_finished() {
            reader.await.map_err(|error| error.to_string())??;
        } else {
            reader.abort();
        }
    }
    extra.insert("tails".to_owned(), tails as f64);
    extra.insert("tail_rate_events_per_sec".to_owned(), rate as f64);
    extra.insert("writers_core_share_without_tails".to_owned(), without);
    extra.insert("writers_core_share_with_tails".to_owned(), with);
    extra.insert("tails_core_share".to_owned(), (with - without).max(0.0));
    extra.insert(
        "tails_events_received_fraction".to_owned(),
        least as f64 / expected as f64,
    );
    extra.insert("log_events".to_owned(), head as f64);
    let outcome = Outcome {
        // Page requests: `events_per_sec` is requests per second.
        events: (pages.len() * ROUNDS) as u64,
        elapsed: pages_elapsed,
        latency_us,
        server_cpu_seconds: server.cpu_seconds(),
        peak_rss_bytes: server.peak_rss_bytes(),
        bytes_per_event: 0.0,
        extra,
    };
    server.stop().await?;
    Ok(outcome)
}
