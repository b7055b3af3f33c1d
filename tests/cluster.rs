//! Two Accord nodes on one three-node NATS JetStream cluster: every node
//! serves the same log, reads its writes through the other, and keeps
//! every acknowledged event when a NATS node dies under load.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use accord_proto::v1;
use accord_proto::v1::subscribe_request::Start;
use accord_proto::v1::subscribe_response::Message;
use accord_tests::child::ChildServer;
use accord_tests::nats::NatsCluster;
use accord_tests::{
    TestServer, announce_wabtec, connect, localize, meta, meta_expecting, sign, verify_clean,
};
use tokio_stream::StreamExt;

/// Asserts that `events` (a whole log) has gap-free positions and holds
/// every acknowledged append (position -> agreement id) at its position.
fn assert_holds_every_acknowledged(
    events: &[v1::RecordedEvent],
    acknowledged: &BTreeMap<u64, String>,
) {
    assert_eq!(
        events
            .iter()
            .map(|event| event.position)
            .collect::<Vec<_>>(),
        (1..=events.len() as u64).collect::<Vec<_>>(),
        "positions are gap-free"
    );
    let by_position: BTreeMap<u64, &str> = events
        .iter()
        .map(|event| (event.position, event.agreement_id.as_str()))
        .collect();
    for (position, id) in acknowledged {
        assert_eq!(
            by_position.get(position).copied(),
            Some(id.as_str()),
            "acknowledged event at {position}"
        );
    }
}

/// Starts an Accord node on the cluster, with its own data directory.
async fn node(cluster: &NatsCluster) -> TestServer {
    let urls = cluster.urls();
    TestServer::start_with(move |config| {
        config.store = urls;
        config.nats_replicas = 3;
    })
    .await
}

