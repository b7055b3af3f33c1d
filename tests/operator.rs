//! Operator tooling through the real server and the real `accordctl`:
//! export and import, verify, rebuild under load, tail, stats and demo.

use std::path::Path;
use std::process::Output;

use accord_proto::v1;
use accord_tests::*;
use tokio_stream::StreamExt;

const ACCORDCTL: &str = env!("CARGO_BIN_EXE_accordctl-under-test");

async fn accordctl(server: &TestServer, args: &[&str]) -> Output {
    let url = format!("http://{}", server.server().grpc_addr());
    tokio::process::Command::new(ACCORDCTL)
        .arg("--server")
        .arg(url)
        .args(args)
        .output()
        .await
        .expect("accordctl runs")
}

async fn accordctl_offline(data_dir: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(ACCORDCTL)
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .await
        .expect("accordctl runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn load_demo(server: &TestServer) {
    let output = accordctl(server, &["demo"]).await;
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout(&output).contains("9 new events"),
        "{}",
        stdout(&output)
    );
}

#[tokio::test]
async fn demo_loads_the_unga80_facts_once() {
    let server = TestServer::start().await;
    load_demo(&server).await;
    let again = accordctl(&server, &["demo"]).await;
    assert!(again.status.success());
    assert!(
        stdout(&again).contains("0 new events, 9 already loaded"),
        "{}",
        stdout(&again)
    );
    assert_eq!(server.head().await, 9);
    server.stop().await;
}

#[tokio::test]
async fn export_then_import_into_a_fresh_server_gives_an_identical_log() {
    let source = TestServer::start().await;
    load_demo(&source).await;
    let mut client = source.agreements();
    client
        .record_delivery(deliver("uz-boeing-787", "first-787s", 2))
        .await
        .expect("delivered");
    let directory = tempfile::tempdir().expect("tempdir");
    let file = directory.path().join("backup.ndjson");
    let export = accordctl(&source, &["export", file.to_str().expect("utf-8")]).await;
    assert!(export.status.success(), "{export:?}");
    assert!(
        stdout(&export).contains("exported 10 records"),
        "{}",
        stdout(&export)
    );

    // A server that does not trust the exporter's key refuses the export.
    let stranger = TestServer::start().await;
    let refused = accordctl(&stranger, &["import", file.to_str().expect("utf-8")]).await;
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        stdout(&refused).contains("--trusted-key"),
        "{}",
        stdout(&refused)
    );
    assert_eq!(stranger.head().await, 0);
    stranger.stop().await;

    let target = TestServer::start_trusting(&[source.public_key()]).await;
    let import = accordctl(&target, &["import", file.to_str().expect("utf-8")]).await;
    assert!(import.status.success(), "{import:?}");
    assert!(
        stdout(&import).contains("imported 10 records"),
        "{}",
        stdout(&import)
    );
    assert_eq!(
        target.read_all().await,
        source.read_all().await,
        "event ids, positions and timestamps kept"
    );

    let verify = accordctl(&target, &["verify"]).await;
    assert!(verify.status.success(), "{}", stdout(&verify));
    let portfolio = |server: &TestServer| {
        let mut client = server.agreements();
        async move {
            client
                .get_country_portfolio(v1::GetCountryPortfolioRequest {
                    country: "UZ".into(),
                    min_position: 10,
                })
                .await
                .expect("portfolio")
                .into_inner()
        }
    };
    assert_eq!(portfolio(&target).await, portfolio(&source).await);
    // A retried command is still recognised after the import.
    let retry = target
        .agreements()
        .record_delivery(deliver("uz-boeing-787", "first-787s", 2))
        .await
        .expect("duplicate")
        .into_inner();
    assert!(retry.duplicate);
    // Importing into a log that is not empty is refused.
    let again = accordctl(&target, &["import", file.to_str().expect("utf-8")]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(stdout(&again).contains("empty log"), "{}", stdout(&again));
    source.stop().await;
    target.stop().await;
}

