//! Data written by earlier versions of Accord keeps working. The fixtures in
//! `tests/fixtures/` were written by Accord 0.1.0 before the storage formats
//! were split from the wire API (see `tests/fixtures/README.md`): a data
//! directory, stopped cleanly, and an `accordctl export` of the same log.
//! Today's server must open, read, verify, project and continue them, and
//! read them exactly as it reads what it writes itself.

use std::path::{Path, PathBuf};

use accord_proto::v1;
use accord_server::Config;
use accord_tests::*;

const ACCORDCTL: &str = env!("CARGO_BIN_EXE_accordctl-under-test");

/// Records in the fixtures.
const FIXTURE_RECORDS: u64 = 12;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Copies the fixture data directory `name` to `to` as an operator restores
/// a backup: the signing key private to its owner again. Git keeps no mode
/// but the executable bit, so a clean clone checks the key out readable by
/// others, and the server rightly refuses to start on such a key.
fn restore_fixture(name: &str, to: &Path) {
    use std::os::unix::fs::PermissionsExt;
    copy_dir(&fixtures().join(name), to);
    let key = to.join("signing-key");
    if key.exists() {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600))
            .expect("the restored key is private");
    }
}

/// The commands that wrote the fixtures, as `Execute` batches in order.
fn fixture_batches() -> Vec<Vec<v1::Command>> {
    use v1::command::Command;
    let mut more_localization = localize("kz-wabtec-locomotives", "fixture/astana-assembly");
    more_localization.local_units = 25;
    more_localization.localization_rate_bp = 3_000;
    more_localization.recorded_at = at(UNGA_80_WEEK + 2 * 86_400);
    vec![
        accord_dataset::unga80_commands().expect("the UNGA 80 facts"),
        vec![command(Command::RecordDelivery(deliver(
            "uz-boeing-787",
            "fixture/first-787s",
            2,
        )))],
        vec![
            command(Command::RecordDelivery(deliver(
                "kz-wabtec-locomotives",
                "fixture/first-locomotives",
                25,
            ))),
            command(Command::RecordLocalization(more_localization)),
        ],
    ]
}

async fn execute_fixture_commands(server: &TestServer) -> Vec<v1::AppendResult> {
    let mut results = Vec::new();
    for commands in fixture_batches() {
        let response = server
            .agreements()
            .execute(v1::ExecuteRequest { commands })
            .await
            .expect("the fixture's commands are accepted")
            .into_inner();
        results.extend(response.results);
    }
    results
}

/// A server on a copy of the fixture data directory, adopted as an
/// operator upgrading from 0.1 does (`--adopt-unsigned-log`).
async fn server_on_fixture() -> TestServer {
    let data_dir = tempfile::tempdir().expect("tempdir");
    restore_fixture("v1-data-dir", data_dir.path());
    let mut server =
        TestServer::start_in(data_dir, |config| config.adopt_unsigned_log = true).await;
    // Adopted once; restarts go without the flag, as the README says.
    server.adjust_config(|config| config.adopt_unsigned_log = false);
    server
}

#[tokio::test]
async fn a_0_1_data_directory_is_refused_until_adopted_then_signed_for_good() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    restore_fixture("v1-data-dir", data_dir.path());
    let refused = accord_server::start(Config::ephemeral(data_dir.path()))
        .await
        .err()
        .expect("an unsigned log is refused");
    // Read as the routine upgrade it is, not as tampering.
    let said = refused.to_string();
    assert!(said.contains("--adopt-unsigned-log"), "{said}");
    assert!(said.contains("Accord 0.1"), "{said}");
    assert!(!said.contains("tampered"), "{said}");
    let server = TestServer::start_in(data_dir, |config| config.adopt_unsigned_log = true).await;
    let stats = server
        .admin()
        .get_stats(v1::GetStatsRequest {})
        .await
        .expect("stats")
        .into_inner();
    let checkpoint = stats.checkpoint.expect("signed at adoption");
    assert_eq!(checkpoint.position, FIXTURE_RECORDS);
    assert_eq!(
        accord_server::hex::encode(&checkpoint.public_key),
        server.public_key()
    );
    // Signed now: the flag, left set, is refused (it would sign any log
    // whose checkpoint was removed later) ...
    let copy = tempfile::tempdir().expect("tempdir");
    let (from, to) = (server.data_dir().to_owned(), copy.path().to_owned());
    server.stop_then(|| copy_dir(&from, &to)).await;
    let mut flagged = Config::ephemeral(copy.path());
    flagged.adopt_unsigned_log = true;
    let refused = accord_server::start(flagged)
        .await
        .err()
        .expect("the flag is refused on a signed log");
    assert!(refused.to_string().contains("signed already"), "{refused}");
    // ... and a plain start opens it.
    let server = TestServer::start_in(copy, |_| {}).await;
    assert_eq!(verify_clean(server.channel()).await, FIXTURE_RECORDS);
    server.stop().await;
}

