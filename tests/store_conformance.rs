//! The event-log contract, run unchanged against every backend: the
//! embedded sled log, a one-node NATS JetStream and a three-node cluster
//! (real nats-server processes).

use std::sync::Arc;

use accord_domain::{
    AgreementKind, Announced, Event, EventMetadata, ExpectedVersion, Money, Party, Signed,
    Timestamp,
};
use accord_store::test_support::test_keys;
use accord_store::{
    AppendItem, EventLog, ImportChunks, ImportSource, NatsLog, NatsOptions, READ_BYTES, RawRecord,
    SledLog, SledOptions, StoreError, decode_record, record_hash, verify_log,
};
use accord_tests::nats::{NatsCluster, NatsNode};

/// Where a log lives; `open(node)` opens it as one node sees it.
enum Backend {
    Sled(tempfile::TempDir),
    Nats {
        servers: String,
        replicas: usize,
        dirs: tempfile::TempDir,
        /// The nats-server processes, stopped when dropped.
        _nodes: Vec<NatsNode>,
        /// Held by three-node clusters: see `accord_tests::heavy`.
        _heavy: Option<tokio::sync::SemaphorePermit<'static>>,
    },
}

impl Backend {
    async fn sled() -> Self {
        Backend::Sled(tempfile::tempdir().expect("tempdir"))
    }

    async fn nats_one_node() -> Self {
        let node = NatsNode::single().await;
        Backend::Nats {
            servers: node.url().to_owned(),
            replicas: 1,
            dirs: tempfile::tempdir().expect("tempdir"),
            _nodes: vec![node],
            _heavy: None,
        }
    }

    async fn nats_three_nodes() -> Self {
        let heavy = accord_tests::heavy().await;
        let mut backend = Self::three_node_cluster().await;
        if let Backend::Nats { _heavy, .. } = &mut backend {
            *_heavy = Some(heavy);
        }
        backend
    }

    /// A three-node cluster; the caller holds the heavy-test permit.
    async fn three_node_cluster() -> Self {
        let cluster = NatsCluster::three().await;
        Backend::Nats {
            servers: cluster.urls(),
            replicas: 3,
            dirs: tempfile::tempdir().expect("tempdir"),
            _nodes: cluster.nodes,
            _heavy: None,
        }
    }

    async fn open(&self) -> Arc<dyn EventLog> {
        match self {
            Backend::Sled(dir) => {
                Arc::new(SledLog::open(SledOptions::new(dir.path(), test_keys())).expect("opens"))
            }
            Backend::Nats {
                servers,
                replicas,
                dirs,
                ..
            } => {
                let mut options =
                    NatsOptions::new(servers.clone(), dirs.path().join("replica"), test_keys());
                options.replicas = *replicas;
                Arc::new(NatsLog::open(options).await.expect("opens"))
            }
        }
    }

    /// A second, empty log of the same kind, for imports.
    async fn another(&self) -> (Backend, Arc<dyn EventLog>) {
        let other = match self {
            Backend::Sled(_) => Backend::sled().await,
            Backend::Nats { replicas: 1, .. } => Backend::nats_one_node().await,
            Backend::Nats { .. } => Backend::three_node_cluster().await,
        };
        let log = other.open().await;
        (other, log)
    }
}

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

async fn positions_and_versions_start_at_one_and_have_no_gaps(backend: Backend) {
    let log = backend.open().await;
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
            item("b.x", "c2", ExpectedVersion::NoStream, announced()),
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
    assert_eq!(all[1].agreement_id, "b.x");
    let stream = log.read_stream("a", 1, 100).await.expect("reads");
    assert_eq!(
        stream.iter().map(|event| event.version).collect::<Vec<_>>(),
        vec![1, 2]
    );
    assert_eq!(log.locate("a", 2).await.expect("locates"), Some(3));
    assert_eq!(log.head(), 3);
    let stats = log.stats().await.expect("stats");
    assert_eq!((stats.head_position, stats.agreement_count), (3, 2));
    assert!(stats.disk_bytes > 0);
    log.close().await.expect("closes");
}

async fn a_batch_is_all_or_nothing(backend: Backend) {
    let log = backend.open().await;
    let error = log
        .append(vec![
            item("a", "c1", ExpectedVersion::NoStream, announced()),
            item("a", "c2", ExpectedVersion::Exact(5), signed()),
        ])
        .await
        .expect_err("second item conflicts");
    assert!(
        matches!(error, StoreError::WrongExpectedVersion { .. }),
        "{error}"
    );
    assert_eq!(log.head(), 0);
    assert!(log.read_log(1, 10).await.expect("reads").is_empty());
    assert!(log.find_command("c1").await.expect("looks up").is_none());
    let error = log
        .append(vec![item("z", "c3", ExpectedVersion::Any, signed())])
        .await
        .expect_err("an agreement starts with its announcement");
    assert!(
        matches!(error, StoreError::WrongExpectedVersion { actual: 0, .. }),
        "{error}"
    );
    assert_eq!(log.head(), 0);
    log.close().await.expect("closes");
}