#[tokio::test]
async fn a_tampered_or_truncated_export_is_refused_and_imports_nothing() {
    let source = TestServer::start().await;
    load_demo(&source).await;
    let directory = tempfile::tempdir().expect("tempdir");
    let file = directory.path().join("backup.ndjson");
    assert!(
        accordctl(&source, &["export", file.to_str().expect("utf-8")])
            .await
            .status
            .success()
    );
    let text = std::fs::read_to_string(&file).expect("export");

    let tampered_value = text.replacen("850000000000", "950000000000", 1);
    let mut tampered_record = String::new();
    for (index, line) in text.lines().enumerate() {
        if index == 3 {
            // Flip one hex digit inside the raw record of the fourth line.
            let at = line.find("\"record\":\"").expect("record field") + 40;
            let mut bytes = line.as_bytes().to_vec();
            bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
            tampered_record.push_str(&String::from_utf8(bytes).expect("utf-8"));
        } else {
            tampered_record.push_str(line);
        }
        tampered_record.push('\n');
    }
    let truncated: String = text
        .lines()
        .take(5)
        .map(|line| format!("{line}\n"))
        .collect();
    let cut_mid_line = &text[..text.len() / 2];
    for (name, content) in [
        ("altered value", tampered_value.as_str()),
        ("altered record", tampered_record.as_str()),
        ("truncated", truncated.as_str()),
        ("cut mid-line", cut_mid_line),
    ] {
        let target = TestServer::start().await;
        let bad = directory.path().join("bad.ndjson");
        std::fs::write(&bad, content).expect("written");
        let import = accordctl(&target, &["import", bad.to_str().expect("utf-8")]).await;
        assert_eq!(import.status.code(), Some(1), "{name}: {import:?}");
        assert!(
            stdout(&import).contains("nothing was imported"),
            "{name}: {}",
            stdout(&import)
        );
        assert_eq!(target.head().await, 0, "{name}: the target stays empty");
        target.stop().await;
    }
    source.stop().await;
}

#[tokio::test]
async fn verify_finds_a_corrupted_record() {
    let mut server = TestServer::start().await;
    load_demo(&server).await;
    let clean = accordctl(&server, &["verify"]).await;
    assert!(clean.status.success(), "{}", stdout(&clean));
    assert!(
        stdout(&clean).contains("ok: 9 records verified"),
        "{}",
        stdout(&clean)
    );
    server
        .restart_after(|data_dir| {
            accord_store::test_support::corrupt_record(&data_dir.join("log"), 4)
                .expect("corrupted");
        })
        .await;
    let found = accordctl(&server, &["verify"]).await;
    assert_eq!(found.status.code(), Some(1), "{found:?}");
    let report = stdout(&found);
    assert!(report.contains("position 4"), "{report}");
    assert!(report.contains("checksum mismatch"), "{report}");
    // The record after it carries the hash of the original, so the chain break shows too.
    assert!(report.contains("position 5: hash chain broken"), "{report}");

    let mut stream = server
        .admin()
        .verify_log(v1::VerifyLogRequest {})
        .await
        .expect("verify")
        .into_inner();
    let mut last = None;
    while let Some(progress) = stream.next().await {
        last = Some(progress.expect("progress"));
    }
    let last = last.expect("a final report");
    assert!(last.done);
    assert_eq!(last.checked, 9);
    assert!(last.problems.len() >= 2);
    server.stop().await;
}