/// The event without what differs between two runs of the same commands.
fn without_identity(mut event: v1::RecordedEvent) -> v1::RecordedEvent {
    event.event_id.clear();
    event.recorded_at = None;
    event
}

async fn agreement_ids(server: &TestServer) -> Vec<String> {
    let mut ids: Vec<String> = server
        .read_all()
        .await
        .into_iter()
        .map(|event| event.agreement_id)
        .collect();
    ids.sort();
    ids.dedup();
    ids
}

/// Every read model's answers about the agreements in the log.
#[derive(Debug, PartialEq)]
struct Answers {
    views: Vec<v1::Agreement>,
    list: v1::ListAgreementsResponse,
    portfolios: v1::ListCountryPortfoliosResponse,
    reports: Vec<v1::LocalizationReport>,
}

/// Every read model's answers, once they have applied `min_position`.
async fn read_models(server: &TestServer, min_position: u64) -> Answers {
    let mut client = server.agreements();
    let mut views = Vec::new();
    for agreement_id in agreement_ids(server).await {
        let view = client
            .get_agreement(v1::GetAgreementRequest {
                agreement_id,
                min_position,
                as_of_position: 0,
            })
            .await
            .expect("agreement")
            .into_inner();
        views.push(view);
    }
    let list = client
        .list_agreements(v1::ListAgreementsRequest {
            min_position,
            page_size: 1_000,
            ..Default::default()
        })
        .await
        .expect("list")
        .into_inner();
    let portfolios = client
        .list_country_portfolios(v1::ListCountryPortfoliosRequest { min_position })
        .await
        .expect("portfolios")
        .into_inner();
    let mut reports = Vec::new();
    for country in ["KZ", "UZ"] {
        let report = client
            .get_localization_report(v1::GetLocalizationReportRequest {
                country: country.into(),
                min_position,
                ..Default::default()
            })
            .await
            .expect("localization report")
            .into_inner();
        reports.push(report);
    }
    Answers {
        views,
        list,
        portfolios,
        reports,
    }
}

#[tokio::test]
async fn a_data_directory_written_by_0_1_opens_reads_verifies_projects_and_continues() {
    let mut old = server_on_fixture().await;
    let fresh = TestServer::start().await;
    execute_fixture_commands(&fresh).await;

    // Read: the same events as today's code writes for the same commands.
    let old_events = old.read_all().await;
    assert_gap_free(&old_events, "the fixture's log");
    assert_eq!(old_events.len() as u64, FIXTURE_RECORDS);
    let fresh_events = fresh.read_all().await;
    assert_eq!(
        old_events
            .iter()
            .cloned()
            .map(without_identity)
            .collect::<Vec<_>>(),
        fresh_events
            .into_iter()
            .map(without_identity)
            .collect::<Vec<_>>()
    );
    assert!(old_events.iter().all(|event| event.event_id.len() == 36));

    // Verify: the hash chain written by 0.1 checks out.
    assert_eq!(verify_clean(old.channel()).await, FIXTURE_RECORDS);

    // Project: the stored read models answer as today's do, and again after
    // a rebuild from the log.
    let expected = read_models(&fresh, FIXTURE_RECORDS).await;
    assert_eq!(read_models(&old, FIXTURE_RECORDS).await, expected);
    let kz = old
        .agreements()
        .get_country_portfolio(v1::GetCountryPortfolioRequest {
            country: "KZ".into(),
            min_position: FIXTURE_RECORDS,
        })
        .await
        .expect("KZ portfolio")
        .into_inner();
    assert_eq!(kz.delivered_units, 25);
    assert_eq!(kz.weighted_localization_bp, 3_000);
    old.restart_with_fresh_read_models().await;
    assert_eq!(read_models(&old, FIXTURE_RECORDS).await, expected);

    // The idempotency index written by 0.1 still recognises every command.
    let retried = execute_fixture_commands(&old).await;
    assert!(retried.iter().all(|result| result.duplicate), "{retried:?}");
    assert_eq!(old.head().await, FIXTURE_RECORDS);

    // Continue: the next event extends the old chain, and survives a restart.
    let next = old
        .agreements()
        .record_delivery(deliver("uz-boeing-787", "after-upgrade", 3))
        .await
        .expect("appends after the old records")
        .into_inner();
    assert_eq!(next.position, FIXTURE_RECORDS + 1);
    let boeing_events = old_events
        .iter()
        .filter(|event| event.agreement_id == "uz-boeing-787")
        .count() as u64;
    assert_eq!(next.version, boeing_events + 1);
    old.restart().await;
    let events = old.read_all().await;
    assert_gap_free(&events, "the continued log");
    assert_eq!(&events[..old_events.len()], &old_events[..]);
    assert_eq!(verify_clean(old.channel()).await, FIXTURE_RECORDS + 1);
    let boeing = old
        .agreements()
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "uz-boeing-787".into(),
            min_position: FIXTURE_RECORDS + 1,
            as_of_position: 0,
        })
        .await
        .expect("agreement")
        .into_inner();
    assert_eq!(boeing.delivered_units, 5);
    old.stop().await;
    fresh.stop().await;
}

