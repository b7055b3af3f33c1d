//! The append and batch workloads against UmaDB: the same payload (a
//! one-unit delivery with its command id in the metadata), the same
//! concurrency over as many connections as Accord's clients use, one
//! stream per client (a tag) whose append names the position it last saw
//! (an append condition: UmaDB's expected version), every append durable.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tonic::transport::Channel;

use crate::process::LoadGeneratorCpu;
use crate::report::{ClientTask, Outcome, join_clients, latency_histogram};
use crate::umadb::{UmaDb, append as append_events, read_all, wire};

/// Connections the clients share, as Accord's clients share theirs.
const CONNECTIONS: usize = 4;

fn event(client: usize, stream: &str, sequence: u64) -> wire::Event {
    let data = serde_json::json!({
        "units": 1,
        "delivered_at": "2025-09-23T00:00:00Z",
        "reference": format!("waybill {sequence}"),
    });
    wire::Event {
        event_type: "agreement.delivery_recorded".into(),
        tags: vec![stream.to_owned()],
        data: data.to_string().into_bytes(),
        uuid: format!("{client:08x}-0000-4000-8000-{sequence:012x}"),
        metadata: vec![wire::MetadataEntry {
            key: "command_id".into(),
            value: format!("{stream}/delivery/{sequence}"),
        }],
    }
}

/// An append of `events` to `stream`, which must hold nothing after `last`.
fn request(stream: &str, last: Option<u64>, events: Vec<wire::Event>) -> wire::AppendRequest {
    wire::AppendRequest {
        events,
        condition: Some(wire::AppendCondition {
            fail_if_events_match: Some(wire::Query {
                items: vec![wire::QueryItem {
                    types: Vec::new(),
                    tags: vec![stream.to_owned()],
                }],
            }),
            after: last,
        }),
    }
}

/// `append` (`batch_size` 1) or `batch`: each client appends `batch_size`
/// events per call to its own stream, as fast as it can.
pub(crate) async fn run(
    clients: usize,
    batch_size: usize,
    duration: Duration,
) -> Result<Outcome, String> {
    let umadb = UmaDb::start().await?;
    let mut channels = Vec::with_capacity(CONNECTIONS);
    for _ in 0..CONNECTIONS {
        channels.push(umadb.connect().await?);
    }
    let (cpu_before, _) = umadb.usage();
    let load_cpu = LoadGeneratorCpu::start();
    let started = Instant::now();
    let deadline = started + duration;
    let tasks: Vec<ClientTask> = (0..clients)
        .map(|client| {
            let channel: Channel = channels[client % CONNECTIONS].clone();
            tokio::spawn(async move {
                let stream = format!("agreement:umadb{client}");
                let mut latency = latency_histogram();
                let mut sequence = 0u64;
                let mut last = None;
                while Instant::now() < deadline {
                    let events = (0..batch_size as u64)
                        .map(|offset| event(client, &stream, sequence + offset))
                        .collect();
                    let sent = Instant::now();
                    let position = append_events(channel.clone(), request(&stream, last, events))
                        .await
                        .map_err(|status| format!("umadb append: {status}"))?;
                    latency.saturating_record(sent.elapsed().as_micros() as u64);
                    last = Some(position);
                    sequence += batch_size as u64;
                }
                Ok::<_, String>((sequence, latency))
            })
        })
        .collect();
    let (events, latency_us) = join_clients(tasks).await?;
    let elapsed = started.elapsed();
    let mut extra = BTreeMap::from([("clients".to_owned(), clients as f64)]);
    if batch_size > 1 {
        extra.insert("events_per_append".to_owned(), batch_size as f64);
    }
    load_cpu.record(&mut extra);
    let (cpu_after, peak_rss_bytes) = umadb.usage();
    let bytes = umadb.bytes();
    umadb.stop().await;
    Ok(Outcome {
        events,
        elapsed,
        latency_us,
        server_cpu_seconds: cpu_after - cpu_before,
        peak_rss_bytes,
        bytes_per_event: bytes as f64 / events.max(1) as f64,
        extra,
    })
}

/// Fills UmaDB with `events` events (100 per append from 16 clients), then
/// reads them all back over one connection: events read per second.
pub(crate) async fn read_back(events: usize) -> Result<f64, String> {
    const WRITERS: usize = 16;
    const PER_APPEND: usize = 100;
    let umadb = UmaDb::start().await?;
    let appends = events.div_ceil(PER_APPEND);
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let channel = umadb.connect().await?;
        writers.push(tokio::spawn(async move {
            let stream = format!("agreement:fill{writer}");
            for round in (writer..appends).step_by(WRITERS) {
                let first = (round * PER_APPEND) as u64;
                let events = (0..PER_APPEND as u64)
                    .map(|offset| event(writer, &stream, first + offset))
                    .collect();
                let request = wire::AppendRequest {
                    events,
                    condition: None,
                };
                append_events(channel.clone(), request)
                    .await
                    .map_err(|status| format!("umadb append: {status}"))?;
            }
            Ok::<_, String>(())
        }));
    }
    for writer in writers {
        writer.await.map_err(|error| error.to_string())??;
    }
    let started = Instant::now();
    let read = read_all(umadb.connect().await?)
        .await
        .map_err(|status| format!("umadb read: {status}"))?;
    let rate = read as f64 / started.elapsed().as_secs_f64();
    umadb.stop().await;
    if read < events as u64 {
        return Err(format!("umadb read back {read} of {events} events"));
    }
    Ok(rate)
}