#[tokio::test]
async fn a_write_through_one_node_is_read_through_the_other() {
    let _heavy = accord_tests::heavy().await;
    let cluster = NatsCluster::three().await;
    let a = node(&cluster).await;
    let b = node(&cluster).await;
    let announced = a
        .agreements()
        .announce(announce_wabtec("kz-wabtec"))
        .await
        .expect("announced through A")
        .into_inner();
    let agreement = b
        .agreements()
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "kz-wabtec".into(),
            min_position: announced.position,
            as_of_position: 0,
        })
        .await
        .expect("read through B")
        .into_inner();
    assert_eq!(agreement.position, announced.position);
    assert_eq!(agreement.buyer.expect("buyer").country, "KZ");
    // A retry through the other node is the same event, not a new one.
    let retry = b
        .agreements()
        .announce(announce_wabtec("kz-wabtec"))
        .await
        .expect("retry through B")
        .into_inner();
    assert!(retry.duplicate);
    assert_eq!(retry.position, announced.position);
    assert_eq!(b.head().await, 1);
    let metrics = accord_tests::scrape_metrics(a.server().metrics_addr()).await;
    assert!(
        metrics.contains("accord_appended_events_total 1"),
        "{metrics}"
    );
    let metrics = accord_tests::scrape_metrics(b.server().metrics_addr()).await;
    assert!(
        metrics.contains("accord_appended_events_total 0"),
        "{metrics}"
    );
    // Commands are decided against the log, not against a node's lagging
    // view: announce through A, sign through B at once, from 8 clients.
    let mut clients = Vec::new();
    for client in 0..8 {
        let (mut through_a, mut through_b) = (a.agreements(), b.agreements());
        clients.push(tokio::spawn(async move {
            for index in 0..10 {
                let id = format!("kz-next-{client}-{index}");
                through_a
                    .announce(announce_wabtec(&id))
                    .await
                    .expect("announced through A");
                let signed = through_b
                    .sign(sign(&id))
                    .await
                    .expect("signed through B at once")
                    .into_inner();
                assert_eq!(signed.version, 2);
            }
        }));
    }
    for client in clients {
        client.await.expect("client ends");
    }
    verify_clean(b.channel()).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn subscribers_on_one_node_see_the_other_nodes_writes_in_order() {
    let _heavy = accord_tests::heavy().await;
    let cluster = NatsCluster::three().await;
    let a = node(&cluster).await;
    let b = node(&cluster).await;
    let mut watch = b
        .agreements()
        .watch_agreements(v1::WatchAgreementsRequest {
            agreement_ids: vec![],
            buyer_country: "KZ".into(),
            include_initial: false,
        })
        .await
        .expect("watching on B")
        .into_inner();
    let mut stream = b
        .event_log()
        .subscribe(v1::SubscribeRequest {
            start: Some(Start::FromStart(v1::subscribe_request::FromStart {})),
            ..Default::default()
        })
        .await
        .expect("subscribed on B")
        .into_inner();
    let mut writer = a.agreements();
    let mut expected = Vec::new();
    for index in 0..20 {
        let id = format!("kz-{index}");
        expected.push(
            writer
                .announce(announce_wabtec(&id))
                .await
                .expect("announced through A")
                .into_inner()
                .position,
        );
    }
    let mut seen = Vec::new();
    while seen.len() < expected.len() {
        let message = stream.next().await.expect("stream open").expect("no error");
        if let Some(Message::Event(event)) = message.message {
            seen.push(event.position);
        }
    }
    assert_eq!(seen, expected);
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
    let mut updates = Vec::new();
    while updates.len() < expected.len() {
        let update = watch.next().await.expect("watch open").expect("no error");
        updates.push(update.position);
    }
    assert_eq!(updates, expected, "read-model updates on B, in order");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn a_node_catches_up_before_refusing_on_a_view_another_node_changed() {
    let _heavy = accord_tests::heavy().await;
    let cluster = NatsCluster::three().await;
    let a = node(&cluster).await;
    let b = node(&cluster).await;
    // B announces, so B holds the agreement at version 1 (announced) in
    // its state cache; A signs it: B's cached view is now stale.
    b.agreements()
        .announce(announce_wabtec("kz-stale"))
        .await
        .expect("announced through B");
    let signed = a
        .agreements()
        .sign(sign("kz-stale"))
        .await
        .expect("signed through A")
        .into_inner();
    assert_eq!(signed.version, 2);
    // On its stale view B would refuse both: "expected 2, actual 1" and
    // "localization needs a signed agreement".
    let mut request = localize("kz-stale", "b-localize");
    request.meta = meta_expecting("b-localize", 2);
    let localized = b
        .agreements()
        .record_localization(request)
        .await
        .expect("decided against the log, not the stale view")
        .into_inner();
    assert_eq!((localized.version, localized.position), (3, 3));
    // A refusal that holds on the log is still a refusal, with the true state.
    let mut again = sign("kz-stale");
    again.meta = meta("b-sign-again");
    let error = b.agreements().sign(again).await.expect_err("signing twice");
    assert_eq!(error.code(), tonic::Code::FailedPrecondition, "{error:?}");
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn conflicting_writes_through_two_nodes_have_exactly_one_winner() {
    let _heavy = accord_tests::heavy().await;
    let cluster = NatsCluster::three().await;
    let a = node(&cluster).await;
    let b = node(&cluster).await;
    a.agreements()
        .announce(announce_wabtec("kz-race"))
        .await
        .expect("announced");
    let signed = a
        .agreements()
        .sign(sign("kz-race"))
        .await
        .expect("signed")
        .into_inner();
    assert_eq!(signed.version, 2);
    for round in 0..5 {
        let version = 2 + round;
        let through = |server: &TestServer, name: &str| {
            let mut client = server.agreements();
            let mut request = localize("kz-race", &format!("{name}-{round}"));
            request.meta = meta_expecting(&format!("{name}-{round}"), version);
            async move { client.record_localization(request).await }
        };
        let (from_a, from_b) = tokio::join!(through(&a, "a"), through(&b, "b"));
        let outcomes = [from_a, from_b];
        let wins = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {outcomes:?}");
        let loser = outcomes
            .into_iter()
            .find_map(Result::err)
            .expect("one refusal");
        assert_eq!(loser.code(), tonic::Code::Aborted, "{loser:?}");
        assert!(
            loser
                .message()
                .contains(&format!("actual version {}", version + 1)),
            "{}",
            loser.message()
        );
    }
    assert_eq!(a.head().await, 7);
    verify_clean(a.channel()).await;
    a.stop().await;
    b.stop().await;
}

#[tokio::test]
async fn no_acknowledged_event_is_lost_when_a_nats_node_dies_under_load() {
    let _heavy = accord_tests::heavy().await;
    let mut cluster = NatsCluster::three().await;
    let a = node(&cluster).await;
    let b = node(&cluster).await;
    // Position -> agreement id of every acknowledged append, and how many
    // were acknowledged after the kill.
    let (acks, mut ack_count) = tokio::sync::watch::channel(BTreeMap::<u64, String>::new());
    let acks = Arc::new(acks);
    let killed = Arc::new(AtomicBool::new(false));
    let after_kill = Arc::new(AtomicU64::new(0));
    let (stop, _) = tokio::sync::watch::channel(false);
    let mut writers = Vec::new();
    for (index, server) in [&a, &b, &a, &b].into_iter().enumerate() {
        let channel = connect(server.server().grpc_addr()).await;
        let (acks, killed, after_kill) = (acks.clone(), killed.clone(), after_kill.clone());
        let mut stop = stop.subscribe();
        writers.push(tokio::spawn(async move {
            let mut client = v1::agreement_service_client::AgreementServiceClient::new(channel);
            for n in 0.. {
                let id = format!("w{index}-{n}");
                let result = tokio::select! {
                    result = client.announce(announce_wabtec(&id)) => result,
                    _ = stop.wait_for(|stop| *stop) => break,
                };
                // Refusals while the cluster elects a new leader are fine:
                // the client was told, nothing is promised.
                if let Ok(result) = result {
                    let position = result.into_inner().position;
                    let was_killed = killed.load(Ordering::SeqCst);
                    acks.send_modify(|acks| {
                        acks.insert(position, id);
                    });
                    if was_killed {
                        after_kill.fetch_add(1, Ordering::SeqCst);
                    }
                }
            }
        }));
    }
    ack_count
        .wait_for(|acks| acks.len() >= 200)
        .await
        .expect("writers run");
    cluster.nodes[2].kill().await;
    killed.store(true, Ordering::SeqCst);
    let killed_at = std::time::Instant::now();
    ack_count
        .wait_for(|_| after_kill.load(Ordering::SeqCst) >= 300)
        .await
        .expect("writes continue after the kill");
    eprintln!(
        "300 appends acknowledged within {:?} after the kill",
        killed_at.elapsed()
    );
    stop.send_replace(true);
    for writer in writers {
        writer.await.expect("writer ends");
    }
    let acknowledged = acks.borrow().clone();
    eprintln!(
        "{} appends acknowledged, {} of them after the kill",
        acknowledged.len(),
        after_kill.load(Ordering::SeqCst)
    );
    let (last_position, last_id) = acknowledged
        .last_key_value()
        .map(|(position, id)| (*position, id.clone()))
        .expect("some acknowledged");
    for server in [&a, &b] {
        // Each node reads the whole log from its own replica, once its read
        // models (which follow the replica) show the last acknowledged write.
        // A node whose consumer died with the NATS node needs a new one, and
        // the cluster may still be electing leaders: give it time, as a
        // client would after a failover.
        let mut request = tonic::Request::new(v1::GetAgreementRequest {
            agreement_id: last_id.clone(),
            min_position: last_position,
            as_of_position: 0,
        });
        request.set_timeout(std::time::Duration::from_secs(60));
        let waiting = std::time::Instant::now();
        server
            .agreements()
            .get_agreement(request)
            .await
            .expect("the node catches up");
        eprintln!(
            "node caught up with position {last_position} {:?} after the writers stopped",
            waiting.elapsed()
        );
        // Appends cancelled by the stop may still land: the log may grow
        // past what GetStats said a moment ago.
        let head = server.head().await;
        let events = accord_tests::read_all(server.event_log()).await;
        assert!(events.len() as u64 >= head);
        assert_holds_every_acknowledged(&events, &acknowledged);
    }
    verify_clean(a.channel()).await;
    a.stop().await;
    b.stop().await;
}

const SERVER: &str = env!("CARGO_BIN_EXE_accord-server-under-test");

#[tokio::test]
async fn the_server_process_on_nats_survives_sigkill_and_a_new_node_copies_the_stream() {
    let _heavy = accord_tests::heavy().await;
    let nats = accord_tests::nats::NatsNode::single().await;
    let args = accord_tests::single_nats_args(nats.url());
    let data_dir = tempfile::tempdir().expect("data dir");
    let server =
        ChildServer::start_with_args(std::path::Path::new(SERVER), data_dir.path(), &args).await;
    let (acks, mut ack_count) = tokio::sync::watch::channel(BTreeMap::<u64, String>::new());
    let acks = Arc::new(acks);
    let mut writers = Vec::new();
    for writer in 0..4 {
        let channel = connect(server.grpc_addr()).await;
        let acks = acks.clone();
        writers.push(tokio::spawn(async move {
            let mut client = v1::agreement_service_client::AgreementServiceClient::new(channel);
            for n in 0..100_000 {
                let id = format!("p{writer}-{n}");
                match client.announce(announce_wabtec(&id)).await {
                    Ok(result) => {
                        let position = result.into_inner().position;
                        acks.send_modify(|acks| {
                            acks.insert(position, id);
                        });
                    }
                    // The server is gone.
                    Err(_) => return,
                }
            }
        }));
    }
    ack_count
        .wait_for(|acks| acks.len() >= 300)
        .await
        .expect("writers run");
    server.kill().await;
    for writer in writers {
        writer.await.expect("writer ends");
    }
    let acknowledged = acks.borrow().clone();

    // The same node after SIGKILL, and a new node with an empty data directory.
    let fresh_dir = tempfile::tempdir().expect("data dir");
    for dir in [data_dir.path(), fresh_dir.path()] {
        let node = ChildServer::start_with_args(std::path::Path::new(SERVER), dir, &args).await;
        let channel = connect(node.grpc_addr()).await;
        let events =
            accord_tests::read_all(v1::event_log_client::EventLogClient::new(channel.clone()))
                .await;
        assert_holds_every_acknowledged(&events, &acknowledged);
        verify_clean(channel).await;
        node.kill().await;
    }
}

/// A node warns at start when the stream has one replica (its acknowledged
/// appends then live on one nats-server's disk), and not on an R3 stream.
#[tokio::test]
async fn a_node_warns_when_the_stream_is_not_replicated() {
    let _heavy = accord_tests::heavy().await;
    let warning = "the stream is not replicated";
    let single = accord_tests::nats::NatsNode::single().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let args = accord_tests::single_nats_args(single.url());
    let node =
        ChildServer::start_with_args(std::path::Path::new(SERVER), data_dir.path(), &args).await;
    assert!(
        node.startup_log()
            .iter()
            .any(|line| line.contains(warning) && line.contains("\"level\":\"WARN\"")),
        "R1 warns: {:#?}",
        node.startup_log()
    );
    node.kill().await;

    let cluster = NatsCluster::three().await;
    let data_dir = tempfile::tempdir().expect("data dir");
    let args = [
        "--store".to_owned(),
        cluster.urls(),
        "--nats-replicas".to_owned(),
        "3".to_owned(),
    ];
    let node =
        ChildServer::start_with_args(std::path::Path::new(SERVER), data_dir.path(), &args).await;
    assert!(
        !node.startup_log().iter().any(|line| line.contains(warning)),
        "R3 does not warn: {:#?}",
        node.startup_log()
    );
    node.kill().await;
}

#[tokio::test]
async fn every_node_derives_the_same_merkle_tree_and_proves_against_the_others_checkpoint() {
    use accord_proto::v1::transparency_client::TransparencyClient;
    let _heavy = accord_tests::heavy().await;
    let cluster = NatsCluster::three().await;
    let a = node(&cluster).await;
    let b = node(&cluster).await;
    // Writes through both nodes, interleaved.
    for index in 0..20 {
        let id = format!("kz-tree-{index}");
        let writer = if index % 2 == 0 { &a } else { &b };
        writer
            .agreements()
            .announce(announce_wabtec(&id))
            .await
            .expect("announced");
    }
    let last = accord_tests::append_deliveries(&a, "kz-tree-deliveries", 300).await;
    // B has the whole log once its read models have the last position.
    b.agreements()
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "kz-tree-deliveries".into(),
            min_position: last,
            as_of_position: 0,
        })
        .await
        .expect("B caught up");
    let checkpoint = |server: &TestServer| {
        let channel = server.channel();
        let key = server.public_key();
        async move {
            let note = TransparencyClient::new(channel)
                .get_checkpoint(v1::GetCheckpointRequest {})
                .await
                .expect("checkpoint")
                .into_inner()
                .note;
            let key: [u8; 32] = (0..32)
                .map(|at| u8::from_str_radix(&key[2 * at..2 * at + 2], 16).expect("hex"))
                .collect::<Vec<_>>()
                .try_into()
                .expect("32 bytes");
            let origin = accord_tlog::SignedNote::parse(&note)
                .expect("a note")
                .signatures[0]
                .name
                .clone();
            accord_tests::rfc9162::open_checkpoint(&note, &origin, &key).expect("verifies")
        }
    };
    let (_, size_a, root_a) = checkpoint(&a).await;
    let (_, size_b, root_b) = checkpoint(&b).await;
    assert_eq!(size_a, last);
    assert_eq!(
        (size_b, root_b),
        (size_a, root_a),
        "the same tree on both nodes"
    );
    // A proof from B holds against A's checkpoint.
    let mut from_b = TransparencyClient::new(b.channel());
    for position in [1, 2, 19, 20, 256, last] {
        let proof = from_b
            .get_inclusion_proof(v1::GetInclusionProofRequest {
                position,
                tree_size: size_a,
            })
            .await
            .expect("proof from B")
            .into_inner();
        let hashes = accord_tests::rfc9162::hashes(&proof.hashes);
        accord_tlog::verify_inclusion(
            &accord_tlog::leaf_hash(&proof.leaf),
            position - 1,
            size_a,
            &hashes,
            &root_a,
        )
        .expect("B's proof verifies against A's checkpoint");
    }
    a.stop().await;
    b.stop().await;
}