async fn a_retried_command_is_a_duplicate_and_a_reused_id_conflicts(backend: Backend) {
    let log = backend.open().await;
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
    assert!(
        matches!(error, StoreError::CommandIdConflict { .. }),
        "{error}"
    );
    assert_eq!(log.head(), 1);
    log.close().await.expect("closes");
}

async fn the_log_reopens_at_its_head_with_its_idempotency_keys(backend: Backend) {
    {
        let log = backend.open().await;
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
    let log = backend.open().await;
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
    let raw = log.read_raw(2, 2).await.expect("reads");
    let decoded = decode_record(&raw[1].bytes).expect("decodes");
    assert_eq!(decoded.prev_hash, record_hash(&raw[0].bytes));
    log.close().await.expect("closes");
}

async fn concurrent_appends_with_the_same_expected_version_have_one_winner(backend: Backend) {
    let log = backend.open().await;
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
    assert_eq!(log.head(), 2);
    log.close().await.expect("closes");
}

async fn an_export_imports_into_an_empty_log_unchanged(backend: Backend) {
    let log = backend.open().await;
    for index in 0..20 {
        let agreement = format!("a{}", index % 5);
        let expected = if index < 5 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(index as u64 / 5)
        };
        let event = if index < 5 { announced() } else { signed() };
        log.append(vec![item(
            &agreement,
            &format!("c{index}"),
            expected,
            event,
        )])
        .await
        .expect("appends");
    }
    let exported = log.read_raw(1, 100).await.expect("reads");
    assert_eq!(exported.len(), 20);
    let report = verify_log(log.as_ref(), &test_keys(), |_, _, _| {})
        .await
        .expect("verifies");
    assert_eq!(
        (report.checked, report.problems.len()),
        (20, 0),
        "{:?}",
        report.problems
    );

    let (_other, target) = backend.another().await;
    let chunks = |chunks: &[&[RawRecord]]| -> Box<dyn ImportSource> {
        Box::new(ImportChunks::new(
            chunks.iter().map(|chunk| chunk.to_vec()).collect(),
        ))
    };
    let error = target
        .import(chunks(&[&exported[1..3]]))
        .await
        .expect_err("must start at 1");
    assert!(matches!(error, StoreError::InvalidImport(_)), "{error}");
    assert_eq!(target.head(), 0);
    // A bad record in the last chunk: nothing of the import stays.
    let mut tampered = exported.clone();
    let mut bytes = tampered[19].bytes.to_vec();
    bytes[40] ^= 1;
    tampered[19].bytes = bytes.into();
    let error = target
        .import(chunks(&[&tampered[..7], &tampered[7..]]))
        .await
        .expect_err("a tampered last record");
    assert!(matches!(error, StoreError::InvalidImport(_)), "{error}");
    assert_eq!(target.head(), 0);
    assert!(target.read_raw(1, 100).await.expect("reads").is_empty());
    assert!(
        target.find_command("c0").await.expect("looks up").is_none(),
        "nothing of a failed import is remembered"
    );
    assert_eq!(
        target
            .import(chunks(&[&exported[..7], &exported[7..]]))
            .await
            .expect("imports"),
        20
    );
    assert_eq!(target.read_raw(1, 100).await.expect("reads"), exported);
    let error = target
        .import(chunks(&[&exported[19..]]))
        .await
        .expect_err("only into an empty log");
    assert!(matches!(error, StoreError::ImportNotPossible(_)), "{error}");
    let report = verify_log(target.as_ref(), &test_keys(), |_, _, _| {})
        .await
        .expect("verifies");
    assert_eq!(
        (report.checked, report.problems.len()),
        (20, 0),
        "{:?}",
        report.problems
    );
    assert!(
        target
            .find_command("c19")
            .await
            .expect("looks up")
            .is_some(),
        "imported command ids are remembered"
    );
    target.close().await.expect("closes");
    log.close().await.expect("closes");
}