#[tokio::test]
async fn verify_finds_a_command_index_that_lost_or_misplaced_an_entry() {
    let mut server = TestServer::start().await;
    load_demo(&server).await;
    let events = server.read_all().await;
    let command_of = |position: usize| {
        events[position - 1]
            .metadata
            .as_ref()
            .expect("metadata")
            .command_id
            .clone()
    };
    let (lost, misplaced) = (command_of(2), command_of(3));
    server
        .restart_after(|data_dir| {
            let log = data_dir.join("log");
            accord_store::test_support::repoint_command(&log, &lost, None).expect("removed");
            accord_store::test_support::repoint_command(&log, &misplaced, Some(7))
                .expect("repointed");
        })
        .await;
    let found = accordctl(&server, &["verify"]).await;
    assert_eq!(found.status.code(), Some(1), "{found:?}");
    let report = stdout(&found);
    assert!(
        report.contains(&format!("position 2: the command index of {lost:?}")),
        "{report}"
    );
    assert!(
        report.contains(&format!("position 3: the command index of {misplaced:?}")),
        "{report}"
    );
    server.stop().await;
}

#[tokio::test]
async fn verify_finds_a_stream_index_that_lost_a_chunk() {
    let mut server = TestServer::start().await;
    load_demo(&server).await;
    let events = server.read_all().await;
    let first = events[0].agreement_id.clone();
    let head_agreement = &events.last().expect("events").agreement_id;
    assert_ne!(
        &first, head_agreement,
        "the head's own index is checked at open"
    );
    server
        .restart_after(|data_dir| {
            accord_store::test_support::remove_stream_chunk(&data_dir.join("log"), &first, 1)
                .expect("removed");
        })
        .await;
    let found = accordctl(&server, &["verify"]).await;
    assert_eq!(found.status.code(), Some(1), "{found:?}");
    let report = stdout(&found);
    assert!(
        report.contains(&format!(
            "position 1: the stream index of {first} version 1 does not point at it"
        )),
        "{report}"
    );
    server.stop().await;
}

