//! The sled backend's own tests. The event-log contract every backend
//! meets is tested in `tests/store_conformance.rs`, against sled and NATS.

use super::*;
use crate::tree::keys;

/// The announcement of 300 locomotives for Kazakhstan.
fn announcement() -> accord_domain::Event {
    use accord_domain::{AgreementKind, Announced, Event, Party, Timestamp};
    Event::Announced(Announced {
        title: "300 locomotives".into(),
        kind: AgreementKind::Procurement,
        buyer: Party::new("KTZ", "KZ"),
        supplier: Party::new("Wabtec", "US"),
        sector: "rail".into(),
        product: "locomotives".into(),
        quantity: Some(300),
        value: None,
        announced_at: Timestamp::from_seconds(1),
        venue: String::new(),
        source: String::new(),
    })
}

fn keys() -> CheckpointKeys {
    crate::test_support::test_keys()
}

/// Opens the log with windows of 50 records, so that a test log spans several.
///
/// sled's I/O threads let go of the directory's lock a moment after the last
/// handle of an earlier opening is dropped (see `test_support::open_log`), so
/// an opening refused as "in use" is tried again, for at most ten seconds.
fn open(dir: &std::path::Path) -> SledLog {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match SledLog::open(SledOptions {
            index_window_records: 50,
            ..SledOptions::new(dir, keys())
        }) {
            Err(StoreError::Unavailable(why))
                if why.contains("in use") && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            opened => break opened.expect("opens"),
        }
    }
}

#[tokio::test]
async fn a_second_process_on_the_same_directory_is_told_plainly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    // sled locks the directory per process; a second open in this process
    // shares the lock, so the message is checked on the error path only.
    let error = crate::tree::open::explain_open_error(
        dir.path(),
        ::sled::Error::Io(std::io::Error::from(std::io::ErrorKind::WouldBlock)),
    );
    assert!(
        error.to_string().contains("in use by another process"),
        "{error}"
    );
    log.close().await.expect("closes");
}

/// A log written before record blocks and stream-index chunks existed
/// holds one record per value and one position per stream entry.
fn write_legacy_log(dir: &std::path::Path) -> Vec<RecordedEvent> {
    use accord_domain::{DeliveryRecorded, Event, EventMetadata, Timestamp};
    // No background flusher: dropping `db` releases the directory at once,
    // before the test opens it again.
    let db = ::sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .open()
        .expect("opens");
    let tree = db.open_tree("log").expect("tree");
    let mut previous = [0; 32];
    let mut events = Vec::new();
    for position in 1..=3u64 {
        let event = RecordedEvent {
            position,
            agreement_id: "kz-locomotives".into(),
            version: position,
            event_id: [position as u8; 16],
            recorded_at: Timestamp::from_unix_nanos(1_000 * position as i64),
            metadata: EventMetadata {
                command_id: format!("legacy-{position}"),
                ..EventMetadata::default()
            },
            event: if position == 1 {
                announcement()
            } else {
                Event::DeliveryRecorded(DeliveryRecorded {
                    units: 1,
                    delivered_at: Timestamp::from_seconds(2),
                    reference: format!("waybill {position}"),
                })
            },
        };
        let fingerprint = [position as u8; 16];
        let (bytes, hash) = crate::encode_record(&event, &fingerprint, &previous);
        previous = hash;
        tree.insert(keys::event_key(position), bytes)
            .expect("record");
        tree.insert(
            keys::stream_key(&event.agreement_id, event.version),
            &position.to_be_bytes(),
        )
        .expect("stream entry");
        tree.insert(
            keys::command_key(&event.metadata.command_id),
            keys::encode_command_entry(&fingerprint, position),
        )
        .expect("command entry");
        events.push(event);
    }
    tree.insert(keys::AGREEMENT_COUNT, &1u64.to_be_bytes())
        .expect("counter");
    db.flush().expect("flushes");
    events
}