/// Reads that start and stop anywhere in a log written in large batches
/// over several agreements (a commit packs many records together), before
/// and after reopening.
async fn reads_start_and_stop_anywhere_in_large_batches(backend: Backend) {
    let log = backend.open().await;
    let agreements = ["a", "b", "c"];
    // Agreement and version of each position, from position 1 on.
    let mut written: Vec<(&str, u64)> = Vec::new();
    let announcements = agreements
        .iter()
        .map(|id| {
            item(
                id,
                &format!("announce-{id}"),
                ExpectedVersion::NoStream,
                announced(),
            )
        })
        .collect();
    log.append(announcements).await.expect("announces");
    written.extend(agreements.iter().map(|id| (*id, 1)));
    for round in 0..6 {
        let mut items = Vec::new();
        for index in 0..99 {
            let id = agreements[index % 3];
            let version = written.iter().filter(|(other, _)| *other == id).count() as u64;
            items.push(item(
                id,
                &format!("r{round}-{index}"),
                ExpectedVersion::Exact(version),
                signed(),
            ));
            written.push((id, version + 1));
        }
        let outcomes = log.append(items).await.expect("appends a batch");
        assert_eq!(
            outcomes.last().expect("outcomes").position,
            written.len() as u64
        );
    }
    let head = written.len() as u64;
    assert_eq!(head, 597);
    let position_of = |id: &str, version: u64| {
        written
            .iter()
            .position(|entry| *entry == (id, version))
            .map(|index| index as u64 + 1)
    };

    let mut log = log;
    for round in 0..2 {
        assert_eq!(log.head(), head);
        for from in [0, 1, 2, 50, 51, 296, 597, 598] {
            for max in [1, 7, 1_000] {
                let events = log.read_log(from, max).await.expect("reads");
                let first = from.max(1);
                let expected: Vec<u64> = (first..=head).take(max).collect();
                let got: Vec<u64> = events.iter().map(|event| event.position).collect();
                assert_eq!(got, expected, "read_log({from}, {max})");
                for event in &events {
                    let (id, version) = written[event.position as usize - 1];
                    assert_eq!((event.agreement_id.as_str(), event.version), (id, version));
                }
                let raw = log.read_raw(from, max).await.expect("reads raw");
                let raw_positions: Vec<u64> = raw.iter().map(|record| record.position).collect();
                assert_eq!(raw_positions, expected, "read_raw({from}, {max})");
                for record in &raw {
                    let decoded = decode_record(&record.bytes).expect("decodes");
                    assert_eq!(decoded.event.position, record.position);
                }
            }
        }
        // Reads at positions an index lists: scattered, in one block or
        // across blocks and batches, up to the head.
        for positions in [
            vec![1],
            vec![2, 3, 4],
            vec![1, 50, 51, 99, 100, 101, 296, 500, 597],
            (1..=head).step_by(13).collect(),
            (1..=head).collect(),
            vec![],
        ] {
            let events = log
                .read_positions(&positions)
                .await
                .expect("reads positions");
            let got: Vec<u64> = events.iter().map(|event| event.position).collect();
            assert_eq!(got, positions, "read_positions");
            for event in &events {
                let (id, version) = written[event.position as usize - 1];
                assert_eq!((event.agreement_id.as_str(), event.version), (id, version));
            }
        }
        let past = log.read_positions(&[596, 597, 598]).await.expect("reads");
        let got: Vec<u64> = past.iter().map(|event| event.position).collect();
        assert_eq!(got, [596, 597], "none past the head");
        for id in agreements {
            let last = written.iter().filter(|(other, _)| *other == id).count() as u64;
            assert_eq!(last, 199);
            for from in [0, 1, 2, 100, 199, 200] {
                for max in [1, 5, 1_000] {
                    let events = log.read_stream(id, from, max).await.expect("reads");
                    let expected: Vec<(u64, Option<u64>)> = (from.max(1)..=last)
                        .take(max)
                        .map(|version| (version, position_of(id, version)))
                        .collect();
                    let got: Vec<(u64, Option<u64>)> = events
                        .iter()
                        .map(|event| (event.version, Some(event.position)))
                        .collect();
                    assert_eq!(got, expected, "read_stream({id}, {from}, {max})");
                    let listed = log
                        .stream_positions(id, from, max)
                        .await
                        .expect("lists positions");
                    let expected: Vec<u64> = expected
                        .iter()
                        .map(|(_, position)| position.expect("written"))
                        .collect();
                    assert_eq!(listed, expected, "stream_positions({id}, {from}, {max})");
                }
            }
            for version in 1..=last {
                assert_eq!(
                    log.locate(id, version).await.expect("locates"),
                    position_of(id, version),
                    "locate({id}, {version})"
                );
            }
            assert_eq!(log.locate(id, last + 1).await.expect("locates"), None);
        }
        for (command_id, position) in [("announce-b", 2), ("r0-0", 4), ("r5-98", 597)] {
            let found = log
                .find_command(command_id)
                .await
                .expect("looks up")
                .expect("found");
            assert_eq!(found.outcome.position, position, "{command_id}");
        }
        let report = verify_log(log.as_ref(), &test_keys(), |_, _, _| {})
            .await
            .expect("verifies");
        assert_eq!((report.checked, report.problem_count), (head, 0));
        if round == 0 {
            log.close().await.expect("closes");
            drop(log);
            log = backend.open().await;
        }
    }
    // The reopened log continues every agreement at its last version.
    let next = log
        .append(vec![item(
            "b",
            "after-reopen",
            ExpectedVersion::Exact(199),
            signed(),
        )])
        .await
        .expect("appends after reopening");
    assert_eq!((next[0].position, next[0].version), (head + 1, 200));
    let stale = log
        .append(vec![item(
            "c",
            "stale",
            ExpectedVersion::Exact(198),
            signed(),
        )])
        .await
        .expect_err("c is at 199");
    assert!(
        matches!(stale, StoreError::WrongExpectedVersion { actual: 199, .. }),
        "{stale}"
    );
    log.close().await.expect("closes");
}

