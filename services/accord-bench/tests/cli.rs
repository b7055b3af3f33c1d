//! The load generator's command line: an unknown scenario is an error that
//! lists the valid ones, and a machine without nats-server skips the NATS
//! backends in one line instead of panicking.

use std::process::Command;

const BENCH: &str = env!("CARGO_BIN_EXE_accord-bench");

#[test]
fn an_unknown_scenario_is_an_error_listing_the_valid_ones() {
    let output = Command::new(BENCH)
        .args(["all", "--quick"])
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let said = String::from_utf8_lossy(&output.stderr);
    for scenario in [
        "append",
        "batch",
        "subscribe",
        "consume",
        "rebuild",
        "console",
    ] {
        assert!(said.contains(scenario), "{said}");
    }
}

#[test]
fn without_nats_server_the_nats_backends_are_skipped_in_one_line() {
    let empty = tempfile::tempdir().expect("dir");
    let output = Command::new(BENCH)
        .args([
            "append",
            "--no-peer",
            "--backends",
            "sled,nats-1,nats-3",
            "--server-binary",
        ])
        .arg(empty.path().join("no-such-server"))
        .env("PATH", empty.path())
        .env(
            "ACCORD_NATS_SERVER",
            empty.path().join("no-such-nats-server"),
        )
        .output()
        .expect("runs");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(said.contains("skipping the NATS backends"), "{said}");
    assert!(!said.contains("panicked"), "{said}");
    // It then stops at the missing server binary, saying so.
    assert_eq!(output.status.code(), Some(1), "{said}");
    assert!(said.contains("no-such-server not found"), "{said}");
}
