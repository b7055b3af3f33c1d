//! A full disk, for real: the data directory on a small tmpfs. Appends fail
//! cleanly with RESOURCE_EXHAUSTED, nothing half-written is visible, and once
//! space returns a restart brings the service back with every acknowledged
//! event (sled keeps failing after its first IO error until it is reopened).
//! Needs root (mount), as CI and the development machines run.

use std::path::{Path, PathBuf};

use accord_proto::v1::{
    self, admin_client::AdminClient, agreement_service_client::AgreementServiceClient,
};
use accord_server::Config;
use accord_tests::*;
use tokio_stream::StreamExt;
use tonic::Code;

/// A tmpfs mounted for one test, unmounted when dropped.
struct SmallDisk {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> Self {
        let dir = tempfile::tempdir().expect("mount point");
        let path = dir.path().to_path_buf();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(&path)
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs needs root; this test does not pass without it"
        );
        Self { _dir: dir, path }
    }

    fn resize(&self, size: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount");
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.path)
            .status();
    }
}

async fn verify_clean(channel: tonic::transport::Channel) -> u64 {
    let mut stream = AdminClient::new(channel)
        .verify_log(v1::VerifyLogRequest {})
        .await
        .expect("verify")
        .into_inner();
    let mut last = None;
    while let Some(progress) = stream.next().await {
        last = Some(progress.expect("progress"));
    }
    let last = last.expect("report");
    assert!(last.problems.is_empty(), "{:?}", last.problems);
    last.checked
}

#[tokio::test]
async fn a_full_disk_fails_appends_cleanly_and_recovers_when_space_returns() {
    let disk = SmallDisk::mount("24m");
    let mut config = Config::ephemeral(disk.path().join("data"));
    config.cache_bytes = 4 * 1024 * 1024;
    let server = accord_server::start(config).await.expect("starts");
    let channel = connect(server.grpc_addr()).await;
    let mut client = AgreementServiceClient::new(channel.clone());
    let mut announce = announce_wabtec("kz");
    announce.quantity = Some(100_000_000);
    client.announce(announce).await.expect("announced");
    client.sign(sign("kz")).await.expect("signed");

    let mut acknowledged = 2u64;
    let mut failure = None;
    for batch in 0..2_000 {
        let commands = (0..100)
            .map(|index| {
                let mut request = deliver("kz", &format!("b{batch}-{index}"), 1);
                request.reference = "x".repeat(1_500);
                command(v1::command::Command::RecordDelivery(request))
            })
            .collect();
        match client.execute(v1::ExecuteRequest { commands }).await {
            Ok(response) => acknowledged += response.into_inner().results.len() as u64,
            Err(status) => {
                failure = Some(status);
                break;
            }
        }
    }
    let status = failure.expect("the disk fills up");
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "a full disk is RESOURCE_EXHAUSTED: {status:?}"
    );
    assert!(
        status.message().contains("No space left"),
        "{}",
        status.message()
    );
    println!(
        "disk full after {acknowledged} acknowledged events: {}",
        status.message()
    );

    disk.resize("256m");
    // The store stays failed until it is reopened: restart on the same directory.
    let _ = server.shutdown().await;
    let mut config = Config::ephemeral(disk.path().join("data"));
    config.cache_bytes = 4 * 1024 * 1024;
    let server = accord_server::start(config)
        .await
        .expect("restarts once space is back");
    let channel = connect(server.grpc_addr()).await;
    let mut client = AgreementServiceClient::new(channel.clone());
    client
        .record_delivery(deliver("kz", "after-the-disk-was-full", 1))
        .await
        .expect("appends again");
    let checked = verify_clean(channel.clone()).await;
    let events = read_all(accord_proto::v1::event_log_client::EventLogClient::new(
        channel,
    ))
    .await;
    assert_eq!(checked, events.len() as u64);
    // The failed batch of 100 is there whole or not at all, never in part.
    let extra = events.len() as u64 - acknowledged;
    assert!(
        extra == 1 || extra == 101,
        "{extra} events beyond the acknowledged ones"
    );
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.position, index as u64 + 1);
    }
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn the_server_process_recovers_by_itself_when_space_returns() {
    let disk = SmallDisk::mount("24m");
    let binary = Path::new(env!("CARGO_BIN_EXE_accord-server-under-test"));
    let server = accord_tests::child::ChildServer::start(binary, &disk.path().join("data")).await;
    let channel = connect(server.grpc_addr()).await;
    let mut client = AgreementServiceClient::new(channel.clone());
    let mut announce = announce_wabtec("kz");
    announce.quantity = Some(100_000_000);
    client.announce(announce).await.expect("announced");
    client.sign(sign("kz")).await.expect("signed");
    let mut acknowledged = 2u64;
    let mut full = false;
    for batch in 0..2_000 {
        let commands = (0..100)
            .map(|index| {
                let mut request = deliver("kz", &format!("b{batch}-{index}"), 1);
                request.reference = "x".repeat(1_500);
                command(v1::command::Command::RecordDelivery(request))
            })
            .collect();
        match client.execute(v1::ExecuteRequest { commands }).await {
            Ok(response) => acknowledged += response.into_inner().results.len() as u64,
            Err(status) => {
                assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
                full = true;
                break;
            }
        }
    }
    assert!(full, "the disk fills up");
    disk.resize("256m");
    // The server reopens its store by itself; clients reconnect to the same port.
    // Bounded polling: each try is one append.
    let mut recovered = false;
    for attempt in 0..150 {
        if client
            .record_delivery(deliver("kz", "after-the-disk-was-full", 1))
            .await
            .is_ok()
        {
            recovered = true;
            break;
        }
        let _ = attempt;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "the server serves appends again without being restarted from outside"
    );
    let checked = verify_clean(channel.clone()).await;
    let events = read_all(accord_proto::v1::event_log_client::EventLogClient::new(
        channel,
    ))
    .await;
    assert_eq!(checked, events.len() as u64);
    let extra = events.len() as u64 - acknowledged;
    assert!(
        extra == 1 || extra == 101,
        "{extra} events beyond the acknowledged ones"
    );
    server.kill().await;
}