#[tokio::test]
async fn a_log_written_one_record_per_entry_opens_reads_and_continues() {
    use accord_domain::{DeliveryRecorded, Event, EventMetadata, ExpectedVersion, Timestamp};
    let dir = tempfile::tempdir().expect("tempdir");
    let legacy = write_legacy_log(dir.path());
    // Written before logs were signed: refused until the operator adopts it.
    let Err(refused) = SledLog::open(SledOptions::new(dir.path(), keys())) else {
        panic!("an unsigned log opened without --adopt-unsigned-log");
    };
    assert!(
        matches!(&refused, StoreError::Unsigned(why) if why.contains("--adopt-unsigned-log") && why.contains("Accord 0.1")),
        "{refused}"
    );
    let log = SledLog::open(SledOptions {
        unsigned: UnsignedLog::Adopt,
        ..SledOptions::new(dir.path(), keys())
    })
    .expect("adopted");
    assert_eq!(log.head(), 3);
    assert_eq!(
        log.read_log(2, 10).await.expect("reads"),
        legacy[1..].to_vec()
    );
    assert_eq!(
        log.read_stream("kz-locomotives", 1, 10)
            .await
            .expect("reads"),
        legacy
    );
    assert_eq!(
        log.locate("kz-locomotives", 2).await.expect("locates"),
        Some(2)
    );
    let found = log.find_command("legacy-3").await.expect("looks up");
    assert_eq!(found.expect("found").outcome.position, 3);

    let delivery = |units: u64, command_id: &str, expected: u64| AppendItem {
        agreement_id: "kz-locomotives".into(),
        expected: ExpectedVersion::Exact(expected),
        command_id: command_id.into(),
        fingerprint: [9; 16],
        metadata: EventMetadata {
            command_id: command_id.into(),
            ..EventMetadata::default()
        },
        event: Event::DeliveryRecorded(DeliveryRecorded {
            units,
            delivered_at: Timestamp::from_seconds(3),
            reference: String::new(),
        }),
    };
    let appended = log
        .append(vec![delivery(1, "new-4", 3), delivery(2, "new-5", 4)])
        .await
        .expect("continues the legacy log");
    assert_eq!((appended[1].position, appended[1].version), (5, 5));
    let retried = log
        .append(vec![AppendItem {
            fingerprint: [3; 16],
            ..delivery(1, "legacy-3", 5)
        }])
        .await
        .expect("a legacy command id is a duplicate");
    assert!(retried[0].duplicate);
    let stream = log
        .read_stream("kz-locomotives", 3, 10)
        .await
        .expect("reads");
    assert_eq!(
        stream
            .iter()
            .map(|event| event.position)
            .collect::<Vec<_>>(),
        vec![3, 4, 5]
    );
    let report = crate::verify_log(&log, &keys(), |_, _, _| {})
        .await
        .expect("verifies");
    assert_eq!((report.checked, report.problem_count), (5, 0));
    log.close().await.expect("closes");
    drop(log);
    let reopened = open(dir.path());
    assert_eq!(reopened.head(), 5);
    assert_eq!(reopened.read_log(1, 10).await.expect("reads").len(), 5);
    reopened.close().await.expect("closes");
}

/// A log that reports another checkpoint than the one it stores: what
/// VerifyLog sees of a log changed under a running server.
struct OtherCheckpoint(SledLog, Option<SignedCheckpoint>);