/// A read stops once it holds `READ_BYTES` of records (so at most one
/// record more; at least one record), whatever
/// the count asked for; a reader gets the rest by reading on.
async fn reads_of_large_events_stop_at_their_byte_budget(backend: Backend) {
    const EVENTS: u64 = 40;
    let log = backend.open().await;
    log.append(vec![item(
        "big",
        "announce",
        ExpectedVersion::NoStream,
        announced(),
    )])
    .await
    .expect("announces");
    for version in 1..EVENTS {
        let event = Event::Signed(Signed {
            signed_at: Timestamp::from_seconds(1),
            signatories: vec![format!("{version}-{}", "s".repeat(60_000))],
            value: None,
            quantity: None,
        });
        log.append(vec![item(
            "big",
            &format!("sign-{version}"),
            ExpectedVersion::Exact(version),
            event,
        )])
        .await
        .expect("appends");
    }
    let all: Vec<u64> = (1..=EVENTS).collect();
    // A whole-stream read stops at the budget and reads on to the end.
    let first = log.read_stream("big", 1, usize::MAX).await.expect("reads");
    let first_versions: Vec<u64> = first.iter().map(|event| event.version).collect();
    assert!(
        !first.is_empty() && first.len() < all.len() && first.len() <= 2 + READ_BYTES / 60_000,
        "one read of 40 events of 60 KB: {} events",
        first.len()
    );
    assert_eq!(first_versions, all[..first.len()]);
    let mut versions = first_versions;
    while let Some(&last) = versions.last() {
        let more = log
            .read_stream("big", last + 1, usize::MAX)
            .await
            .expect("reads on");
        if more.is_empty() {
            break;
        }
        assert!(more.len() <= 2 + READ_BYTES / 60_000);
        versions.extend(more.iter().map(|event| event.version));
    }
    assert_eq!(versions, all);
    // One event larger than the budget's rest is still read.
    let one = log
        .read_stream("big", EVENTS, usize::MAX)
        .await
        .expect("reads");
    assert_eq!(one.len(), 1);
    // Its positions list without reading a record; a read of them stops
    // at the budget too.
    let positions = log
        .stream_positions("big", 1, usize::MAX)
        .await
        .expect("lists");
    assert_eq!(positions, all);
    let events = log.read_positions(&positions).await.expect("reads");
    assert!(!events.is_empty() && events.len() < positions.len());
    let mut logged = log.read_log(1, usize::MAX).await.expect("reads the log");
    assert!(!logged.is_empty() && logged.len() < positions.len());
    logged.truncate(events.len().min(logged.len()));
    assert_eq!(
        logged
            .iter()
            .map(|event| event.position)
            .collect::<Vec<_>>(),
        positions[..logged.len()]
    );
    log.close().await.expect("closes");
}

