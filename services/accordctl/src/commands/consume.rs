//! `accordctl consume GROUP`: joins a consumer group and prints each event
//! it gets as a JSON line (the `ConsumerDelivery` in protobuf's canonical
//! JSON mapping: the event and its delivery count), acknowledging it after
//! printing unless `--no-ack`; `--count N` stops after N events.

use std::io::Write;
use std::process::ExitCode;

use accord_proto::v1::{
    self, consume_request, consume_response, consumer_groups_client::ConsumerGroupsClient,
};
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::Outcome;
use crate::canonical;
use crate::connection::Grpc;

pub(crate) async fn run(
    channel: Grpc,
    group: String,
    member_name: String,
    acknowledge: bool,
    count: Option<u64>,
) -> Outcome {
    let (requests, outgoing) = mpsc::channel(1_024);
    let join = v1::ConsumeRequest {
        kind: Some(consume_request::Kind::Join(v1::JoinGroup {
            group,
            member_name,
        })),
    };
    requests
        .send(join)
        .await
        .map_err(|error| error.to_string())?;
    let mut responses = ConsumerGroupsClient::new(channel)
        .consume(ReceiverStream::new(outgoing))
        .await
        .map_err(|status| format!("{:?}: {}", status.code(), status.message()))?
        .into_inner();
    let mut out = std::io::stdout().lock();
    let mut printed = 0;
    while count.is_none_or(|count| printed < count) {
        let Some(message) = responses.next().await else {
            break;
        };
        let message =
            message.map_err(|status| format!("{:?}: {}", status.code(), status.message()))?;
        match message.kind {
            Some(consume_response::Kind::Joined(joined)) => {
                eprintln!("joined as {}", joined.member_id);
            }
            Some(consume_response::Kind::Delivery(delivery)) => {
                let Some(position) = delivery.event.as_ref().map(|event| event.position) else {
                    continue;
                };
                let line = canonical::json(&delivery, "accord.v1.ConsumerDelivery")?;
                writeln!(out, "{line}").map_err(|error| error.to_string())?;
                out.flush().map_err(|error| error.to_string())?;
                printed += 1;
                if acknowledge {
                    let ack = v1::ConsumeRequest {
                        kind: Some(consume_request::Kind::Ack(v1::AckEvents {
                            positions: vec![position],
                        })),
                    };
                    requests
                        .send(ack)
                        .await
                        .map_err(|error| error.to_string())?;
                }
            }
            Some(consume_response::Kind::Heartbeat(_)) | None => {}
        }
    }
    // Let the last acknowledgements reach the server before the stream ends.
    drop(requests);
    while let Some(message) = responses.next().await {
        if message.is_err() {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}