#[async_trait::async_trait]
impl EventLog for OtherCheckpoint {
    async fn append(&self, items: Vec<AppendItem>) -> Result<Vec<AppendOutcome>, StoreError> {
        self.0.append(items).await
    }
    async fn read_log(&self, from: u64, max: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_log(from, max).await
    }
    async fn read_raw(&self, from: u64, max: usize) -> Result<Vec<RawRecord>, StoreError> {
        self.0.read_raw(from, max).await
    }
    async fn read_positions(&self, positions: &[u64]) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_positions(positions).await
    }
    async fn read_stream(
        &self,
        agreement_id: &str,
        from: u64,
        max: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.0.read_stream(agreement_id, from, max).await
    }
    async fn stream_positions(
        &self,
        agreement_id: &str,
        from: u64,
        max: usize,
    ) -> Result<Vec<u64>, StoreError> {
        self.0.stream_positions(agreement_id, from, max).await
    }
    async fn tree_root(&self, size: u64) -> Result<crate::TreeHash, StoreError> {
        self.0.tree_root(size).await
    }
    async fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Vec<crate::TreeHash>, StoreError> {
        self.0.inclusion_proof(index, size).await
    }
    async fn tree_tile(
        &self,
        level: u8,
        index: u64,
        width: usize,
    ) -> Result<Vec<crate::TreeHash>, StoreError> {
        self.0.tree_tile(level, index, width).await
    }
    async fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<crate::TreeHash>, StoreError> {
        self.0.consistency_proof(first, second).await
    }
    async fn locate(&self, agreement_id: &str, version: u64) -> Result<Option<u64>, StoreError> {
        self.0.locate(agreement_id, version).await
    }
    async fn import(&self, source: Box<dyn ImportSource>) -> Result<u64, StoreError> {
        self.0.import(source).await
    }
    async fn find_command(&self, command_id: &str) -> Result<Option<CommandRecord>, StoreError> {
        self.0.find_command(command_id).await
    }
    fn head(&self) -> u64 {
        self.0.head()
    }
    fn watch_head(&self) -> watch::Receiver<u64> {
        self.0.watch_head()
    }
    fn checkpoint(&self) -> Option<SignedCheckpoint> {
        self.1
    }
    async fn stats(&self) -> Result<LogStats, StoreError> {
        self.0.stats().await
    }
    async fn close(&self) -> Result<(), StoreError> {
        self.0.close().await
    }
}

#[tokio::test]
async fn verify_log_checks_the_signed_checkpoint_against_the_chain_and_the_keys() {
    use accord_domain::{EventMetadata, ExpectedVersion};
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    for index in 0..3 {
        let command_id = format!("announce-{index}");
        log.append(vec![AppendItem {
            agreement_id: format!("a{index}"),
            expected: ExpectedVersion::NoStream,
            command_id: command_id.clone(),
            fingerprint: [1; 16],
            metadata: EventMetadata {
                command_id,
                ..EventMetadata::default()
            },
            event: announcement(),
        }])
        .await
        .expect("appended");
    }
    let problems = |log: OtherCheckpoint, keys: CheckpointKeys| async move {
        let report = crate::verify_log(&log, &keys, |_, _, _| {})
            .await
            .expect("verifies");
        (log.0, report.problems)
    };
    let stored = log.checkpoint().expect("signed");
    assert_eq!(stored.position, 3);
    let (log, found) = problems(OtherCheckpoint(log, Some(stored)), keys()).await;
    assert_eq!(found, Vec::<String>::new());
    // Another server's keys do not vouch for it.
    let (log, found) = problems(
        OtherCheckpoint(log, Some(stored)),
        CheckpointKeys::new([1; 32], []),
    )
    .await;
    assert!(found[0].contains("not this server's key"), "{found:?}");
    // A checkpoint of another chain (signed with the right key).
    let other = keys().sign(&crate::ChainHead {
        position: 2,
        hash: [7; 32],
    });
    let (log, found) = problems(OtherCheckpoint(log, Some(other)), keys()).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].contains("records were changed"), "{found:?}");
    // None at all.
    let (log, found) = problems(OtherCheckpoint(log, None), keys()).await;
    assert!(found[0].contains("no signed checkpoint"), "{found:?}");
    log.close().await.expect("closes");
}