#[tokio::test]
async fn an_export_written_by_0_1_imports_into_todays_server() {
    let reference = server_on_fixture().await;
    let target = TestServer::start().await;
    let import = |allow_unsigned: bool| {
        let mut command = tokio::process::Command::new(ACCORDCTL);
        command
            .arg("--server")
            .arg(format!("http://{}", target.server().grpc_addr()))
            .arg("import")
            .arg(fixtures().join("v1-export.ndjson"));
        if allow_unsigned {
            command.arg("--allow-unsigned");
        }
        command.output()
    };
    // 0.1 did not sign its exports: refused unless the operator says so.
    let refused = import(false).await.expect("accordctl runs");
    assert!(!refused.status.success(), "{refused:?}");
    let said = String::from_utf8_lossy(&refused.stdout);
    assert!(said.contains("--allow-unsigned"), "{said}");
    assert_eq!(target.head().await, 0);
    let import = import(true).await.expect("accordctl runs");
    assert!(import.status.success(), "{import:?}");
    assert_eq!(target.read_all().await, reference.read_all().await);
    assert_eq!(verify_clean(target.channel()).await, FIXTURE_RECORDS);
    assert_eq!(
        read_models(&target, FIXTURE_RECORDS).await,
        read_models(&reference, FIXTURE_RECORDS).await
    );
    reference.stop().await;
    target.stop().await;
}

