//! Filtered reads through the real server come from indexes: `ReadLog` and
//! `Subscribe` with an event-type or buyer-country filter read only the
//! positions the read models' position index lists, an agreement filter
//! reads the agreements' streams, and either answers exactly what a scan
//! of the log finds — whatever the start, the page size, the projector's
//! progress, or a rebuild swapped in meanwhile.

use std::time::Duration;

use accord_proto::v1::{self, subscribe_request::Start, subscribe_response::Message};
use accord_tests::*;
use tokio_stream::StreamExt;

/// Agreements in the log; every 25th is bought by Kazakhstan.
const AGREEMENTS: usize = 300;

fn buyer_of(index: usize) -> &'static str {
    if index.is_multiple_of(25) {
        "KZ"
    } else {
        ["UZ", "TR", "DE"][index % 3]
    }
}

/// Announces, signs and records a delivery for every agreement, a batch of
/// agreements per `Execute`; returns the head once the read models have it.
async fn fill(server: &TestServer, agreements: std::ops::Range<usize>) -> u64 {
    use v1::command::Command;
    let mut client = server.agreements();
    let mut head = 0;
    let indexes: Vec<usize> = agreements.collect();
    for batch in indexes.chunks(50) {
        let mut commands = Vec::new();
        for &index in batch {
            let id = format!("deal-{index}");
            let mut announce = announce_wabtec(&id);
            announce.buyer.as_mut().expect("buyer").country = buyer_of(index).into();
            commands.push(command(Command::Announce(announce)));
            commands.push(command(Command::Sign(sign(&id))));
        }
        for &index in batch {
            let id = format!("deal-{index}");
            commands.push(command(Command::RecordDelivery(deliver(
                &id,
                &format!("{id}/first"),
                1,
            ))));
        }
        let results = client
            .execute(v1::ExecuteRequest { commands })
            .await
            .expect("executes")
            .into_inner()
            .results;
        head = results.last().expect("results").position;
    }
    wait_for_read_models(server, head).await;
    head
}

async fn wait_for_read_models(server: &TestServer, position: u64) {
    server
        .agreements()
        .list_agreements(v1::ListAgreementsRequest {
            page_size: 1,
            min_position: position,
            ..Default::default()
        })
        .await
        .expect("the read models reach the head");
}

fn filter(types: &[&str], agreements: &[&str], countries: &[&str]) -> v1::SubscriptionFilter {
    v1::SubscriptionFilter {
        event_types: types.iter().map(|t| t.to_string()).collect(),
        agreement_ids: agreements.iter().map(|a| a.to_string()).collect(),
        countries: countries.iter().map(|c| c.to_string()).collect(),
    }
}

/// What a scan finds: the events of `all` (the whole log) that pass `filter`.
fn scan(all: &[v1::RecordedEvent], filter: &v1::SubscriptionFilter) -> Vec<u64> {
    let buyer = |agreement_id: &str| {
        let index: usize = agreement_id
            .strip_prefix("deal-")
            .and_then(|index| index.parse().ok())
            .expect("a deal");
        buyer_of(index)
    };
    all.iter()
        .filter(|event| {
            (filter.event_types.is_empty() || filter.event_types.contains(&event.event_type))
                && (filter.agreement_ids.is_empty()
                    || filter.agreement_ids.contains(&event.agreement_id))
                && (filter.countries.is_empty()
                    || filter
                        .countries
                        .iter()
                        .any(|country| country == buyer(&event.agreement_id)))
        })
        .map(|event| event.position)
        .collect()
}

async fn read_log(server: &TestServer, request: v1::ReadLogRequest) -> Vec<u64> {
    let mut stream = server
        .event_log()
        .read_log(request)
        .await
        .expect("reads")
        .into_inner();
    let mut positions = Vec::new();
    while let Some(event) = stream.next().await {
        positions.push(event.expect("an event").position);
    }
    positions
}