#[tokio::test]
async fn the_index_digest_matches_the_records_and_leaves_out_later_appends() {
    use accord_domain::{EventMetadata, ExpectedVersion};
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let item = |index: u64, expected| AppendItem {
        agreement_id: format!("a{}", index % 2),
        expected,
        command_id: format!("command-{index}"),
        fingerprint: [1; 16],
        metadata: EventMetadata {
            command_id: format!("command-{index}"),
            ..EventMetadata::default()
        },
        event: announcement(),
    };
    // Two groups: a0 and a1 at version 1, then both at version 2.
    log.append(vec![
        item(0, ExpectedVersion::NoStream),
        item(1, ExpectedVersion::NoStream),
    ])
    .await
    .expect("appended");
    log.append(vec![
        item(2, ExpectedVersion::Exact(1)),
        item(3, ExpectedVersion::Exact(1)),
    ])
    .await
    .expect("appended");
    let digest_keys = crate::DigestKeys::default();
    let from_records = |through: u64, events: &[RecordedEvent]| {
        let mut digest = crate::IndexDigest::default();
        for event in events.iter().filter(|event| event.position <= through) {
            digest.add_stream(
                &digest_keys,
                event.agreement_id.as_bytes(),
                event.version,
                event.position,
            );
            digest.add_command(&digest_keys, &event.metadata.command_id, event.position);
        }
        digest
    };
    let events = log.read_log(1, 10).await.expect("reads");
    for through in [0, 1, 3, 4] {
        let indexed = log
            .index_digest(digest_keys.clone(), through)
            .await
            .expect("scans")
            .expect("sled has a digest");
        assert_eq!(indexed, from_records(through, &events), "through {through}");
        assert_eq!(indexed.command_entries, through);
    }
    // Other keys, another sum: an entry cannot be made to match in advance.
    let other = log
        .index_digest(crate::DigestKeys::default(), 4)
        .await
        .expect("scans")
        .expect("a digest");
    assert_ne!(other, from_records(4, &events));
    log.close().await.expect("closes");
}

/// The stopped log in `dir` opened for surgery (no background flusher),
/// with its index manifest.
fn stopped_log(
    dir: &std::path::Path,
) -> (::sled::Db, ::sled::Tree, crate::tree::index::runs::Manifest) {
    let (db, tree) = crate::test_support::open_log(dir).expect("opens");
    let manifest = crate::tree::index::runs::Manifest::decode(
        &tree
            .get(keys::INDEX_MANIFEST)
            .expect("reads")
            .expect("a manifest"),
    )
    .expect("decodes");
    (db, tree, manifest)
}

/// Appends `rounds` rounds of one event to each of `agreements` agreements,
/// one group per round, and returns the items of each round.
async fn append_rounds(
    log: &SledLog,
    agreements: u64,
    rounds: std::ops::Range<u64>,
) -> Vec<Vec<AppendItem>> {
    let mut appended = Vec::new();
    for round in rounds {
        let items: Vec<AppendItem> = (0..agreements)
            .map(|agreement| round_item(round, agreement))
            .collect();
        log.append(items.clone()).await.expect("appended");
        appended.push(items);
    }
    appended
}

/// The event of round `round` (from 0) of agreement `a{agreement}`: its
/// announcement, then deliveries, each expecting the version before it.
fn round_item(round: u64, agreement: u64) -> AppendItem {
    use accord_domain::{DeliveryRecorded, Event, EventMetadata, ExpectedVersion, Timestamp};
    let command_id = format!("c-{round}-{agreement}");
    AppendItem {
        agreement_id: format!("a{agreement}"),
        expected: match round {
            0 => ExpectedVersion::NoStream,
            _ => ExpectedVersion::Exact(round),
        },
        command_id: command_id.clone(),
        fingerprint: [round as u8; 16],
        metadata: EventMetadata {
            command_id,
            ..EventMetadata::default()
        },
        event: match round {
            0 => announcement(),
            _ => Event::DeliveryRecorded(DeliveryRecorded {
                units: 1,
                delivered_at: Timestamp::from_seconds(2),
                reference: String::new(),
            }),
        },
    }
}