#[tokio::test]
async fn verify_finds_index_entries_that_no_record_accounts_for() {
    let mut server = TestServer::start().await;
    load_demo(&server).await;
    let events = server.read_all().await;
    let first = events[0].agreement_id.clone();
    server
        .restart_after(|data_dir| {
            accord_store::test_support::add_stray_index_entries(
                &data_dir.join("log"),
                &first,
                1_000,
                2,
            )
            .expect("added");
        })
        .await;
    let found = accordctl(&server, &["verify"]).await;
    assert_eq!(found.status.code(), Some(1), "{found:?}");
    let report = stdout(&found);
    let head = events.len();
    for index in ["stream", "command"] {
        assert!(
            report.contains(&format!(
                "the {index} index holds {} entries for positions up to {head}; the records account for {head}",
                head + 1
            )),
            "{report}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn rebuild_while_writers_append_ends_with_correct_read_models() {
    let server = TestServer::start().await;
    let mut client = server.agreements();
    for index in 0..4 {
        let mut announce = announce_wabtec(&format!("kz-{index}"));
        announce.quantity = Some(1_000_000);
        client.announce(announce).await.expect("announced");
        client
            .sign(sign(&format!("kz-{index}")))
            .await
            .expect("signed");
    }
    let commands: Vec<_> = (0..2_000)
        .map(|index| {
            command(v1::command::Command::RecordDelivery(deliver(
                &format!("kz-{}", index % 4),
                &format!("seed-{index}"),
                1,
            )))
        })
        .collect();
    for chunk in commands.chunks(500) {
        client
            .execute(v1::ExecuteRequest {
                commands: chunk.to_vec(),
            })
            .await
            .expect("seeded");
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut writers = Vec::new();
    for writer in 0..4 {
        let mut client = server.agreements();
        let mut stopped = stopped.clone();
        writers.push(tokio::spawn(async move {
            let mut written = 0u64;
            while !*stopped.borrow_and_update() {
                let request = deliver(
                    &format!("kz-{writer}"),
                    &format!("live-{writer}-{written}"),
                    1,
                );
                client
                    .record_delivery(request)
                    .await
                    .expect("appended during the rebuild");
                written += 1;
            }
            written
        }));
    }
    let rebuild = accordctl(&server, &["rebuild", "agreements"]).await;
    assert!(rebuild.status.success(), "{rebuild:?}");
    assert!(
        stdout(&rebuild).contains("agreements rebuilt to position"),
        "{}",
        stdout(&rebuild)
    );
    stop.send_replace(true);
    let mut written = 0;
    for writer in writers {
        written += writer.await.expect("writer");
    }
    assert!(written > 0, "writers kept appending during the rebuild");
    let head = server.head().await;
    let events = server.read_all().await;
    for index in 0..4 {
        let agreement_id = format!("kz-{index}");
        let delivered = events
            .iter()
            .filter(|event| {
                event.agreement_id == agreement_id
                    && event.event_type == "agreement.delivery_recorded"
            })
            .count() as u64;
        let view = server
            .agreements()
            .get_agreement(v1::GetAgreementRequest {
                agreement_id: agreement_id.clone(),
                min_position: head,
                as_of_position: 0,
            })
            .await
            .expect("view")
            .into_inner();
        assert_eq!(view.delivered_units, delivered, "{agreement_id}");
    }
    let portfolio = server
        .agreements()
        .get_country_portfolio(v1::GetCountryPortfolioRequest {
            country: "KZ".into(),
            min_position: head,
        })
        .await
        .expect("portfolio")
        .into_inner();
    assert_eq!(portfolio.delivered_units, 2_000 + written);
    let unknown = accordctl(&server, &["rebuild", "nonsense"]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("unknown projection"));
    server.stop().await;
}

#[tokio::test]
async fn stats_and_tail_print_for_people_and_machines() {
    let server = TestServer::start().await;
    load_demo(&server).await;
    server
        .agreements()
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "uz-boeing-787".into(),
            min_position: 9,
            as_of_position: 0,
        })
        .await
        .expect("caught up");
    let table = accordctl(&server, &["stats"]).await;
    assert!(table.status.success());
    assert!(
        stdout(&table).contains("head position      9"),
        "{}",
        stdout(&table)
    );
    assert!(stdout(&table).contains("agreements"), "{}", stdout(&table));
    let json = accordctl(&server, &["stats", "--json"]).await;
    let stats: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    // Protobuf's canonical JSON mapping, as grpcurl prints it: 64-bit
    // integers as strings, field names in lowerCamelCase.
    assert_eq!(stats["headPosition"], "9");
    assert_eq!(stats["agreementCount"], "6");
    assert_eq!(stats["projections"][0]["lag"], "0");

    let all = accordctl(&server, &["tail"]).await;
    assert!(all.status.success());
    let lines: Vec<serde_json::Value> = stdout(&all)
        .lines()
        .map(|line| serde_json::from_str(line).expect("JSON line"))
        .collect();
    assert_eq!(lines.len(), 9);
    assert_eq!(lines[0]["position"], "1");
    assert_eq!(lines[0]["agreementId"], "uz-boeing-787");
    assert_eq!(lines[0]["eventType"], "agreement.announced");
    assert_eq!(lines[0]["announced"]["value"]["minorUnits"], "850000000000");
    assert_eq!(lines[0]["announced"]["kind"], "AGREEMENT_KIND_PROCUREMENT");
    let recorded_at = lines[0]["recordedAt"].as_str().expect("a timestamp");
    assert!(
        recorded_at.ends_with('Z') && recorded_at.contains('T'),
        "RFC 3339: {recorded_at}"
    );
    let signed = accordctl(
        &server,
        &["tail", "--from", "3", "--type", "agreement.signed"],
    )
    .await;
    let positions: Vec<u64> = stdout(&signed)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).expect("JSON")["position"]
                .as_str()
                .and_then(|position| position.parse().ok())
                .expect("position")
        })
        .collect();
    assert_eq!(positions, [4]);
    let wabtec = accordctl(&server, &["tail", "--agreement", "kz-wabtec-locomotives"]).await;
    assert_eq!(stdout(&wabtec).lines().count(), 3);
    // --since starts at the first event recorded at or after a time
    // (`reads::reads_start_at_the_first_event_recorded_at_or_after_a_time`
    // checks times between events).
    let recorded = "2025-09-23T00:00:00Z";
    let since = accordctl(&server, &["tail", "--since", recorded]).await;
    assert!(since.status.success(), "{since:?}");
    assert_eq!(stdout(&since).lines().count(), 9);
    let later = accordctl(&server, &["tail", "--since", "2199-01-01T00:00:00Z"]).await;
    assert!(later.status.success(), "{later:?}");
    assert_eq!(stdout(&later).lines().count(), 0);
    let garbage = accordctl(&server, &["tail", "--since", "yesterday"]).await;
    assert_eq!(garbage.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&garbage.stderr).contains("RFC 3339"),
        "{garbage:?}"
    );
    let both = accordctl(&server, &["tail", "--since", recorded, "--from", "3"]).await;
    assert_eq!(both.status.code(), Some(2), "{both:?}");

    // --follow keeps printing live events.
    let mut follow = tokio::process::Command::new(ACCORDCTL)
        .arg("--server")
        .arg(format!("http://{}", server.server().grpc_addr()))
        .args(["tail", "--follow", "--from", "10"])
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("follows");
    let appended = server
        .agreements()
        .record_delivery(deliver("uz-boeing-787", "live-787", 1))
        .await
        .expect("appended")
        .into_inner();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(
        follow.stdout.take().expect("stdout"),
    ));
    let line = lines.next_line().await.expect("reads").expect("a line");
    let event: serde_json::Value = serde_json::from_str(&line).expect("JSON");
    assert_eq!(event["position"], appended.position.to_string());
    follow.kill().await.expect("stopped");
    server.stop().await;
}

