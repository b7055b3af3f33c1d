//! `append-stream`: N producers, one command per request over an
//! `ExecuteStream` each, keeping `WINDOW` requests unanswered; latency is
//! from a request's send to its answer.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use accord_proto::v1;
use accord_proto::v1::execute_stream_response::Outcome as Answer;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::closed_loop;
use crate::process::Target;
use crate::report::{Outcome, latency_histogram};
use crate::workload::deliver;

/// Requests a producer keeps unanswered.
const WINDOW: usize = 16;

pub(crate) async fn run(
    target: &Target,
    producers: usize,
    duration: Duration,
) -> Result<Outcome, String> {
    let extra = BTreeMap::from([
        ("producers".to_owned(), producers as f64),
        ("requests_in_flight_per_producer".to_owned(), WINDOW as f64),
    ]);
    closed_loop::run_clients(
        target,
        "stream",
        producers,
        duration,
        extra,
        |mut agreements, agreement_id, deadline: Instant| async move {
            let (requests, outgoing) = mpsc::channel(WINDOW);
            let mut answers = agreements
                .execute_stream(ReceiverStream::new(outgoing))
                .await
                .map_err(|status| status.to_string())?
                .into_inner();
            let mut latency = latency_histogram();
            let mut sent_at = VecDeque::with_capacity(WINDOW);
            let (mut sequence, mut answered) = (0, 0u64);
            loop {
                while sent_at.len() < WINDOW && Instant::now() < deadline {
                    let delivery = v1::Command {
                        command: Some(v1::command::Command::RecordDelivery(deliver(
                            &agreement_id,
                            sequence,
                        ))),
                    };
                    requests
                        .send(v1::ExecuteRequest {
                            commands: vec![delivery],
                        })
                        .await
                        .map_err(|_| "the stream closed".to_owned())?;
                    sent_at.push_back(Instant::now());
                    sequence += 1;
                }
                let Some(sent) = sent_at.pop_front() else {
                    break;
                };
                let answer = answers
                    .message()
                    .await
                    .map_err(|status| status.to_string())?
                    .ok_or("the stream ended early")?;
                if !matches!(answer.outcome, Some(Answer::Done(_))) {
                    return Err(format!("a request was refused: {answer:?}"));
                }
                latency.saturating_record(sent.elapsed().as_micros() as u64);
                answered += 1;
            }
            Ok((answered, latency))
        },
    )
    .await
}