/// A retry of a command, and an append expecting the version the command
/// wrote, sent while the command is being written: whether they land in
/// its group or a later one, the retry is a duplicate at its position and
/// the successor gets the next version. (A pipelined sync, tried and
/// reverted, answered them from groups not yet in the index; this test
/// caught it forgetting to.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_and_successors_of_a_group_being_synced_are_answered_from_it() {
    let agreements = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = std::sync::Arc::new(open(dir.path()));
    let tasks: Vec<_> = (0..agreements)
        .map(|agreement| {
            let log = log.clone();
            tokio::spawn(async move {
                let opening = round_item(0, agreement);
                let retry = opening.clone();
                let following = round_item(1, agreement);
                // The opening is sent first; the retry and the successor
                // after a varying number of turns, so that some land in
                // the opening's group and some in the groups after it.
                tokio::join!(log.append(vec![opening]), async {
                    for _ in 0..agreement % 5 {
                        tokio::task::yield_now().await;
                    }
                    tokio::join!(log.append(vec![retry]), log.append(vec![following]))
                })
            })
        })
        .collect();
    for task in tasks {
        let (opened, (retried, followed)) = task.await.expect("joins");
        let opened = &opened.expect("the opening is appended")[0];
        let retried = &retried.expect("the retry is answered")[0];
        let followed = &followed.expect("the successor is appended")[0];
        assert!(!opened.duplicate);
        assert!(retried.duplicate, "{retried:?}");
        assert_eq!(retried.position, opened.position);
        assert_eq!((followed.version, followed.duplicate), (2, false));
    }
    assert_eq!(log.head(), 2 * agreements);
    log.close().await.expect("closes");
}

/// What a log must answer whatever part of its index is on disk: every
/// command a duplicate at its first position, every stream whole, no
/// problem found by VerifyLog.
async fn assert_indexes_answer(log: &SledLog, rounds: &[Vec<AppendItem>], agreements: u64) {
    for items in rounds {
        for item in [&items[0], &items[items.len() - 1]] {
            let found = log
                .find_command(&item.command_id)
                .await
                .expect("looks up")
                .unwrap_or_else(|| panic!("{} not found", item.command_id));
            assert_eq!(found.fingerprint, item.fingerprint);
            let event = log
                .read_log(found.outcome.position, 1)
                .await
                .expect("reads");
            assert_eq!(event[0].metadata.command_id, item.command_id);
        }
    }
    assert!(
        log.find_command("never-sent")
            .await
            .expect("looks up")
            .is_none()
    );
    for agreement in [0, agreements - 1] {
        let stream = log
            .read_stream(&format!("a{agreement}"), 1, 1_000)
            .await
            .expect("reads");
        assert_eq!(stream.len(), rounds.len(), "a{agreement}");
        assert!(
            stream
                .iter()
                .enumerate()
                .all(|(index, event)| event.version == index as u64 + 1)
        );
        let middle = &stream[rounds.len() / 2];
        assert_eq!(
            log.locate(&middle.agreement_id, middle.version)
                .await
                .expect("locates"),
            Some(middle.position)
        );
    }
    let report = crate::verify_log(log, &keys(), |_, _, _| {})
        .await
        .expect("verifies");
    assert_eq!(report.problem_count, 0, "{:?}", report.problems);
}