/// Every filter shape, from several starts and page sizes, answers what a
/// scan finds; a country filter of 4 % of the log passes over the rest of
/// it through the index (the metrics say so), so it does not scan.
#[tokio::test]
async fn filtered_reads_come_from_the_indexes_and_equal_a_scan() {
    let server = TestServer::start().await;
    let head = fill(&server, 0..AGREEMENTS).await;
    assert_eq!(head, 3 * AGREEMENTS as u64);
    let all = server.read_all().await;

    let kz = filter(&[], &[], &["KZ"]);
    let skipped_before = metric(
        server.server().metrics_addr(),
        "accord_indexed_read_skipped_positions_total",
    )
    .await;
    let read_before = metric(
        server.server().metrics_addr(),
        "accord_indexed_read_events_total",
    )
    .await;
    let found = read_log(
        &server,
        v1::ReadLogRequest {
            filter: Some(kz.clone()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(found, scan(&all, &kz));
    assert_eq!(found.len(), 3 * AGREEMENTS / 25);
    let skipped = metric(
        server.server().metrics_addr(),
        "accord_indexed_read_skipped_positions_total",
    )
    .await
        - skipped_before;
    let read = metric(
        server.server().metrics_addr(),
        "accord_indexed_read_events_total",
    )
    .await
        - read_before;
    assert_eq!(
        read as usize,
        found.len(),
        "only the matching events are read"
    );
    assert!(
        skipped as u64 >= head - found.len() as u64 - 1,
        "the rest of the log is passed over, not scanned: {skipped} of {head}"
    );

    let shapes = [
        filter(&["agreement.signed"], &[], &[]),
        filter(&["agreement.delivery_recorded"], &[], &["KZ", "TR"]),
        filter(&["agreement.signed", "agreement.announced"], &[], &["KZ"]),
        filter(&[], &[], &["UZ", "KZ"]),
        filter(&[], &["deal-0", "deal-77", "deal-299"], &[]),
        filter(&["agreement.signed"], &["deal-0", "deal-77"], &["KZ"]),
        filter(&[], &[], &["FR"]),
        filter(&["agreement.localization_recorded"], &[], &[]),
    ];
    for shape in shapes {
        let wanted = scan(&all, &shape);
        for from in [0, 2, 451, head, head + 1] {
            for max_count in [0, 1, 7] {
                let found = read_log(
                    &server,
                    v1::ReadLogRequest {
                        from_position: from,
                        max_count,
                        filter: Some(shape.clone()),
                        ..Default::default()
                    },
                )
                .await;
                let mut expected: Vec<u64> =
                    wanted.iter().copied().filter(|p| *p >= from).collect();
                if max_count > 0 {
                    expected.truncate(max_count as usize);
                }
                assert_eq!(
                    found, expected,
                    "{shape:?} from {from}, at most {max_count}"
                );
            }
        }
    }
    server.stop().await;
}

/// A subscription with a filter catches up from the index, says
/// `caught_up` at the head, then gets the new matching events live; one
/// resumed after a position misses nothing.
#[tokio::test]
async fn a_filtered_subscription_catches_up_from_the_index_then_follows_the_head() {
    let server = TestServer::start().await;
    let head = fill(&server, 0..AGREEMENTS).await;
    let all = server.read_all().await;
    let kz_signed = filter(&["agreement.signed"], &[], &["KZ"]);
    let wanted = scan(&all, &kz_signed);
    for start in [
        Start::FromStart(v1::subscribe_request::FromStart {}),
        Start::AfterPosition(wanted[3]),
    ] {
        let after = match start {
            Start::AfterPosition(position) => position,
            _ => 0,
        };
        let mut stream = server
            .event_log()
            .subscribe(v1::SubscribeRequest {
                start: Some(start),
                filter: Some(kz_signed.clone()),
                ..Default::default()
            })
            .await
            .expect("subscribes")
            .into_inner();
        let mut caught_up_at = None;
        let mut positions = Vec::new();
        while caught_up_at.is_none() {
            match next(&mut stream).await {
                Message::Event(event) => positions.push(event.position),
                Message::CaughtUp(caught_up) => caught_up_at = Some(caught_up.position),
                Message::Heartbeat(_) => {}
            }
        }
        let expected: Vec<u64> = wanted.iter().copied().filter(|p| *p > after).collect();
        assert_eq!(positions, expected);
        assert_eq!(caught_up_at, Some(head));
        drop(stream);
    }

    let mut stream = server
        .event_log()
        .subscribe(v1::SubscribeRequest {
            start: Some(Start::FromStart(v1::subscribe_request::FromStart {})),
            filter: Some(kz_signed.clone()),
            ..Default::default()
        })
        .await
        .expect("subscribes")
        .into_inner();
    loop {
        if let Message::CaughtUp(_) = next(&mut stream).await {
            break;
        }
    }
    // New agreements: one of them (index 300) is Kazakh; its signature is
    // the one new match.
    let new_head = fill(&server, AGREEMENTS..AGREEMENTS + 10).await;
    let all = server.read_all().await;
    let new: Vec<u64> = scan(&all, &kz_signed)
        .into_iter()
        .filter(|p| *p > head)
        .collect();
    assert_eq!(new.len(), 1);
    match next(&mut stream).await {
        Message::Event(event) => {
            assert_eq!(event.position, new[0]);
            assert_eq!(event.agreement_id, "deal-300");
        }
        other => panic!("expected the new signature, got {other:?}"),
    }
    assert!(new_head > new[0]);
    server.stop().await;
}

async fn next(stream: &mut tonic::Streaming<v1::SubscribeResponse>) -> Message {
    tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("a message arrives")
        .expect("the stream is open")
        .expect("no error")
        .message
        .expect("a message")
}

/// While the read models are rebuilt from an empty generation (a restart
/// without them) and again by `RebuildProjections`, filtered reads keep
/// answering what a scan finds: the index covers what the projector has
/// reached, the log the rest, and a generation swapped in mid-read is read
/// from where the old one stopped.
#[tokio::test]
async fn filtered_reads_stay_exact_while_the_read_models_are_rebuilt() {
    let mut server = TestServer::start().await;
    let head = fill(&server, 0..AGREEMENTS).await;
    let all = server.read_all().await;
    let shapes = [
        filter(&[], &[], &["KZ"]),
        filter(&["agreement.delivery_recorded"], &[], &["TR", "KZ"]),
    ];
    server.restart_with_fresh_read_models().await;
    let mut rounds = 0;
    loop {
        for shape in &shapes {
            let found = read_log(
                &server,
                v1::ReadLogRequest {
                    filter: Some(shape.clone()),
                    ..Default::default()
                },
            )
            .await;
            assert_eq!(found, scan(&all, shape), "{shape:?} while projecting");
        }
        rounds += 1;
        if rounds > 2 {
            break;
        }
    }
    wait_for_read_models(&server, head).await;
    let mut rebuild = server
        .admin()
        .rebuild_projections(v1::RebuildProjectionsRequest::default())
        .await
        .expect("rebuilds")
        .into_inner();
    let reader = {
        let channel = server.channel();
        let shapes = shapes.clone();
        let all = all.clone();
        tokio::spawn(async move {
            for _ in 0..20 {
                for shape in &shapes {
                    let mut stream = v1::event_log_client::EventLogClient::new(channel.clone())
                        .read_log(v1::ReadLogRequest {
                            filter: Some(shape.clone()),
                            max_count: 0,
                            ..Default::default()
                        })
                        .await
                        .expect("reads")
                        .into_inner();
                    let mut found = Vec::new();
                    while let Some(event) = stream.next().await {
                        found.push(event.expect("an event").position);
                    }
                    assert_eq!(found, scan(&all, shape), "{shape:?} during a rebuild");
                }
            }
        })
    };
    while let Some(progress) = rebuild.next().await {
        if progress.expect("progress").done {
            break;
        }
    }
    reader.await.expect("the reader's checks hold");
    server.stop().await;
}
