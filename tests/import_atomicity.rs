//! `ImportLog` is all or nothing: a bad record anywhere in a large export
//! imports nothing, a crash in the middle of an import leaves the whole
//! import or an empty log, appends wait for no import (they are refused
//! while it runs and never land between its records), and the server's
//! memory does not grow with the size of the export.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use accord_proto::v1::{self, admin_client::AdminClient, command::Command};
use accord_tests::child::ChildServer;
use accord_tests::*;
use tonic::Code;

const SERVER: &str = env!("CARGO_BIN_EXE_accord-server-under-test");
const RECORDS: usize = 50_000;

/// An export of `count` announcements, from a server of its own.
struct Export {
    records: Vec<v1::ExportedRecord>,
    /// The exporting server's public key: importers trust it.
    public_key: String,
}

impl Export {
    /// Arguments of a server that trusts this export's signature.
    fn trusting(&self) -> Vec<String> {
        vec!["--trusted-key".to_owned(), self.public_key.clone()]
    }
}

async fn export_of(count: usize) -> Export {
    let source = TestServer::start().await;
    for first in (0..count).step_by(1_000) {
        let commands = (first..(first + 1_000).min(count))
            .map(|index| command(Command::Announce(announce_boeing(&format!("a{index}")))))
            .collect();
        source
            .agreements()
            .execute(v1::ExecuteRequest { commands })
            .await
            .expect("executed");
    }
    let records = source.export().await;
    assert_eq!(records.len(), count);
    let public_key = source.public_key();
    source.stop().await;
    Export {
        records,
        public_key,
    }
}

async fn head(channel: tonic::transport::Channel) -> u64 {
    AdminClient::new(channel)
        .get_stats(v1::GetStatsRequest {})
        .await
        .expect("stats")
        .into_inner()
        .head_position
}

/// `records` as a request stream that raises `sent` once the last one is taken.
fn sending(
    records: Vec<v1::ExportedRecord>,
    sent: Arc<AtomicBool>,
) -> impl tokio_stream::Stream<Item = v1::ExportedRecord> {
    let count = records.len();
    tokio_stream::iter(records.into_iter().enumerate().map(move |(index, record)| {
        if index + 1 == count {
            sent.store(true, Ordering::Release);
        }
        record
    }))
}

#[tokio::test]
async fn a_bad_last_record_or_a_crash_mid_import_leaves_all_or_nothing() {
    let _heavy = accord_tests::heavy().await;
    let export = export_of(RECORDS).await;
    let records = export.records.clone();
    let data_dir = tempfile::tempdir().expect("data dir");
    let trusting = export.trusting();
    let start =
        || ChildServer::start_with_args(std::path::Path::new(SERVER), data_dir.path(), &trusting);
    let server = start().await;
    let channel = connect(server.grpc_addr()).await;

    // A fault in the last record: nothing is imported.
    let mut tampered = records.clone();
    let last = tampered.last_mut().expect("records");
    last.event.as_mut().expect("event").agreement_id = "forged".into();
    let status = AdminClient::new(channel.clone())
        .import_log(tokio_stream::iter(tampered))
        .await
        .expect_err("the last record does not match its event");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status
            .message()
            .contains(&format!("records[{}]", RECORDS - 1)),
        "{}",
        status.message()
    );
    assert_eq!(head(channel.clone()).await, 0, "nothing imported");

    // A crash while the log takes the import: all of it or none.
    let sent = Arc::new(AtomicBool::new(false));
    let import = {
        let mut admin = AdminClient::new(channel.clone());
        let stream = sending(records.clone(), sent.clone());
        tokio::spawn(async move { admin.import_log(stream).await })
    };
    while !sent.load(Ordering::Acquire) {
        tokio::task::yield_now().await;
    }
    // The kill lands at a varying point of the server's writing.
    let delay = accord_tests::crash_cycles::seed_from_env() % 400;
    tokio::time::sleep(Duration::from_millis(delay)).await;
    server.kill().await;
    let answered = import.await.expect("task");
    let server = start().await;
    let channel = connect(server.grpc_addr()).await;
    let after_crash = head(channel.clone()).await;
    println!(
        "killed {delay} ms after the last record was sent ({}); head after restart: {after_crash}",
        if answered.is_ok() {
            "import answered"
        } else {
            "import not answered"
        }
    );
    assert!(
        after_crash == 0 || after_crash == RECORDS as u64,
        "a partial import of {after_crash} records"
    );
    if answered.is_ok() {
        assert_eq!(after_crash, RECORDS as u64, "an answered import is durable");
    }
    if after_crash == 0 {
        let imported = AdminClient::new(channel.clone())
            .import_log(tokio_stream::iter(records.clone()))
            .await
            .expect("imports again")
            .into_inner();
        assert_eq!(imported.imported, RECORDS as u64);
    }
    assert_eq!(verify_clean(channel.clone()).await, RECORDS as u64);
    let events = read_all(v1::event_log_client::EventLogClient::new(channel)).await;
    assert_eq!(
        events
            .iter()
            .map(|event| event.event_id.clone())
            .collect::<Vec<_>>(),
        records
            .iter()
            .map(|record| record.event.as_ref().expect("event").event_id.clone())
            .collect::<Vec<_>>()
    );
    server.terminate().await;
}

