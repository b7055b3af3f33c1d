//! `subscribe`: N subscribers hold streams open while steady writers append
//! at a fixed total rate; each event's commit-to-receive latency is measured
//! from the `recorded_at` the server stamps at commit. Also measures the
//! server's memory per idle subscriber.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use accord_proto::v1::{
    self, event_log_client::EventLogClient, subscribe_request::Start, subscribe_response::Message,
};
use tokio_stream::StreamExt;

use crate::process::{ServerProcess, Target};
use crate::report::{Outcome, latency_histogram};
use crate::workload::{connect_many, micros_since_commit, prepare_writers, steady_writers};

/// Streams per subscriber connection.
const STREAMS_PER_CONNECTION: usize = 100;
/// Concurrent writers sharing the rate.
const WRITERS: usize = 8;

pub(crate) async fn run(
    target: &Target,
    subscribers: usize,
    rate: u64,
    duration: Duration,
) -> Result<Outcome, String> {
    let data_dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let server = ServerProcess::start(target, data_dir.path()).await?;
    let writer_channels = prepare_writers(server.grpc_addr(), WRITERS, 2).await?;
    let subscriber_channels = connect_many(
        server.grpc_addr(),
        subscribers.div_ceil(STREAMS_PER_CONNECTION),
    )
    .await?;
    let rss_before = server.rss_bytes();
    let mut streams = Vec::with_capacity(subscribers);
    for index in 0..subscribers {
        let mut client =
            EventLogClient::new(subscriber_channels[index / STREAMS_PER_CONNECTION].clone());
        let request = v1::SubscribeRequest {
            start: Some(Start::FromEnd(v1::subscribe_request::FromEnd {})),
            heartbeat_interval_ms: 60_000,
            ..Default::default()
        };
        let mut stream = client
            .subscribe(request)
            .await
            .map_err(|status| status.to_string())?
            .into_inner();
        match stream.next().await {
            Some(Ok(v1::SubscribeResponse {
                message: Some(Message::CaughtUp(_)),
            })) => {}
            other => return Err(format!("expected caught_up, got {other:?}")),
        }
        streams.push(stream);
    }
    let idle_bytes_per_subscriber =
        server.rss_bytes().saturating_sub(rss_before) as f64 / subscribers.max(1) as f64;

    let per_writer = (rate * duration.as_secs()).div_ceil(WRITERS as u64);
    let expected = per_writer * WRITERS as u64;
    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    let mut readers = Vec::with_capacity(subscribers);
    for mut stream in streams {
        readers.push(tokio::spawn(async move {
            let mut latency = latency_histogram();
            let mut received = 0;
            while received < expected {
                let message = tokio::time::timeout(Duration::from_secs(60), stream.next())
                    .await
                    .map_err(|_| {
                        format!("subscriber stalled after {received} of {expected} events")
                    })?
                    .ok_or("stream ended")?
                    .map_err(|status| status.to_string())?;
                if let Some(Message::Event(event)) = message.message {
                    received += 1;
                    if let Some(us) = micros_since_commit(event.recorded_at) {
                        latency.saturating_record(us);
                    }
                }
            }
            Ok::<_, String>(latency)
        }));
    }
    steady_writers(&writer_channels, WRITERS, per_writer, rate).await?;
    let writing = started.elapsed();
    let mut latency_us = latency_histogram();
    for reader in readers {
        let latency = reader.await.map_err(|error| error.to_string())??;
        latency_us.add(latency).map_err(|error| error.to_string())?;
    }
    let elapsed = started.elapsed();
    let outcome = Outcome {
        events: expected * subscribers as u64,
        elapsed,
        latency_us,
        server_cpu_seconds: server.cpu_seconds() - cpu_before,
        peak_rss_bytes: server.peak_rss_bytes(),
        bytes_per_event: server.log_bytes() as f64 / (expected + 2 * WRITERS as u64) as f64,
        extra: BTreeMap::from([
            ("subscribers".to_owned(), subscribers as f64),
            (
                "writer_events_per_sec".to_owned(),
                expected as f64 / writing.as_secs_f64(),
            ),
            (
                "idle_bytes_per_subscriber".to_owned(),
                idle_bytes_per_subscriber,
            ),
        ]),
    };
    server.stop().await?;
    Ok(outcome)
}
