//! The power-cut loop: the crash loop with the data directory on a file
//! system that behaves like a disk losing power (`power-cut-fs`). N times:
//! load the real server from 8 clients, SIGKILL it at a random moment, throw
//! away every byte that was written but not synced (`fsync`/`fdatasync`),
//! restart on what is left, and check every acknowledged event at its
//! position, positions gap-free, `VerifyLog` clean, read models equal to a
//! fresh rebuild. Killing a process alone cannot show a missing sync (the
//! page cache survives it); this can.
//!
//! N is 5 by default; `ACCORD_POWER_CUT_CYCLES=100 cargo test -p accord-tests
//! --test integration -- power_cut::` runs the long loop. Needs root and `/dev/fuse`.

use std::path::Path;

use accord_tests::crash_cycles::{crash_cycles, cycles_from_env, seed_from_env};
use power_cut_fs::{Names, PowerCutDisk};

const SERVER: &str = env!("CARGO_BIN_EXE_accord-server-under-test");

#[tokio::test]
async fn acknowledged_appends_survive_power_cuts() {
    let mountpoint = tempfile::tempdir().expect("mount point");
    // POSIX's letter: a name survives a power cut only once its directory
    // was synced, so the directory syncs are tested too.
    let mut disk = PowerCutDisk::mount_with(mountpoint.path(), Names::SyncedByDirectory)
        .expect("mounts the power-cut file system (needs root and /dev/fuse)");
    let data_dir = disk.path().join("data");
    let mut lost_before = 0;
    let summary = crash_cycles(
        Path::new(SERVER),
        &data_dir,
        // Small index windows: the cuts land while the indexer writes
        // windows and the merger merges runs, not only between them.
        &["--index-window-records".to_owned(), "64".to_owned()],
        cycles_from_env("ACCORD_POWER_CUT_CYCLES"),
        seed_from_env(),
        |cycle| {
            disk.power_cut().expect("power cut");
            let lost = disk.stats().lost_bytes;
            println!(
                "cycle {cycle}: power cut dropped {} unsynced bytes",
                lost - lost_before
            );
            lost_before = lost;
        },
    )
    .await;
    let stats = disk.stats();
    println!(
        "power cut: {} cycles survived, {} acknowledged appends, 0 lost; {} file syncs, {} directory syncs, {} unsynced bytes and {} unsynced directories dropped",
        summary.cycles,
        summary.acknowledged,
        stats.file_syncs,
        stats.directory_syncs,
        stats.lost_bytes,
        stats.lost_names
    );
    assert!(
        stats.lost_bytes > 0,
        "the power cuts dropped unsynced writes: the test exercised what it claims to"
    );
}

/// On NATS the stream is the log and each node's replica is derived from
/// it (not synced per message): after a power cut of the Accord node the
/// replica keeps only what sled had synced and follows the stream again
/// from there, never ahead of it. The nats-server runs beside, with
/// `sync_interval: always`, on a disk that keeps its power.
#[tokio::test]
async fn a_nats_node_rederives_its_replica_after_power_cuts() {
    let nats = accord_tests::nats::NatsNode::single().await;
    let args = accord_tests::single_nats_args(nats.url());
    let mountpoint = tempfile::tempdir().expect("mount point");
    // POSIX's letter: a name survives a power cut only once its directory
    // was synced, so the directory syncs are tested too.
    let mut disk = PowerCutDisk::mount_with(mountpoint.path(), Names::SyncedByDirectory)
        .expect("mounts the power-cut file system (needs root and /dev/fuse)");
    let data_dir = disk.path().join("data");
    let cycles = cycles_from_env("ACCORD_POWER_CUT_CYCLES").min(3);
    let summary = crash_cycles(
        Path::new(SERVER),
        &data_dir,
        &args,
        cycles,
        seed_from_env(),
        |_| {
            disk.power_cut().expect("power cut");
        },
    )
    .await;
    println!(
        "power cut on NATS: {} cycles survived, {} acknowledged appends, 0 lost; {} unsynced bytes of the replica dropped",
        summary.cycles,
        summary.acknowledged,
        disk.stats().lost_bytes
    );
}

/// An acknowledged `ImportLog` is synced like an append: imported into a
/// server on the power-cut file system, killed right after the answer, the
/// power cut, every imported record is there and the log verifies clean.
#[tokio::test]
async fn an_acknowledged_import_survives_a_power_cut() {
    use accord_proto::v1::{self, admin_client::AdminClient};
    use accord_tests::child::ChildServer;
    use accord_tests::{TestServer, connect, read_all, verify_clean};

    let source = TestServer::start().await;
    let commands = accord_dataset::unga80_commands().expect("dataset");
    source
        .agreements()
        .execute(v1::ExecuteRequest { commands })
        .await
        .expect("loaded");
    let exported = source.export().await;
    let expected = source.read_all().await;
    let trusting = ["--trusted-key".to_owned(), source.public_key()];
    source.stop().await;

    let mountpoint = tempfile::tempdir().expect("mount point");
    let mut disk = PowerCutDisk::mount_with(mountpoint.path(), Names::SyncedByDirectory)
        .expect("mounts the power-cut file system (needs root and /dev/fuse)");
    let data_dir = disk.path().join("data");
    let server = ChildServer::start_with_args(Path::new(SERVER), &data_dir, &trusting).await;
    let imported = AdminClient::new(connect(server.grpc_addr()).await)
        .import_log(tokio_stream::iter(exported.clone()))
        .await
        .expect("imported")
        .into_inner();
    assert_eq!(imported.imported, exported.len() as u64);
    server.kill().await;
    disk.power_cut().expect("power cut");

    let server = ChildServer::start(Path::new(SERVER), &data_dir).await;
    let channel = connect(server.grpc_addr()).await;
    assert_eq!(verify_clean(channel.clone()).await, exported.len() as u64);
    assert_eq!(
        read_all(accord_proto::v1::event_log_client::EventLogClient::new(
            channel
        ))
        .await,
        expected,
        "every imported record survives the power cut"
    );
    server.kill().await;
}
