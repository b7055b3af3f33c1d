//! `accordctl tail`: one JSON object per event per line.

use std::io::Write;
use std::process::ExitCode;

use crate::connection::Grpc;
use accord_proto::v1::{self, event_log_client::EventLogClient, subscribe_response::Message};
use tokio_stream::StreamExt;

use super::Outcome;
use crate::canonical;

/// Where the tail starts.
pub(crate) enum Start {
    /// At this position (1 = the first event).
    Position(u64),
    /// At the first event recorded at or after this instant.
    Time(prost_types::Timestamp),
}

pub(crate) async fn run(
    channel: Grpc,
    start: Start,
    follow: bool,
    event_types: Vec<String>,
    agreement_ids: Vec<String>,
) -> Outcome {
    let filter = Some(v1::SubscriptionFilter {
        event_types,
        agreement_ids,
        countries: Vec::new(),
    });
    let mut client = EventLogClient::new(channel);
    let mut out = std::io::stdout().lock();
    let mut print = |event: &v1::RecordedEvent| -> Result<(), String> {
        let line = canonical::json(event, "accord.v1.RecordedEvent")?;
        writeln!(out, "{line}").map_err(|error| error.to_string())
    };
    if !follow {
        let mut stream = client
            .read_log(match start {
                Start::Position(from) => v1::ReadLogRequest {
                    from_position: from,
                    filter,
                    ..Default::default()
                },
                Start::Time(time) => v1::ReadLogRequest {
                    from_time: Some(time),
                    filter,
                    ..Default::default()
                },
            })
            .await
            .map_err(|status| status.message().to_owned())?
            .into_inner();
        while let Some(event) = stream.next().await {
            print(&event.map_err(|status| status.message().to_owned())?)?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let request = v1::SubscribeRequest {
        start: Some(match start {
            Start::Position(from) => {
                v1::subscribe_request::Start::AfterPosition(from.saturating_sub(1))
            }
            Start::Time(time) => v1::subscribe_request::Start::FromTime(time),
        }),
        filter,
        heartbeat_interval_ms: 0,
    };
    let mut stream = client
        .subscribe(request)
        .await
        .map_err(|status| status.message().to_owned())?
        .into_inner();
    while let Some(message) = stream.next().await {
        let message = message.map_err(|status| status.message().to_owned())?;
        if let Some(Message::Event(event)) = message.message {
            print(&event)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}
