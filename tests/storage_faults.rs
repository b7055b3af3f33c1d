//! A full disk, for real: the data directory on a small tmpfs. Appends fail
//! cleanly with RESOURCE_EXHAUSTED, nothing half-written is visible, and once
//! space returns a restart brings the service back with every acknowledged
//! event (sled keeps failing after its first IO error until it is reopened).
//! Needs root (mount), as CI and the development machines run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use accord_proto::v1::{
    self, agreement_service_client::AgreementServiceClient, event_log_client::EventLogClient,
};
use accord_server::Config;
use accord_tests::child::ChildServer;
use accord_tests::*;
use tokio_stream::StreamExt;
use tonic::Code;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

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

/// Announces and signs an agreement, then appends batches of 100 deliveries
/// with 1.5 KB references until the disk is full; returns the acknowledged
/// events and the refusal, which must be RESOURCE_EXHAUSTED.
async fn fill_until_full(client: &mut AgreementServiceClient<Channel>) -> u64 {
    let mut announce = announce_wabtec("kz");
    announce.quantity = Some(100_000_000);
    client.announce(announce).await.expect("announced");
    client.sign(sign("kz")).await.expect("signed");
    let mut acknowledged = 2u64;
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
                assert_eq!(
                    status.code(),
                    Code::ResourceExhausted,
                    "a full disk: {status:?}"
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
                return acknowledged;
            }
        }
    }
    panic!("the disk never filled up");
}

/// After recovery: verified clean, gap-free, every acknowledged event there,
/// the failed batch whole or absent, and the one appended after recovery.
async fn check_after_recovery(channel: Channel, acknowledged: u64) {
    let checked = verify_clean(channel.clone()).await;
    let events = read_all(EventLogClient::new(channel)).await;
    assert_eq!(checked, events.len() as u64);
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event.position, index as u64 + 1);
    }
    let extra = events.len() as u64 - acknowledged;
    assert!(
        extra == 1 || extra == 101,
        "{extra} events beyond the acknowledged ones"
    );
}

#[tokio::test]
async fn a_full_disk_fails_appends_cleanly_and_recovers_when_space_returns() {
    let disk = SmallDisk::mount("24m");
    let config = || {
        let mut config = Config::ephemeral(disk.path().join("data"));
        config.cache_bytes = 4 * 1024 * 1024;
        config
    };
    let server = accord_server::start(config()).await.expect("starts");
    let channel = connect(server.grpc_addr()).await;
    let acknowledged = fill_until_full(&mut AgreementServiceClient::new(channel.clone())).await;
    // Health tells load balancers and orchestrators that this store failed.
    let mut health = HealthClient::new(channel)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .expect("health watch")
        .into_inner();
    let not_serving = ServingStatus::NotServing as i32;
    let became_not_serving = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(update)) = health.next().await {
            if update.status == not_serving {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(
        became_not_serving,
        "health turns NOT_SERVING when the store fails"
    );

    disk.resize("256m");
    // The store stays failed until it is reopened: start again on the same
    // directory. This client's health watch is still open: the shutdown
    // closes its connection after the grace period, which releases the old
    // store; retry until then, as the server's own supervisor does.
    let _ = server.shutdown().await;
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(_)) = health.next().await {}
    })
    .await;
    assert!(closed.is_ok(), "the shutdown closed the watch's connection");
    let mut restarted = None;
    for _ in 0..100 {
        match accord_server::start(config()).await {
            Ok(server) => {
                restarted = Some(server);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let server = restarted.expect("restarts once space is back");
    let channel = connect(server.grpc_addr()).await;
    AgreementServiceClient::new(channel.clone())
        .record_delivery(deliver("kz", "after-the-disk-was-full", 1))
        .await
        .expect("appends again");
    check_after_recovery(channel, acknowledged).await;
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn the_server_process_recovers_by_itself_when_space_returns() {
    let disk = SmallDisk::mount("24m");
    let binary = Path::new(env!("CARGO_BIN_EXE_accord-server-under-test"));
    let server = ChildServer::start(binary, &disk.path().join("data")).await;
    let channel = connect(server.grpc_addr()).await;
    let mut client = AgreementServiceClient::new(channel.clone());
    let acknowledged = fill_until_full(&mut client).await;
    disk.resize("256m");
    // The server reopens its store by itself; the client reconnects to the
    // same port. Bounded polling: each try is one append.
    let mut recovered = false;
    for _ in 0..150 {
        if client
            .record_delivery(deliver("kz", "after-the-disk-was-full", 1))
            .await
            .is_ok()
        {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        recovered,
        "the server serves appends again without being restarted from outside"
    );
    check_after_recovery(channel, acknowledged).await;
    server.kill().await;
}