#[tokio::test]
async fn data_dir_mode_works_on_a_stopped_server_and_refuses_a_running_one() {
    let mut server = TestServer::start().await;
    load_demo(&server).await;
    let busy = accordctl_offline(server.data_dir(), &["stats"]).await;
    assert_eq!(busy.status.code(), Some(2));
    let said = String::from_utf8_lossy(&busy.stderr);
    assert!(said.contains("in use by another process"), "{said}");

    let data_dir = server.data_dir().to_path_buf();
    let mut outputs = Vec::new();
    server
        .restart_after(|_| {
            // The server is stopped here: run the offline commands synchronously.
            let run = |args: &[&str]| {
                std::process::Command::new(ACCORDCTL)
                    .arg("--data-dir")
                    .arg(&data_dir)
                    .args(args)
                    .output()
                    .expect("accordctl runs")
            };
            outputs.push(run(&["stats", "--json"]));
            outputs.push(run(&["verify"]));
            outputs.push(run(&["rebuild"]));
        })
        .await;
    for output in &outputs {
        assert!(output.status.success(), "{output:?}");
    }
    let stats: serde_json::Value = serde_json::from_slice(&outputs[0].stdout).expect("JSON");
    assert_eq!(stats["headPosition"], "9");
    assert!(stdout(&outputs[1]).contains("ok: 9 records verified"));
    let missing = accordctl_offline(Path::new("/nonexistent/accord"), &["stats"]).await;
    assert_eq!(missing.status.code(), Some(2));
    let online_only = accordctl_offline(server.data_dir(), &["demo"]).await;
    assert_eq!(online_only.status.code(), Some(2));
    server.stop().await;
}

