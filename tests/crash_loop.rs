//! The crash loop: N times, start the server, load it from 8 clients, kill it
//! with SIGKILL at a random moment, restart it, and check that the log
//! verifies clean, every acknowledged append is there, positions are
//! gap-free, and the read models equal a fresh rebuild (see
//! `support/crash_cycles.rs`).
//!
//! N is 5 by default; `ACCORD_CRASH_CYCLES=100 cargo test -p accord-tests --test integration -- crash_loop::`
//! runs the long loop.

use std::path::Path;

use accord_tests::crash_cycles::{crash_cycles, cycles_from_env, seed_from_env};

const SERVER: &str = env!("CARGO_BIN_EXE_accord-server-under-test");

#[tokio::test]
async fn crash_loop_loses_no_acknowledged_event() {
    let data_dir = tempfile::tempdir().expect("data dir");
    let summary = crash_cycles(
        Path::new(SERVER),
        data_dir.path(),
        // Small index windows: the cuts land while the indexer writes
        // windows and the merger merges runs, not only between them.
        &["--index-window-records".to_owned(), "64".to_owned()],
        cycles_from_env("ACCORD_CRASH_CYCLES"),
        seed_from_env(),
        |_| {},
    )
    .await;
    println!(
        "crash loop: {} cycles survived, {} acknowledged appends, 0 lost",
        summary.cycles, summary.acknowledged
    );
}
