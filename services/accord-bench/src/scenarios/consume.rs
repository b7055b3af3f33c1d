//! `consume`: a consumer group of M members, each acknowledging every event
//! it gets at once, while steady writers append at a fixed total rate.
//! Latency is from the `recorded_at` the server stamps at commit to the
//! moment a member receives the event; the scenario ends when every event
//! written has been acknowledged.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use accord_proto::v1::{
    self, consume_request, consume_response, consumer_group_settings::Start,
    consumer_groups_client::ConsumerGroupsClient,
};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use crate::process::{ServerProcess, Target};
use crate::report::{Outcome, latency_histogram};
use crate::workload::{connect_many, micros_since_commit, prepare_writers, steady_writers};

/// Concurrent writers sharing the rate, each on its own agreement (as many
/// as the append scenario's clients, so that high rates are reachable).
const WRITERS: usize = 64;
/// Unsettled events per member.
const MAX_IN_FLIGHT: u32 = 256;

pub(crate) async fn run(
    target: &Target,
    members: usize,
    rate: u64,
    duration: Duration,
) -> Result<Outcome, String> {
    let data_dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let server = ServerProcess::start(target, data_dir.path()).await?;
    let writer_channels = prepare_writers(server.grpc_addr(), WRITERS, 4).await?;
    ConsumerGroupsClient::new(writer_channels[0].clone())
        .create_consumer_group(v1::CreateConsumerGroupRequest {
            name: "bench".into(),
            settings: Some(v1::ConsumerGroupSettings {
                start: Some(Start::FromEnd(v1::subscribe_request::FromEnd {})),
                max_in_flight: MAX_IN_FLIGHT,
                ..Default::default()
            }),
        })
        .await
        .map_err(|status| status.to_string())?;

    let per_writer = (rate * duration.as_secs()).div_ceil(WRITERS as u64);
    let expected = per_writer * WRITERS as u64;
    let acknowledged = Arc::new(AtomicU64::new(0));
    let member_channels = connect_many(server.grpc_addr(), members).await?;
    let mut readers = Vec::with_capacity(members);
    for (index, channel) in member_channels.into_iter().enumerate() {
        let (requests, outgoing) = mpsc::channel(4_096);
        requests
            .send(v1::ConsumeRequest {
                kind: Some(consume_request::Kind::Join(v1::JoinGroup {
                    group: "bench".into(),
                    member_name: format!("member-{index}"),
                })),
            })
            .await
            .map_err(|error| error.to_string())?;
        let mut stream = ConsumerGroupsClient::new(channel)
            .consume(ReceiverStream::new(outgoing))
            .await
            .map_err(|status| status.to_string())?
            .into_inner();
        let acknowledged = acknowledged.clone();
        readers.push(tokio::spawn(async move {
            let mut latency = latency_histogram();
            let mut redeliveries = 0u64;
            while acknowledged.load(Ordering::Relaxed) < expected {
                let next = tokio::time::timeout(Duration::from_millis(200), stream.next()).await;
                let Ok(message) = next else {
                    continue;
                };
                let message = message
                    .ok_or("consume stream ended")?
                    .map_err(|status| status.to_string())?;
                let Some(consume_response::Kind::Delivery(delivery)) = message.kind else {
                    continue;
                };
                let Some(event) = delivery.event else {
                    continue;
                };
                if delivery.delivery_count > 1 {
                    redeliveries += 1;
                }
                if let Some(us) = micros_since_commit(event.recorded_at) {
                    latency.saturating_record(us);
                }
                let ack = v1::ConsumeRequest {
                    kind: Some(consume_request::Kind::Ack(v1::AckEvents {
                        positions: vec![event.position],
                    })),
                };
                requests
                    .send(ack)
                    .await
                    .map_err(|error| error.to_string())?;
                acknowledged.fetch_add(1, Ordering::Relaxed);
            }
            // End the requests and read until the server ends the stream,
            // so that the last acknowledgements are settled before the
            // member leaves (otherwise they go out again to the others).
            drop(requests);
            while let Some(Ok(_)) = stream.next().await {}
            Ok::<_, String>((latency, redeliveries))
        }));
    }

    let cpu_before = server.cpu_seconds();
    let started = Instant::now();
    steady_writers(&writer_channels, WRITERS, per_writer, rate).await?;
    let writing = started.elapsed();
    let mut latency_us = latency_histogram();
    let mut redeliveries = 0;
    for reader in readers {
        let (latency, redelivered) = tokio::time::timeout(Duration::from_secs(120), reader)
            .await
            .map_err(|_| "the group did not acknowledge every event within 120 s".to_owned())?
            .map_err(|error| error.to_string())??;
        latency_us.add(latency).map_err(|error| error.to_string())?;
        redeliveries += redelivered;
    }
    let elapsed = started.elapsed();
    let outcome = Outcome {
        events: expected,
        elapsed,
        latency_us,
        server_cpu_seconds: server.cpu_seconds() - cpu_before,
        peak_rss_bytes: server.peak_rss_bytes(),
        bytes_per_event: server.log_bytes() as f64 / (expected + 2 * WRITERS as u64) as f64,
        extra: BTreeMap::from([
            ("members".to_owned(), members as f64),
            (
                "writer_events_per_sec".to_owned(),
                expected as f64 / writing.as_secs_f64(),
            ),
            ("redeliveries".to_owned(), redeliveries as f64),
        ]),
    };
    server.stop().await?;
    Ok(outcome)
}