/// The Merkle tree covers every position as the records are stored: its
/// roots, inclusion and consistency proofs are RFC 9162's over the records
/// `read_raw` gives (an independent implementation), across tile
/// boundaries, groups of any size and a reopen.
async fn the_merkle_tree_is_rfc_9162s_over_the_stored_records(backend: Backend) {
    use accord_tests::rfc9162;
    let log = backend.open().await;
    assert_eq!(log.tree_root(0).await.expect("root"), rfc9162::mth(&[]));
    let mut version = 0;
    let mut appended = 0u64;
    for batch in [1usize, 3, 250, 2, 1, 300, 7] {
        let items = (0..batch)
            .map(|_| {
                let (expected, event) = if version == 0 {
                    (ExpectedVersion::NoStream, announced())
                } else {
                    (ExpectedVersion::Exact(version), signed())
                };
                version += 1;
                item("tree", &format!("c{version}"), expected, event)
            })
            .collect();
        log.append(items).await.expect("appends");
        appended += batch as u64;
    }
    let head = log.head();
    assert_eq!(head, appended);
    let mut records = Vec::new();
    while (records.len() as u64) < head {
        let read = log
            .read_raw(records.len() as u64 + 1, usize::MAX)
            .await
            .expect("reads");
        records.extend(read.into_iter().map(|record| record.bytes.to_vec()));
    }
    let check = |log: Arc<dyn EventLog>, records: Vec<Vec<u8>>| async move {
        let head = records.len();
        for size in [1usize, 2, 4, 5, 255, 256, 257, 300, 511, 512, 513, head] {
            let size = size.min(head);
            assert_eq!(
                log.tree_root(size as u64).await.expect("root"),
                rfc9162::mth(&records[..size]),
                "root at {size}"
            );
            for index in [0, size / 3, size / 2, size - 1] {
                assert_eq!(
                    log.inclusion_proof(index as u64, size as u64)
                        .await
                        .expect("proof"),
                    rfc9162::path(index, &records[..size]),
                    "PATH({index}, {size})"
                );
            }
            for first in [0usize, 1, 3, 256, size / 2, size] {
                let first = first.min(size);
                assert_eq!(
                    log.consistency_proof(first as u64, size as u64)
                        .await
                        .expect("proof"),
                    rfc9162::proof(first, &records[..size]),
                    "PROOF({first}, {size})"
                );
            }
        }
    };
    check(log.clone(), records.clone()).await;
    // Beyond the head there is nothing to prove.
    assert!(log.tree_root(head + 1).await.is_err());
    assert!(log.inclusion_proof(head, head).await.is_err());
    log.close().await.expect("closes");
    drop(log);
    let log = backend.open().await;
    check(log.clone(), records.clone()).await;
    // The reopened tree continues where it was.
    log.append(vec![item(
        "tree",
        "after-reopen",
        ExpectedVersion::Exact(version),
        signed(),
    )])
    .await
    .expect("appends");
    let last = log.read_raw(head + 1, 1).await.expect("reads");
    records.push(last[0].bytes.to_vec());
    check(log.clone(), records).await;
    log.close().await.expect("closes");
}

macro_rules! conformance {
    ($backend:ident) => {
        mod $backend {
            use super::*;

            #[tokio::test]
            async fn positions_and_versions_start_at_one_and_have_no_gaps() {
                super::positions_and_versions_start_at_one_and_have_no_gaps(
                    Backend::$backend().await,
                )
                .await;
            }

            #[tokio::test]
            async fn a_batch_is_all_or_nothing() {
                super::a_batch_is_all_or_nothing(Backend::$backend().await).await;
            }

            #[tokio::test]
            async fn a_retried_command_is_a_duplicate_and_a_reused_id_conflicts() {
                super::a_retried_command_is_a_duplicate_and_a_reused_id_conflicts(
                    Backend::$backend().await,
                )
                .await;
            }

            #[tokio::test]
            async fn the_log_reopens_at_its_head_with_its_idempotency_keys() {
                super::the_log_reopens_at_its_head_with_its_idempotency_keys(
                    Backend::$backend().await,
                )
                .await;
            }

            #[tokio::test]
            async fn concurrent_appends_with_the_same_expected_version_have_one_winner() {
                super::concurrent_appends_with_the_same_expected_version_have_one_winner(
                    Backend::$backend().await,
                )
                .await;
            }

            #[tokio::test]
            async fn reads_start_and_stop_anywhere_in_large_batches() {
                super::reads_start_and_stop_anywhere_in_large_batches(Backend::$backend().await)
                    .await;
            }

            #[tokio::test]
            async fn reads_of_large_events_stop_at_their_byte_budget() {
                super::reads_of_large_events_stop_at_their_byte_budget(Backend::$backend().await)
                    .await;
            }

            #[tokio::test]
            async fn the_merkle_tree_is_rfc_9162s_over_the_stored_records() {
                super::the_merkle_tree_is_rfc_9162s_over_the_stored_records(
                    Backend::$backend().await,
                )
                .await;
            }

            #[tokio::test]
            async fn an_export_imports_into_an_empty_log_unchanged() {
                super::an_export_imports_into_an_empty_log_unchanged(Backend::$backend().await)
                    .await;
            }
        }
    };
}

conformance!(sled);
conformance!(nats_one_node);
conformance!(nats_three_nodes);
