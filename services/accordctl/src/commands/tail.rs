//! `accordctl tail`: one JSON object per event per line.

use std::io::Write;
use std::process::ExitCode;

use crate::connection::Grpc;
use accord_proto::v1::{self, event_log_client::EventLogClient, subscribe_response::Message};
use tokio_stream::StreamExt;

use super::Outcome;
use crate::json;

pub(crate) async fn run(
    channel: Grpc,
    from: u64,
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
        writeln!(out, "{}", json::event(event)).map_err(|error| error.to_string())
    };
    if !follow {
        let mut stream = client
            .read_log(v1::ReadLogRequest {
                from_position: from,
                max_count: 0,
                filter,
                from_time: None,
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
        start: Some(v1::subscribe_request::Start::AfterPosition(
            from.saturating_sub(1),
        )),
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