/// Writes fixtures as the checked-in ones were written: into
/// `$ACCORD_FIXTURE_OUT` when set (how `tests/fixtures/` was made, see its
/// README), else into a scratch directory. Either way it checks that what
/// it wrote holds the same events as the checked-in data directory, so the
/// recipe in the README stays true.
#[tokio::test]
async fn the_fixture_recipe_writes_the_events_of_the_checked_in_fixtures() {
    let scratch = tempfile::tempdir().expect("tempdir");
    let out = std::env::var_os("ACCORD_FIXTURE_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| scratch.path().to_owned());
    let data_dir = out.join("v1-data-dir");
    assert!(!data_dir.exists(), "{} exists", data_dir.display());
    let server = TestServer::start().await;
    let results = execute_fixture_commands(&server).await;
    assert_eq!(results.len() as u64, FIXTURE_RECORDS);
    let export_file = out.join("v1-export.ndjson");
    let export = tokio::process::Command::new(ACCORDCTL)
        .arg("--server")
        .arg(format!("http://{}", server.server().grpc_addr()))
        .arg("export")
        .arg(&export_file)
        .output()
        .await
        .expect("accordctl runs");
    assert!(export.status.success(), "{export:?}");
    // Wait until the read models hold every record, then stop cleanly.
    read_models(&server, FIXTURE_RECORDS).await;
    let source = server.data_dir().to_owned();
    server.stop_then(|| copy_dir(&source, &data_dir)).await;

    let written = std::fs::read_to_string(&export_file).expect("export written");
    assert_eq!(
        written.lines().count() as u64,
        FIXTURE_RECORDS + 1,
        "records and the end line"
    );
    let copy = tempfile::tempdir().expect("tempdir");
    copy_dir(&data_dir, copy.path());
    let rewritten = TestServer::start_in(copy, |_| {}).await;
    let checked_in = server_on_fixture().await;
    let events = |events: Vec<v1::RecordedEvent>| -> Vec<_> {
        events.into_iter().map(without_identity).collect()
    };
    assert_eq!(
        events(rewritten.read_all().await),
        events(checked_in.read_all().await)
    );
    rewritten.stop().await;
    checked_in.stop().await;
}

/// A data directory written by the last version before the index tail
/// (`tests/fixtures/v2-data-dir`: a command index key per command, a stream
/// index chunk per agreement per group): today's server opens it without a
/// flag, reads the same events, verifies it, still recognises every command
/// (duplicates found in the old keys), continues it, and after a restart —
/// the index tail of the new events written at the stop — still does.
#[tokio::test]
async fn a_data_directory_written_before_the_index_tail_opens_verifies_and_continues() {
    let data_dir = tempfile::tempdir().expect("tempdir");
    restore_fixture("v2-data-dir", data_dir.path());
    let mut old = TestServer::start_in(data_dir, |_| {}).await;
    let fresh = TestServer::start().await;
    execute_fixture_commands(&fresh).await;
    let old_events = old.read_all().await;
    assert_gap_free(&old_events, "the fixture's log");
    let comparable = |events: Vec<v1::RecordedEvent>| -> Vec<_> {
        events.into_iter().map(without_identity).collect()
    };
    assert_eq!(
        comparable(old_events.clone()),
        comparable(fresh.read_all().await)
    );
    assert_eq!(verify_clean(old.channel()).await, FIXTURE_RECORDS);
    assert_eq!(
        read_models(&old, FIXTURE_RECORDS).await,
        read_models(&fresh, FIXTURE_RECORDS).await
    );
    // Its read models, of an older schema, were rebuilt at open with
    // today's position index: a filtered read comes from it.
    let kazakh: Vec<u64> = old_events
        .iter()
        .filter(|event| event.agreement_id.starts_with("kz-"))
        .map(|event| event.position)
        .collect();
    assert!(!kazakh.is_empty());
    let skipped_before = metric(
        old.server().metrics_addr(),
        "accord_indexed_read_skipped_positions_total",
    )
    .await;
    let mut filtered = old
        .event_log()
        .read_log(v1::ReadLogRequest {
            filter: Some(v1::SubscriptionFilter {
                countries: vec!["KZ".into()],
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("a filtered read")
        .into_inner();
    let mut found = Vec::new();
    while let Some(event) = filtered.message().await.transpose() {
        found.push(event.expect("an event").position);
    }
    assert_eq!(found, kazakh);
    assert!(
        metric(
            old.server().metrics_addr(),
            "accord_indexed_read_skipped_positions_total"
        )
        .await
            > skipped_before,
        "read from the index"
    );

    let retried = execute_fixture_commands(&old).await;
    assert!(retried.iter().all(|result| result.duplicate), "{retried:?}");
    let next = old
        .agreements()
        .record_delivery(deliver("uz-boeing-787", "after-the-index-tail", 3))
        .await
        .expect("appends after the old records")
        .into_inner();
    assert_eq!(next.position, FIXTURE_RECORDS + 1);
    for _ in 0..2 {
        let again = old
            .agreements()
            .record_delivery(deliver("uz-boeing-787", "after-the-index-tail", 3))
            .await
            .expect("a retry")
            .into_inner();
        assert!(again.duplicate);
        assert_eq!(again.position, next.position);
        let retried = execute_fixture_commands(&old).await;
        assert!(retried.iter().all(|result| result.duplicate), "{retried:?}");
        let mut history = old
            .event_log()
            .read_agreement_history(v1::ReadAgreementHistoryRequest {
                agreement_id: "uz-boeing-787".into(),
                from_version: 1,
            })
            .await
            .expect("reads the history")
            .into_inner();
        let mut boeing = Vec::new();
        while let Some(event) = history.message().await.transpose() {
            boeing.push(event.expect("an event"));
        }
        assert_eq!(boeing.last().expect("events").position, next.position);
        assert_eq!(boeing.len() as u64, next.version);
        assert_eq!(verify_clean(old.channel()).await, FIXTURE_RECORDS + 1);
        old.restart().await;
    }
    old.stop().await;
    fresh.stop().await;
}
