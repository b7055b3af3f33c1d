use super::*;
use crate::decode_record;
use accord_domain::{
    AgreementKind, Announced, Event, EventMetadata, ExpectedVersion, Money, Party, Signed,
    Timestamp,
};

fn announced() -> Event {
    Event::Announced(Announced {
        title: "t".into(),
        kind: AgreementKind::Procurement,
        buyer: Party::new("b", "UZ"),
        supplier: Party::new("s", "US"),
        sector: "aviation".into(),
        product: "p".into(),
        quantity: Some(22),
        value: Some(Money::new("USD", 1)),
        announced_at: Timestamp::from_seconds(0),
        venue: String::new(),
        source: String::new(),
    })
}

fn signed() -> Event {
    Event::Signed(Signed {
        signed_at: Timestamp::from_seconds(1),
        signatories: vec![],
        value: None,
        quantity: None,
    })
}

fn item(
    agreement_id: &str,
    command_id: &str,
    expected: ExpectedVersion,
    event: Event,
) -> AppendItem {
    AppendItem {
        agreement_id: agreement_id.into(),
        expected,
        command_id: command_id.into(),
        fingerprint: [command_id.len() as u8; 16],
        metadata: EventMetadata {
            command_id: command_id.into(),
            ..EventMetadata::default()
        },
        event,
    }
}

fn open(dir: &std::path::Path) -> SledLog {
    SledLog::open(SledOptions::new(dir)).expect("opens")
}

#[tokio::test]
async fn positions_and_versions_start_at_one_and_have_no_gaps() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let first = log
        .append(vec![item(
            "a",
            "c1",
            ExpectedVersion::NoStream,
            announced(),
        )])
        .await
        .expect("appends");
    assert_eq!((first[0].position, first[0].version), (1, 1));
    let both = log
        .append(vec![
            item("b", "c2", ExpectedVersion::NoStream, announced()),
            item("a", "c3", ExpectedVersion::Exact(1), signed()),
        ])
        .await
        .expect("appends");
    assert_eq!((both[0].position, both[0].version), (2, 1));
    assert_eq!((both[1].position, both[1].version), (3, 2));
    let all = log.read_log(1, 100).await.expect("reads");
    assert_eq!(
        all.iter().map(|event| event.position).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    let stream = log.read_stream("a", 1, 100).await.expect("reads");
    assert_eq!(
        stream.iter().map(|event| event.version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(log.stats().await.expect("stats").agreement_count, 2);
    log.close().await.expect("closes");
}

#[tokio::test]
async fn a_batch_is_all_or_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let error = log
        .append(vec![
            item("a", "c1", ExpectedVersion::NoStream, announced()),
            item("a", "c2", ExpectedVersion::Exact(5), signed()),
        ])
        .await
        .expect_err("second item conflicts");
    assert!(
        matches!(error, StoreError::WrongExpectedVersion { actual: 1, .. }),
        "{error}"
    );
    assert_eq!(log.head(), 0);
    assert!(log.read_log(1, 10).await.expect("reads").is_empty());
    assert!(log.find_command("c1").await.expect("looks up").is_none());
    log.close().await.expect("closes");
}

#[tokio::test]
async fn a_retried_command_is_a_duplicate_and_a_reused_id_conflicts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let original = log
        .append(vec![item(
            "a",
            "c1",
            ExpectedVersion::NoStream,
            announced(),
        )])
        .await
        .expect("appends");
    let retry = log
        .append(vec![item(
            "a",
            "c1",
            ExpectedVersion::NoStream,
            announced(),
        )])
        .await
        .expect("duplicate");
    assert!(retry[0].duplicate);
    assert_eq!(retry[0].position, original[0].position);
    assert_eq!(retry[0].recorded_at, original[0].recorded_at);
    let mut other = item("b", "c1", ExpectedVersion::NoStream, announced());
    other.fingerprint = [0xff; 16];
    let error = log.append(vec![other]).await.expect_err("conflict");
    assert!(matches!(error, StoreError::CommandIdConflict { .. }));
    assert_eq!(log.head(), 1);
    log.close().await.expect("closes");
}

#[tokio::test]
async fn the_log_reopens_at_its_head_with_its_idempotency_keys() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let log = open(dir.path());
        log.append(vec![item(
            "a",
            "c1",
            ExpectedVersion::NoStream,
            announced(),
        )])
        .await
        .expect("appends");
        log.append(vec![item("a", "c2", ExpectedVersion::Exact(1), signed())])
            .await
            .expect("appends");
        log.close().await.expect("closes");
    }
    let log = open(dir.path());
    assert_eq!(log.head(), 2);
    let record = log
        .find_command("c2")
        .await
        .expect("looks up")
        .expect("remembered");
    assert_eq!(record.outcome.position, 2);
    assert!(record.outcome.duplicate);
    let next = log
        .append(vec![item(
            "b",
            "c3",
            ExpectedVersion::NoStream,
            announced(),
        )])
        .await
        .expect("appends");
    assert_eq!(next[0].position, 3);
    let chain = log.read_raw_at(3).expect("reads").expect("present");
    let previous = log.read_raw_at(2).expect("reads").expect("present");
    let decoded = decode_record(&chain).expect("decodes");
    assert_eq!(decoded.prev_hash, *blake3::hash(&previous).as_bytes());
    log.close().await.expect("closes");
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

#[tokio::test]
async fn concurrent_appends_with_the_same_expected_version_have_one_winner() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = std::sync::Arc::new(open(dir.path()));
    log.append(vec![item(
        "a",
        "c0",
        ExpectedVersion::NoStream,
        announced(),
    )])
    .await
    .expect("appends");
    let mut tasks = Vec::new();
    for index in 0..32 {
        let log = log.clone();
        tasks.push(tokio::spawn(async move {
            log.append(vec![item(
                "a",
                &format!("race-{index}"),
                ExpectedVersion::Exact(1),
                signed(),
            )])
            .await
        }));
    }
    let mut wins = 0;
    for task in tasks {
        match task.await.expect("joins") {
            Ok(_) => wins += 1,
            Err(StoreError::WrongExpectedVersion { actual, .. }) => assert_eq!(actual, 2),
            Err(other) => panic!("unexpected {other}"),
        }
    }
    assert_eq!(wins, 1);
    log.close().await.expect("closes");
}
