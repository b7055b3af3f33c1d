//! One consumer group shared by two Accord nodes on a three-node NATS
//! cluster: members on both nodes split its work, and when the node running
//! the groups is killed with SIGKILL the other takes over from the group's
//! checkpoint in the cluster's bucket: nothing is lost.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};

use accord_proto::v1::{self, consume_response};
use accord_tests::child::ChildServer;
use accord_tests::nats::NatsCluster;
use accord_tests::{append_deliveries_at, connect, scrape_metrics};
use tokio_stream::StreamExt;

use super::{Member, SERVER, WAIT, ack, settings};

/// Waits until the node's metrics say whether it runs the groups.
async fn wait_until_runs_groups(metrics: SocketAddr, runs: bool) {
    let line = format!("accord_consumer_groups_leader {}", u8::from(runs));
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let metrics = scrape_metrics(metrics).await;
        if metrics.lines().any(|l| l == line) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never: {line}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Acknowledges every delivery into `acked` until the stream ends (its
/// node killed) or nothing comes for `WAIT`.
async fn acknowledge_all(mut member: Member, acked: Arc<Mutex<Vec<u64>>>) {
    loop {
        let message = match tokio::time::timeout(WAIT, member.responses.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(_)) | None) | Err(_) => return,
        };
        if let Some(consume_response::Kind::Delivery(delivery)) = message.kind {
            let position = delivery.event.expect("event").position;
            if member.requests.send(ack(vec![position])).await.is_err() {
                return;
            }
            acked.lock().expect("lock").push(position);
        }
    }
}

/// Two Accord node processes started with `args`: A runs the groups, B
/// does not; and their data directories.
async fn two_nodes(args: &[String]) -> (ChildServer, ChildServer, [tempfile::TempDir; 2]) {
    let dirs = [
        tempfile::tempdir().expect("dir"),
        tempfile::tempdir().expect("dir"),
    ];
    let a = ChildServer::start_with_args(Path::new(SERVER), dirs[0].path(), args).await;
    wait_until_runs_groups(a.metrics_addr(), true).await;
    let b = ChildServer::start_with_args(Path::new(SERVER), dirs[1].path(), args).await;
    wait_until_runs_groups(b.metrics_addr(), false).await;
    (a, b, dirs)
}

/// Creates group `name` through the node at `addr`.
async fn create_group(addr: SocketAddr, name: &str) {
    v1::consumer_groups_client::ConsumerGroupsClient::new(connect(addr).await)
        .create_consumer_group(v1::CreateConsumerGroupRequest {
            name: name.into(),
            settings: Some(settings(|settings| settings.max_in_flight = 20)),
        })
        .await
        .expect("created");
}

async fn group_info(addr: SocketAddr, name: &str) -> Result<v1::ConsumerGroupInfo, tonic::Status> {
    v1::consumer_groups_client::ConsumerGroupsClient::new(connect(addr).await)
        .get_consumer_group(v1::GetConsumerGroupRequest { name: name.into() })
        .await
        .map(tonic::Response::into_inner)
}

