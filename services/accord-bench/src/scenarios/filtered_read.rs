//! `filtered-read`: fills a log with M events in which 1 % of the
//! agreements (so 1 % of the events) are bought by Uzbekistan, then reads
//! that 1 % back with a buyer-country filter: `ReadLog` from the start, and
//! a `Subscribe` catching up from the start. Run against an earlier binary
//! (`--server-binary`) for the scan it replaces.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use accord_proto::v1::{self, admin_client::AdminClient, event_log_client::EventLogClient};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

use crate::process::{ServerProcess, Target};
use crate::report::{Outcome, latency_histogram};
use crate::workload::{EVENTS_PER_AGREEMENT, connect_many, fill_buying, read_models_at_head};

/// One agreement in this many is Uzbek.
const ONE_IN: usize = 100;
/// Reads of each kind; the fastest is reported (the first warms the caches).
const ROUNDS: usize = 3;

fn buyer(agreement: usize) -> &'static str {
    if agreement.is_multiple_of(ONE_IN) {
        "UZ"
    } else {
        "KZ"
    }
}

fn uzbek() -> Option<v1::SubscriptionFilter> {
    Some(v1::SubscriptionFilter {
        countries: vec!["UZ".into()],
        ..Default::default()
    })
}

pub(crate) async fn run(target: &Target, events: usize) -> Result<Outcome, String> {
    let data_dir = tempfile::tempdir().map_err(|error| error.to_string())?;
    let server = ServerProcess::start(target, data_dir.path()).await?;
    let agreements = fill_buying(server.grpc_addr(), events, buyer).await?;
    let channel = connect_many(server.grpc_addr(), 1).await?.remove(0);
    let head = read_models_at_head(&mut AdminClient::new(channel.clone())).await?;
    let expected = agreements.div_ceil(ONE_IN) * EVENTS_PER_AGREEMENT;

    let mut read_log = Duration::MAX;
    let mut catch_up = Duration::MAX;
    for _ in 0..ROUNDS {
        read_log = read_log.min(timed_read_log(&channel, expected).await?);
        catch_up = catch_up.min(timed_catch_up(&channel, expected, head).await?);
    }
    let outcome = Outcome {
        events: expected as u64,
        elapsed: read_log,
        latency_us: latency_histogram(),
        server_cpu_seconds: server.cpu_seconds(),
        peak_rss_bytes: server.peak_rss_bytes(),
        bytes_per_event: 0.0,
        extra: BTreeMap::from([
            ("log_events".to_owned(), head as f64),
            ("read_log_ms".to_owned(), read_log.as_secs_f64() * 1e3),
            (
                "subscribe_catch_up_ms".to_owned(),
                catch_up.as_secs_f64() * 1e3,
            ),
        ]),
    };
    server.stop().await?;
    Ok(outcome)
}

/// A filtered `ReadLog` from the start: how long until its last event.
async fn timed_read_log(channel: &Channel, expected: usize) -> Result<Duration, String> {
    let started = Instant::now();
    let mut reading = EventLogClient::new(channel.clone())
        .read_log(v1::ReadLogRequest {
            filter: uzbek(),
            ..Default::default()
        })
        .await
        .map_err(|status| status.to_string())?
        .into_inner();
    let mut read = 0;
    while let Some(event) = reading.next().await {
        event.map_err(|status| status.to_string())?;
        read += 1;
    }
    if read != expected {
        return Err(format!(
            "filtered ReadLog read {read} events, not {expected}"
        ));
    }
    Ok(started.elapsed())
}

/// A filtered `Subscribe` from the start: how long until `caught_up`.
async fn timed_catch_up(channel: &Channel, expected: usize, head: u64) -> Result<Duration, String> {
    use v1::subscribe_response::Message;
    let started = Instant::now();
    let mut stream = EventLogClient::new(channel.clone())
        .subscribe(v1::SubscribeRequest {
            start: Some(v1::subscribe_request::Start::FromStart(
                v1::subscribe_request::FromStart {},
            )),
            filter: uzbek(),
            ..Default::default()
        })
        .await
        .map_err(|status| status.to_string())?
        .into_inner();
    let mut read = 0;
    while let Some(message) = stream.next().await {
        match message.map_err(|status| status.to_string())?.message {
            Some(Message::Event(_)) => read += 1,
            Some(Message::CaughtUp(caught_up)) => {
                if read != expected || caught_up.position != head {
                    return Err(format!(
                        "filtered Subscribe caught up at {} with {read} events, not {head} with {expected}",
                        caught_up.position
                    ));
                }
                return Ok(started.elapsed());
            }
            _ => {}
        }
    }
    Err("the subscription ended before catching up".into())
}
