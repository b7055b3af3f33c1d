//! The background indexer and the tail of index entries it has not written
//! yet: a crash between a group commit and the index run that follows it
//! loses nothing, since the entries are derived again from the records.

use accord_domain::{
    AgreementKind, Announced, DeliveryRecorded, Event, EventMetadata, ExpectedVersion, Party,
    Timestamp,
};

use super::*;
use crate::stream_index::{chunk_at, encode_chunk};

fn keys() -> CheckpointKeys {
    CheckpointKeys::new([0x42; 32], [])
}

fn item(agreement_id: &str, command_id: &str, expected: ExpectedVersion) -> AppendItem {
    let event = if expected == ExpectedVersion::NoStream {
        Event::Announced(Announced {
            title: agreement_id.into(),
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
    } else {
        Event::DeliveryRecorded(DeliveryRecorded {
            units: 1,
            delivered_at: Timestamp::from_seconds(2),
            reference: command_id.into(),
        })
    };
    AppendItem {
        agreement_id: agreement_id.into(),
        expected,
        command_id: command_id.into(),
        fingerprint: [7; 16],
        metadata: EventMetadata {
            command_id: command_id.into(),
            ..EventMetadata::default()
        },
        event,
    }
}

/// Opens the stopped log's tree without sled's background flusher.
fn with_tree(dir: &std::path::Path, change: impl FnOnce(&::sled::Tree)) {
    let db = ::sled::Config::new()
        .path(dir)
        .flush_every_ms(None)
        .open()
        .expect("opens");
    change(&db.open_tree("log").expect("tree"));
    db.flush().expect("flushes");
}

/// Positions of `agreement_id`'s versions as the tree's own index has them.
fn indexed_in_tree(tree: &::sled::Tree, agreement_id: &str, versions: u64) -> Vec<Option<u64>> {
    (1..=versions)
        .map(|version| {
            chunk_at(tree, agreement_id, version)
                .expect("reads")
                .and_then(|chunk| chunk.position_of(version))
        })
        .collect()
}

#[tokio::test]
async fn entries_lost_with_their_index_run_are_derived_again_at_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = SledLog::open(SledOptions::new(dir.path(), keys())).expect("opens");
    // Positions 1-2: the announcements; 3-8: three deliveries to each.
    log.append(vec![
        item("a", "announce-a", ExpectedVersion::NoStream),
        item("b", "announce-b", ExpectedVersion::NoStream),
    ])
    .await
    .expect("announced");
    for round in 0..3u64 {
        for agreement in ["a", "b"] {
            log.append(vec![item(
                agreement,
                &format!("deliver-{agreement}-{round}"),
                ExpectedVersion::Exact(round + 1),
            )])
            .await
            .expect("delivered");
        }
    }
    log.close().await.expect("closes");
    drop(log);

    // What a crash after the group commits of positions 5-8 and before the
    // index run that would have written their entries leaves on disk.
    with_tree(dir.path(), |tree| {
        assert_eq!(
            indexed_in_tree(tree, "a", 4),
            vec![Some(1), Some(3), Some(5), Some(7)]
        );
        // The close wrote one run: each agreement's versions in one chunk.
        let mut batch = ::sled::Batch::default();
        batch.insert(keys::stream_key("a", 1), encode_chunk(&[1, 3]));
        batch.insert(keys::stream_key("b", 1), encode_chunk(&[2, 4]));
        for command in ["deliver-a-1", "deliver-b-1", "deliver-a-2", "deliver-b-2"] {
            batch.remove(keys::command_key(command));
        }
        batch.insert(keys::INDEXED, &4u64.to_be_bytes());
        tree.apply_batch(batch).expect("applies");
        assert_eq!(
            indexed_in_tree(tree, "a", 4),
            vec![Some(1), Some(3), None, None]
        );
    });

    let log = SledLog::open(SledOptions::new(dir.path(), keys())).expect("reopens");
    assert_eq!(log.head(), 8);
    let positions = |events: Vec<RecordedEvent>| {
        events
            .iter()
            .map(|event| event.position)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        positions(log.read_stream("a", 1, 10).await.expect("reads")),
        vec![1, 3, 5, 7]
    );
    assert_eq!(
        positions(log.read_stream("b", 3, 10).await.expect("reads")),
        vec![6, 8]
    );
    assert_eq!(
        positions(log.read_stream("b", 2, 2).await.expect("reads")),
        vec![4, 6]
    );
    assert_eq!(log.locate("b", 4).await.expect("locates"), Some(8));
    let found = log.find_command("deliver-a-2").await.expect("looks up");
    assert_eq!(found.expect("found").outcome.position, 7);
    // Idempotency and expected versions hold for the derived entries.
    let retried = log
        .append(vec![item("b", "deliver-b-2", ExpectedVersion::Exact(3))])
        .await
        .expect("a retry");
    assert!(retried[0].duplicate);
    assert_eq!(retried[0].position, 8);
    let stale = log
        .append(vec![item("a", "deliver-a-late", ExpectedVersion::Exact(3))])
        .await
        .expect_err("version 4 exists");
    assert!(
        matches!(stale, StoreError::WrongExpectedVersion { actual: 4, .. }),
        "{stale}"
    );
    let next = log
        .append(vec![item("a", "deliver-a-3", ExpectedVersion::Exact(4))])
        .await
        .expect("continues");
    assert_eq!((next[0].position, next[0].version), (9, 5));
    let report = crate::verify_log(&log, &keys(), |_, _, _| {})
        .await
        .expect("verifies");
    assert_eq!(
        (report.checked, report.problem_count),
        (9, 0),
        "{:?}",
        report.problems
    );
    log.close().await.expect("closes");
    drop(log);

    // Closing wrote the tail to the tree, and the mark with it.
    with_tree(dir.path(), |tree| {
        assert_eq!(
            indexed_in_tree(tree, "a", 5),
            vec![Some(1), Some(3), Some(5), Some(7), Some(9)]
        );
        assert!(
            tree.get(keys::command_key("deliver-b-2"))
                .expect("reads")
                .is_some()
        );
        let mark = tree.get(keys::INDEXED).expect("reads").expect("marked");
        assert_eq!(keys::decode_u64(&mark), Some(9));
    });
}