#[tokio::test]
async fn members_on_two_nodes_share_a_group_and_lose_nothing_when_its_node_is_killed() {
    let _heavy = accord_tests::heavy().await;
    let cluster = NatsCluster::three().await;
    let args: Vec<String> = ["--store", &cluster.urls(), "--nats-replicas", "3"]
        .map(str::to_owned)
        .to_vec();
    let (a, b, _dirs) = two_nodes(&args).await;

    // Created through B, run by A.
    let first_head = append_deliveries_at(b.grpc_addr(), "kz", 1_998).await;
    create_group(b.grpc_addr(), "shared").await;
    let (acked_a, acked_b) = (Arc::default(), Arc::default());
    let on_a = tokio::spawn(acknowledge_all(
        Member::join(a.grpc_addr(), "shared", "on-a").await,
        Arc::clone(&acked_a),
    ));
    let on_b = tokio::spawn(acknowledge_all(
        Member::join(b.grpc_addr(), "shared", "on-b").await,
        Arc::clone(&acked_b),
    ));
    let deadline = tokio::time::Instant::now() + WAIT;
    while acked_a.lock().expect("lock").len() + acked_b.lock().expect("lock").len() < 500 {
        assert!(tokio::time::Instant::now() < deadline, "members get events");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let split = (
        acked_a.lock().expect("lock").len(),
        acked_b.lock().expect("lock").len(),
    );
    assert!(
        split.0 > 0 && split.1 > 0,
        "both nodes' members work: {split:?}"
    );

    // The node running the group dies mid-stream; more events come through B.
    a.kill().await;
    on_a.await.expect("member on A ends");
    let head = append_deliveries_at(b.grpc_addr(), "uz", 998).await;
    assert_eq!(head, first_head + 1_000);
    wait_until_runs_groups(b.metrics_addr(), true).await;
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    loop {
        let settled = group_info(b.grpc_addr(), "shared")
            .await
            .is_ok_and(|info| info.checkpoint == head && info.in_flight == 0);
        if settled {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the group settles everything"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let union: BTreeSet<u64> = acked_a
        .lock()
        .expect("lock")
        .iter()
        .chain(acked_b.lock().expect("lock").iter())
        .copied()
        .collect();
    assert_eq!(union, (1..=head).collect(), "every event acknowledged");
    let info = group_info(b.grpc_addr(), "shared").await.expect("info");
    assert_eq!((info.lag, info.parked, info.members), (0, 0, 1), "{info:?}");
    b.kill().await;
    drop(on_b);
}

/// A node that runs the groups and is paused (SIGSTOP) past its lease is
/// replaced; resumed, it stops running them without writing over what the
/// new node stored: acknowledgements it finds waiting when it wakes up
/// would otherwise set the stored checkpoint back.
#[tokio::test]
async fn a_paused_node_loses_the_groups_and_never_writes_over_its_successor() {
    let _heavy = accord_tests::heavy().await;
    let nats = accord_tests::nats::NatsNode::single().await;
    let args = accord_tests::single_nats_args(nats.url());
    let (a, b, _dirs) = two_nodes(&args).await;
    append_deliveries_at(b.grpc_addr(), "kz", 998).await;
    create_group(b.grpc_addr(), "paused").await;
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let member = tokio::spawn(acknowledge_all(
        Member::join(b.grpc_addr(), "paused", "on-b").await,
        Arc::clone(&acked),
    ));
    let deadline = tokio::time::Instant::now() + WAIT;
    while acked.lock().expect("lock").len() < 100 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the member gets events"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    a.signal(libc::SIGSTOP);
    let head = append_deliveries_at(b.grpc_addr(), "uz", 998).await;
    wait_until_runs_groups(b.metrics_addr(), true).await;
    let deadline = tokio::time::Instant::now() + WAIT * 2;
    while !group_info(b.grpc_addr(), "paused")
        .await
        .is_ok_and(|info| info.checkpoint == head && info.in_flight == 0)
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "B settles everything"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A wakes up to the acknowledgements sent to it before it froze.
    a.signal(libc::SIGCONT);
    wait_until_runs_groups(a.metrics_addr(), false).await;
    // B stops cleanly (storing its progress, giving up the lease); A takes
    // over from what is stored, which must be B's checkpoint.
    drop(member);
    assert!(b.terminate().await.success());
    wait_until_runs_groups(a.metrics_addr(), true).await;
    let info = group_info(a.grpc_addr(), "paused").await.expect("info");
    assert_eq!((info.checkpoint, info.lag), (head, 0), "{info:?}");
    let union: BTreeSet<u64> = acked.lock().expect("lock").iter().copied().collect();
    assert_eq!(union, (1..=head).collect(), "every event acknowledged");
    a.kill().await;
}
