//! `AgreementService.ExecuteStream`: many requests over one stream, each
//! answered in order exactly as `Execute` would answer it, a refusal that
//! leaves the stream open, and a producer that does not read its answers
//! held back instead of buffered.

use std::time::Duration;

use accord_proto::v1::{self, agreement_service_client::AgreementServiceClient};
use accord_tests::*;
use tokio::sync::mpsc;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Code;
use v1::execute_stream_response::Outcome;

fn request(commands: Vec<v1::command::Command>) -> v1::ExecuteRequest {
    v1::ExecuteRequest {
        commands: commands.into_iter().map(command).collect(),
    }
}

#[tokio::test]
async fn each_request_is_answered_in_order_and_a_refusal_leaves_the_stream_open() {
    let server = TestServer::start().await;
    let mut malformed = announce_wabtec("kz-bad");
    if let Some(buyer) = malformed.buyer.as_mut() {
        buyer.country = "Kazakhstan".into();
    }
    let requests = vec![
        request(vec![v1::command::Command::Announce(announce_wabtec(
            "kz-s",
        ))]),
        request(vec![v1::command::Command::Announce(malformed)]),
        request(vec![v1::command::Command::Sign(sign("kz-s"))]),
        // A retry of the first: recognised by its command id.
        request(vec![v1::command::Command::Announce(announce_wabtec(
            "kz-s",
        ))]),
        request(vec![v1::command::Command::Sign(sign("nowhere"))]),
        request(Vec::new()),
    ];
    let sent = requests.len();
    let (outgoing, incoming) = mpsc::channel(16);
    for request in requests {
        outgoing.send(request).await.expect("queued");
    }
    drop(outgoing);
    let mut answers = AgreementServiceClient::new(server.channel())
        .execute_stream(ReceiverStream::new(incoming))
        .await
        .expect("a stream")
        .into_inner();
    let mut received = Vec::new();
    while let Some(answer) = answers.next().await {
        received.push(answer.expect("an answer, not an error"));
    }
    assert_eq!(received.len(), sent, "{received:?}");
    let sequences: Vec<u64> = received.iter().map(|answer| answer.sequence).collect();
    assert_eq!(sequences, (1..=sent as u64).collect::<Vec<_>>());
    let outcome = |index: usize| received[index].outcome.clone().expect("an outcome");
    let Outcome::Done(first) = outcome(0) else {
        panic!("{:?}", received[0])
    };
    assert_eq!(first.results[0].position, 1);
    let Outcome::Refused(refused) = outcome(1) else {
        panic!("{:?}", received[1])
    };
    assert_eq!(refused.code, Code::InvalidArgument as i32, "{refused:?}");
    assert!(refused.message.contains("buyer.country"), "{refused:?}");
    let Outcome::Done(signed) = outcome(2) else {
        panic!("{:?}", received[2])
    };
    assert_eq!(signed.results[0].position, 2);
    let Outcome::Done(retried) = outcome(3) else {
        panic!("{:?}", received[3])
    };
    assert!(retried.results[0].duplicate, "{retried:?}");
    assert_eq!(retried.results[0].position, 1);
    let Outcome::Refused(unknown) = outcome(4) else {
        panic!("{:?}", received[4])
    };
    assert_eq!(unknown.code, Code::NotFound as i32, "{unknown:?}");
    assert!(unknown.message.contains("nowhere"), "{unknown:?}");
    let Outcome::Refused(empty) = outcome(5) else {
        panic!("{:?}", received[5])
    };
    assert_eq!(empty.code, Code::InvalidArgument as i32, "{empty:?}");
    // The refusals appended nothing.
    assert_eq!(server.head().await, 2);
    server.stop().await;
}

#[tokio::test]
async fn a_producer_that_does_not_read_its_answers_is_held_back() {
    const REQUESTS: usize = 12_000;
    let server = TestServer::start().await;
    let head_before = append_deliveries(&server, "kz-b", 0).await;
    let (outgoing, incoming) = mpsc::channel(64);
    let producer = tokio::spawn(async move {
        for index in 0..REQUESTS {
            let delivery = deliver("kz-b", &format!("kz-b/stream/{index}"), 1);
            let request = request(vec![v1::command::Command::RecordDelivery(delivery)]);
            if outgoing.send(request).await.is_err() {
                return index;
            }
        }
        REQUESTS
    });
    // A client that takes at most 64 KiB of answers it has not read on the
    // stream (the HTTP/2 default), with a connection window large enough
    // that its own h2 does not close the connection over many small unread
    // frames; what the server holds beyond that is its own.
    let channel =
        tonic::transport::Endpoint::from_shared(format!("http://{}", server.server().grpc_addr()))
            .expect("endpoint")
            .initial_stream_window_size(65_535)
            .initial_connection_window_size(8 * 1024 * 1024)
            .connect()
            .await
            .expect("connects");
    let mut answers = AgreementServiceClient::new(channel)
        .execute_stream(ReceiverStream::new(incoming))
        .await
        .expect("a stream")
        .into_inner();
    // Nothing is read: the server appends what it took in and stops
    // reading once its answers wait (the head stops moving, well short).
    let mut head = server.head().await;
    let mut steady = 0;
    while steady < 5 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = server.head().await;
        steady = if now == head { steady + 1 } else { 0 };
        head = now;
    }
    let taken = head - head_before;
    println!("a producer that reads nothing: {taken} of {REQUESTS} requests appended");
    assert!(taken > 0, "the stream appended nothing");
    assert!(
        taken < REQUESTS as u64 / 2,
        "the server took {taken} requests from a producer that reads no answer"
    );
    // Read: every request is answered, in order, and appended once.
    let mut expected = 1;
    while let Some(answer) = answers.next().await {
        let answer = answer.expect("an answer");
        assert_eq!(answer.sequence, expected);
        assert!(
            matches!(answer.outcome, Some(Outcome::Done(_))),
            "{answer:?}"
        );
        expected += 1;
    }
    assert_eq!(producer.await.expect("producer"), REQUESTS);
    assert_eq!(expected - 1, REQUESTS as u64);
    assert_eq!(server.head().await, head_before + REQUESTS as u64);
    server.stop().await;
}

#[tokio::test]
async fn a_stream_open_at_shutdown_is_answered_then_told_to_send_the_rest_again() {
    let server = TestServer::start().await;
    let (outgoing, incoming) = mpsc::channel(4);
    let mut answers = AgreementServiceClient::new(server.channel())
        .execute_stream(ReceiverStream::new(incoming))
        .await
        .expect("a stream")
        .into_inner();
    outgoing
        .send(request(vec![v1::command::Command::Announce(
            announce_wabtec("kz-shut"),
        )]))
        .await
        .expect("queued");
    let first = answers.next().await.expect("an answer").expect("no error");
    assert_eq!(first.sequence, 1);
    // The producer keeps its side open; the server stops.
    let stopping = tokio::spawn(server.stop());
    let ended = tokio::time::timeout(Duration::from_secs(30), answers.next())
        .await
        .expect("the stream ends at shutdown")
        .expect("a last message")
        .expect_err("a status");
    assert_eq!(ended.code(), Code::Unavailable, "{ended:?}");
    assert!(
        ended.message().contains("1 requests were answered"),
        "{ended:?}"
    );
    assert!(ended.message().contains("command id"), "{ended:?}");
    stopping.await.expect("stopped");
    drop(outgoing);
}
