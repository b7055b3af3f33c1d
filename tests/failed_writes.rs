//! A write that fails (the device refuses a sync, as a failing disk does)
//! fails closed: the caller gets UNAVAILABLE, no reader ever sees what was
//! not made durable, positions are never handed out twice, and the server
//! reopens its store from disk by itself before it serves again. Proved on
//! `power-cut-fs`: whatever a reader saw must still be there after a power
//! cut.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use accord_proto::v1::{
    self, agreement_service_client::AgreementServiceClient, event_log_client::EventLogClient,
};
use accord_tests::child::ChildServer;
use accord_tests::*;
use power_cut_fs::PowerCutDisk;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;

const SERVER: &str = env!("CARGO_BIN_EXE_accord-server-under-test");

/// Position -> command id of every event a `ReadLog` call returned, or None
/// when the call was refused.
async fn try_read(channel: Channel) -> Option<BTreeMap<u64, String>> {
    let mut stream = EventLogClient::new(channel)
        .read_log(v1::ReadLogRequest::default())
        .await
        .ok()?
        .into_inner();
    let mut seen = BTreeMap::new();
    while let Some(event) = stream.next().await {
        let event = event.ok()?;
        let command_id = event
            .metadata
            .map(|meta| meta.command_id)
            .unwrap_or_default();
        seen.insert(event.position, command_id);
    }
    Some(seen)
}

/// Every position and command id in the log, after checking it is
/// gap-free and verifies clean.
async fn whole_log(channel: Channel) -> BTreeMap<u64, String> {
    verify_clean(channel.clone()).await;
    let log = try_read(channel).await.expect("reads the log");
    for (index, position) in log.keys().enumerate() {
        assert_eq!(*position, index as u64 + 1, "positions are gap-free");
    }
    log
}

fn assert_contains(log: &BTreeMap<u64, String>, seen: &BTreeMap<u64, String>, what: &str) {
    for (position, command_id) in seen {
        assert_eq!(
            log.get(position),
            Some(command_id),
            "{what}: position {position} ({command_id}) was seen by a reader and must survive a power cut"
        );
    }
}

async fn append(
    client: &mut AgreementServiceClient<Channel>,
    id: &str,
) -> Result<u64, tonic::Status> {
    client
        .record_delivery(deliver("kz", id, 1))
        .await
        .map(|response| response.into_inner().position)
}

#[tokio::test]
async fn a_failed_sync_is_never_seen_and_the_server_reopens_its_store() {
    let mountpoint = tempfile::tempdir().expect("mount point");
    let mut disk = PowerCutDisk::mount(mountpoint.path())
        .expect("mounts the power-cut file system (needs root and /dev/fuse)");
    let data_dir = disk.path().join("data");
    let binary = Path::new(SERVER);
    let server = ChildServer::start(binary, &data_dir).await;
    let channel = connect(server.grpc_addr()).await;
    let mut client = AgreementServiceClient::new(channel.clone());
    let mut announce = announce_wabtec("kz");
    announce.quantity = Some(1_000);
    client.announce(announce).await.expect("announced");
    client.sign(sign("kz")).await.expect("signed");
    let mut acknowledged = BTreeMap::new();
    for step in 0..5 {
        let id = format!("before-{step}");
        acknowledged.insert(append(&mut client, &id).await.expect("appended"), id);
    }

    // 1. The device fails: the append is refused, and no reader sees it.
    disk.fail_syncs(true);
    let refused = append(&mut client, "during-the-failure")
        .await
        .expect_err("an append whose sync failed is not acknowledged");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    let mut seen = BTreeMap::new();
    for _ in 0..20 {
        if let Some(read) = try_read(channel.clone()).await {
            seen.extend(read);
        }
    }
    // Power is cut while the device still fails.
    server.kill().await;
    disk.fail_syncs(false);
    disk.power_cut().expect("power cut");
    let server = ChildServer::start(binary, &data_dir).await;
    let channel = connect(server.grpc_addr()).await;
    let log = whole_log(channel.clone()).await;
    assert_contains(&log, &acknowledged, "acknowledged before the failure");
    assert_contains(&log, &seen, "read during the failure");
    println!(
        "phase 1: {} events after the power cut; readers saw {} during the failure",
        log.len(),
        seen.len()
    );

    // 2. The device fails, then recovers: the server reopens its store by
    // itself and serves again; what it serves survives a power cut, and
    // positions continue without a gap or a reuse.
    let mut client = AgreementServiceClient::new(channel.clone());
    disk.fail_syncs(true);
    let refused = append(&mut client, "failed-again")
        .await
        .expect_err("not acknowledged");
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    disk.fail_syncs(false);
    let mut recovered = None;
    // Bounded: each try is one append; the server retries its reopen with a growing pause.
    for attempt in 0..150 {
        match append(&mut client, &format!("after-recovery-{attempt}")).await {
            Ok(position) => {
                recovered = Some(position);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let recovered = recovered.expect("the server serves appends again by itself");
    let served = whole_log(channel.clone()).await;
    assert!(
        recovered > log.len() as u64,
        "the position after recovery ({recovered}) follows the log ({}): none is reused",
        log.len()
    );
    assert_contains(&served, &log, "the log before the second failure");
    server.kill().await;
    disk.power_cut().expect("power cut");
    let server = ChildServer::start(binary, &data_dir).await;
    let after_cut = whole_log(connect(server.grpc_addr()).await).await;
    assert_eq!(
        after_cut, served,
        "everything served after the reopen was durable"
    );
    println!(
        "phase 2: recovered at position {recovered}; {} events survive the power cut",
        after_cut.len()
    );
    server.kill().await;
}