#[tokio::test]
async fn appends_never_land_among_the_records_of_an_import() {
    let _heavy = accord_tests::heavy().await;
    let export = export_of(RECORDS).await;
    let records = export.records.clone();
    let target = TestServer::start_trusting(std::slice::from_ref(&export.public_key)).await;
    let sent = Arc::new(AtomicBool::new(false));
    let import = {
        let mut admin = target.admin();
        let stream = sending(records.clone(), sent.clone());
        tokio::spawn(async move { admin.import_log(stream).await })
    };
    // Appends start once the server has the whole export, about when it
    // begins to write it.
    while !sent.load(Ordering::Acquire) {
        tokio::task::yield_now().await;
    }
    let mut appended = Vec::new();
    let mut refused = 0;
    let mut attempt = 0;
    while !import.is_finished() {
        match target
            .agreements()
            .announce(announce_wabtec(&format!("writer-{attempt}")))
            .await
        {
            Ok(result) => appended.push(result.into_inner().position),
            Err(status) => {
                assert_eq!(status.code(), Code::Unavailable, "{status:?}");
                assert!(
                    status.message().contains("an import is running"),
                    "{}",
                    status.message()
                );
                refused += 1;
            }
        }
        attempt += 1;
    }
    let imported = import.await.expect("task");
    println!(
        "{} appends landed, {refused} refused while the import ran; import: {:?}",
        appended.len(),
        imported
            .as_ref()
            .map(|response| response.get_ref().imported)
    );
    match imported {
        Ok(response) => {
            assert_eq!(response.into_inner().imported, RECORDS as u64);
            assert!(
                appended.iter().all(|position| *position > RECORDS as u64),
                "an append landed among the imported records: {appended:?}"
            );
        }
        // An append that won the race made the log non-empty first.
        Err(status) => {
            assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
            assert!(!appended.is_empty());
            assert_eq!(target.head().await, appended.len() as u64);
        }
    }
    assert_eq!(verify_clean(target.channel()).await, target.head().await);
    target.stop().await;
}

/// The peak growth of `server`'s memory while `work` runs.
async fn peak_growth<F: std::future::Future + Send + 'static>(server: &ChildServer, work: F) -> u64
where
    F::Output: Send + 'static,
{
    let before = server.rss_bytes();
    let work = tokio::spawn(work);
    let mut peak = before;
    while !work.is_finished() {
        peak = peak.max(server.rss_bytes());
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    work.await.expect("task");
    peak.saturating_sub(before)
}

async fn small_cache_server(data_dir: &std::path::Path, export: &Export) -> ChildServer {
    let mut args = vec!["--cache-bytes".to_owned(), (8 * 1024 * 1024).to_string()];
    args.extend(export.trusting());
    ChildServer::start_with_args(std::path::Path::new(SERVER), data_dir, &args).await
}

#[tokio::test]
async fn an_import_holds_no_export_in_memory() {
    let _heavy = accord_tests::heavy().await;
    let export = export_of(RECORDS).await;
    let records = export.records.clone();
    let export_bytes: usize = records.iter().map(prost::Message::encoded_len).sum();
    // The same events appended, for the memory the store itself takes.
    let appended_dir = tempfile::tempdir().expect("data dir");
    let appending = small_cache_server(appended_dir.path(), &export).await;
    let channel = connect(appending.grpc_addr()).await;
    let appended = peak_growth(&appending, async move {
        let mut client = v1::agreement_service_client::AgreementServiceClient::new(channel);
        for first in (0..RECORDS).step_by(1_000) {
            let commands = (first..first + 1_000)
                .map(|index| command(Command::Announce(announce_boeing(&format!("a{index}")))))
                .collect();
            client
                .execute(v1::ExecuteRequest { commands })
                .await
                .expect("executed");
        }
    })
    .await;
    appending.terminate().await;

    let imported_dir = tempfile::tempdir().expect("data dir");
    let importing = small_cache_server(imported_dir.path(), &export).await;
    let channel = connect(importing.grpc_addr()).await;
    // Checking the whole export (refused at its last record) writes
    // nothing and keeps no record in memory.
    let mut tampered = records.clone();
    tampered.last_mut().expect("records").hash[0] ^= 1;
    let checking = connect(importing.grpc_addr()).await;
    let checked = peak_growth(&importing, async move {
        AdminClient::new(checking)
            .import_log(tokio_stream::iter(tampered))
            .await
            .expect_err("the last record is refused");
    })
    .await;
    let imported = peak_growth(&importing, async move {
        AdminClient::new(channel)
            .import_log(tokio_stream::iter(records))
            .await
            .expect("imported");
    })
    .await;
    importing.terminate().await;
    let mib = |bytes: u64| bytes / (1024 * 1024);
    println!(
        "{RECORDS} events ({} MiB as exported): peak memory +{} MiB appending them, +{} MiB checking the export, +{} MiB importing it",
        export_bytes / (1024 * 1024),
        mib(appended),
        mib(checked),
        mib(imported)
    );
    assert!(
        checked < export_bytes as u64 / 2,
        "checking the export took {} MiB",
        mib(checked)
    );
    assert!(
        imported < appended + export_bytes as u64 / 4,
        "importing took {} MiB more than appending the same events",
        mib(imported.saturating_sub(appended))
    );
}