#[tokio::test]
async fn new_token_makes_a_token_that_accordctl_carries() {
    let made = tokio::process::Command::new(ACCORDCTL)
        .args(["new-token", "ops", "operator,writer"])
        .output()
        .await
        .expect("runs");
    assert!(made.status.success(), "{made:?}");
    let text = stdout(&made);
    let token = text
        .lines()
        .find_map(|line| line.split("it is not stored anywhere): ").nth(1))
        .expect("token line")
        .to_owned();
    let file_line = text
        .lines()
        .find_map(|line| line.strip_prefix("token file line: "))
        .expect("file line")
        .to_owned();
    assert!(!file_line.contains(&token), "the file holds only the hash");
    let file = tempfile::NamedTempFile::new().expect("token file");
    std::fs::write(file.path(), file_line).expect("written");
    let path = file.path().to_path_buf();
    let server = TestServer::start_with(|config| config.token_file = Some(path)).await;
    let refused = accordctl(&server, &["demo"]).await;
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("bearer token"),
        "{refused:?}"
    );
    let loaded = accordctl(&server, &["--token", &token, "demo"]).await;
    assert!(loaded.status.success(), "{loaded:?}");
    let stats = accordctl(&server, &["--token", &token, "stats", "--json"]).await;
    assert!(stats.status.success(), "{stats:?}");
    server.stop().await;
}

#[tokio::test]
async fn accordctl_manages_consumer_groups_and_consumes_from_one() {
    let server = TestServer::start().await;
    load_demo(&server).await;
    let created = accordctl(
        &server,
        &[
            "groups",
            "create",
            "kz-billing",
            "--country",
            "KZ",
            "--max-in-flight",
            "5",
            "--json",
        ],
    )
    .await;
    assert!(created.status.success(), "{created:?}");
    let created: serde_json::Value =
        serde_json::from_str(stdout(&created).trim()).expect("one JSON object");
    assert_eq!(created["name"], "kz-billing");
    assert_eq!(created["settings"]["maxInFlight"], 5);
    assert_eq!(created["settings"]["filter"]["countries"][0], "KZ");

    let list = accordctl(&server, &["groups", "list"]).await;
    assert!(list.status.success(), "{list:?}");
    let table = stdout(&list);
    assert!(table.starts_with("GROUP"), "{table}");
    assert!(
        table
            .lines()
            .nth(1)
            .is_some_and(|row| row.starts_with("kz-billing")),
        "{table}"
    );

    // Kazakhstan's events of the demo: the locomotives' announcement, signature and localization.
    let expected: Vec<u64> = server
        .read_all()
        .await
        .iter()
        .filter(|event| event.agreement_id.starts_with("kz-"))
        .map(|event| event.position)
        .collect();
    assert!(!expected.is_empty());
    let count = expected.len().to_string();
    let consumed = accordctl(&server, &["consume", "kz-billing", "--count", &count]).await;
    assert!(consumed.status.success(), "{consumed:?}");
    let lines: Vec<serde_json::Value> = stdout(&consumed)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    let positions: Vec<u64> = lines
        .iter()
        .map(|line| {
            line["event"]["position"]
                .as_str()
                .and_then(|position| position.parse().ok())
                .expect("position")
        })
        .collect();
    assert_eq!(positions, expected);
    assert!(lines.iter().all(|line| line["deliveryCount"] == 1));

    let info = accordctl(&server, &["groups", "info", "kz-billing", "--json"]).await;
    let info: serde_json::Value = serde_json::from_str(stdout(&info).trim()).expect("JSON");
    assert_eq!(info["inFlight"], "0");
    assert_eq!(info["lag"], "0", "{info}");
    let replayed = accordctl(&server, &["groups", "replay-parked", "kz-billing"]).await;
    assert!(
        stdout(&replayed).starts_with("0 parked events"),
        "{replayed:?}"
    );
    let deleted = accordctl(&server, &["groups", "delete", "kz-billing"]).await;
    assert!(deleted.status.success(), "{deleted:?}");
    let gone = accordctl(&server, &["groups", "info", "kz-billing"]).await;
    assert_eq!(gone.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&gone.stderr).contains("NotFound"),
        "{gone:?}"
    );
}
