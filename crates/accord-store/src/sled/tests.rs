//! The sled backend's own tests. The event-log contract every backend
//! meets is tested in `tests/store_conformance.rs`, against sled and NATS.

use super::*;

fn open(dir: &std::path::Path) -> SledLog {
    SledLog::open(SledOptions::new(dir)).expect("opens")
}

#[tokio::test]
async fn a_second_process_on_the_same_directory_is_told_plainly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    // sled locks the directory per process; a second open in this process
    // shares the lock, so the message is checked on the error path only.
    let error = open::explain_open_error(
        dir.path(),
        ::sled::Error::Io(std::io::Error::from(std::io::ErrorKind::WouldBlock)),
    );
    assert!(
        error.to_string().contains("in use by another process"),
        "{error}"
    );
    log.close().await.expect("closes");
}