#[tokio::test]
async fn indexes_kept_off_the_group_commit_answer_across_windows_a_crash_and_reopens() {
    let agreements = 12;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    // 360 events: several windows of the tail (50 records in tests) on disk.
    let mut rounds = append_rounds(&log, agreements, 0..30).await;
    assert_indexes_answer(&log, &rounds, agreements).await;
    // A retried command is a duplicate whether its entry is on disk or in memory.
    for items in [&rounds[0], &rounds[29]] {
        let retried = log.append(vec![items[3].clone()]).await.expect("retried");
        assert!(retried[0].duplicate);
    }
    log.close().await.expect("closes");
    drop(log);

    // A crash after the indexer wrote its last window but before the
    // manifest covered it: the window's chunks and run are on disk, the
    // manifest one window behind.
    {
        let (db, tree, mut manifest) = stopped_log(dir.path());
        assert_eq!(manifest.indexed, 360, "a clean close writes the whole tail");
        assert!(manifest.runs.len() >= 5, "{manifest:?}");
        let last = manifest.runs.pop().expect("a run");
        let (last_run, entries) = (last.id, last.entries);
        manifest.next_run = last_run;
        let mut first_of_last = u64::MAX;
        let run =
            crate::tree::index::runs::Run::load(&tree, last_run, entries).expect("the last run");
        run.for_each(&tree, |_, position| {
            first_of_last = first_of_last.min(position)
        })
        .expect("reads");
        manifest.indexed = first_of_last - 1;
        tree.insert(keys::INDEX_MANIFEST, manifest.encode())
            .expect("writes");
        db.flush().expect("flushes");
    }
    let log = open(dir.path());
    assert_eq!(log.head(), 360);
    assert_indexes_answer(&log, &rounds, agreements).await;
    rounds.extend(append_rounds(&log, agreements, 30..40).await);
    assert_indexes_answer(&log, &rounds, agreements).await;
    log.close().await.expect("closes");
    drop(log);
    let log = open(dir.path());
    assert_indexes_answer(&log, &rounds, agreements).await;
    log.close().await.expect("closes");
}

#[tokio::test]
async fn a_command_index_hit_is_confirmed_against_its_record() {
    let agreements = 4;
    let dir = tempfile::tempdir().expect("tempdir");
    let log = open(dir.path());
    let rounds = append_rounds(&log, agreements, 0..20).await;
    log.close().await.expect("closes");
    drop(log);
    // What a collision of command-id hashes looks like: a run entry with the
    // hash of a command never sent, pointing at another command's record.
    {
        use crate::tree::index::runs::{self, Run};
        let (db, tree, mut manifest) = stopped_log(dir.path());
        // The run is written again with the entry, filter included, as a
        // true collision would be.
        let meta = manifest.runs.first_mut().expect("a run");
        let mut entries = Vec::new();
        Run::load(&tree, meta.id, meta.entries)
            .expect("loads")
            .for_each(&tree, |hash, position| entries.push((hash, position)))
            .expect("reads");
        entries.push((runs::command_hash("never-sent"), 3));
        runs::remove_run(&tree, meta.id).expect("removes");
        let (run, _) = Run::write(&tree, meta.id, entries).expect("writes");
        meta.entries = run.entries;
        tree.insert(keys::INDEX_MANIFEST, manifest.encode())
            .expect("writes");
        db.flush().expect("flushes");
    }
    let log = open(dir.path());
    assert!(
        log.find_command("never-sent")
            .await
            .expect("looks up")
            .is_none(),
        "a hash match at another command's record is not that command"
    );
    let mut item = rounds[19][0].clone();
    item.command_id = "never-sent".into();
    item.metadata.command_id = "never-sent".into();
    item.expected = accord_domain::ExpectedVersion::Exact(20);
    let appended = log.append(vec![item]).await.expect("appends");
    assert!(
        !appended[0].duplicate,
        "a new command is appended, not answered as another's"
    );
    let found = log
        .find_command("never-sent")
        .await
        .expect("looks up")
        .expect("found now");
    assert_eq!(found.outcome.position, appended[0].position);
    let original = log
        .find_command(&rounds[0][2].command_id)
        .await
        .expect("looks up")
        .expect("the command at position 3");
    assert_eq!(original.outcome.position, 3);
    log.close().await.expect("closes");
}
