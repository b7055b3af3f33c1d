//! A second line of defence beside the power-cut test: the real server under
//! `strace`, sequential appends (each one its own group commit, since the
//! next is sent only after the answer), and a count of the `fdatasync`
//! calls on the log's data file. sled's own `flush` ends in
//! `sync_file_range`, which is not a sync; without Accord's own
//! `fdatasync` after each group this count would be zero.

use std::path::Path;

use accord_proto::v1::agreement_service_client::AgreementServiceClient;
use accord_tests::child::ChildServer;
use accord_tests::*;

const SERVER: &str = env!("CARGO_BIN_EXE_accord-server-under-test");
const APPENDS: usize = 40;

fn strace() -> String {
    std::env::var("ACCORD_STRACE")
        .ok()
        .or_else(|| {
            ["/usr/bin/strace", "/bin/strace"]
                .into_iter()
                .find(|path| Path::new(path).exists())
                .map(str::to_owned)
        })
        .expect("strace is needed: scripts/test installs it (apt-get install strace)")
}

#[tokio::test]
async fn every_acknowledged_group_is_fdatasynced_before_the_answer() {
    let work = tempfile::tempdir().expect("temporary directory");
    let data_dir = work.path().join("data");
    let trace = work.path().join("trace");
    let wrapper = [
        strace(),
        "-f".into(),
        "-y".into(),
        "-e".into(),
        "trace=fsync,fdatasync,sync_file_range".into(),
        "-o".into(),
        trace.display().to_string(),
    ];
    let server = ChildServer::start_under(&wrapper, Path::new(SERVER), &data_dir, &[]).await;
    let mut client = AgreementServiceClient::new(connect(server.grpc_addr()).await);
    let mut announce = announce_wabtec("kz");
    announce.quantity = Some(1_000);
    client.announce(announce).await.expect("announced");
    client.sign(sign("kz")).await.expect("signed");
    for step in 0..APPENDS {
        client
            .record_delivery(deliver("kz", &format!("d{step}"), 1))
            .await
            .expect("appended");
    }
    assert!(server.terminate().await.success(), "clean exit");

    let trace = std::fs::read_to_string(&trace).expect("strace wrote its trace");
    let log_file = format!("{}>", data_dir.join("log").join("db").display());
    // With several threads traced, a call may be split into
    // `fdatasync(9</path> <unfinished ...>` and `<... fdatasync resumed>) = 0`.
    let synced = trace
        .lines()
        .filter(|line| line.contains("fdatasync(") && line.contains(&log_file))
        .filter(|line| line.trim_end().ends_with("= 0") || line.contains("<unfinished"))
        .count();
    let failed = trace
        .lines()
        .filter(|line| line.contains("fdatasync") && line.contains("= -1"))
        .count();
    assert_eq!(failed, 0, "no sync failed\n{trace}");
    let acknowledged = APPENDS + 2;
    println!("{synced} fdatasync calls on {log_file} for {acknowledged} sequential appends");
    assert!(
        synced >= acknowledged,
        "every acknowledged group is synced: {synced} fdatasync calls for {acknowledged} appends\n{trace}"
    );
}
