//! Read models stored in another schema than this build writes are dropped
//! at open, to be rebuilt from the log; read models of this schema are kept.

use accord_domain::{
    AgreementKind, Announced, Event, EventMetadata, Party, RecordedEvent, Timestamp,
};
use accord_projections::ReadModels;

fn announced(position: u64) -> RecordedEvent {
    RecordedEvent {
        position,
        agreement_id: format!("agreement-{position}"),
        version: 1,
        event_id: [position as u8; 16],
        recorded_at: Timestamp::default(),
        metadata: EventMetadata::default(),
        event: Event::Announced(Announced {
            title: "t".into(),
            kind: AgreementKind::Cooperation,
            buyer: Party::new("Uzbekistan", "UZ"),
            supplier: Party::new("United States", "US"),
            sector: "ai".into(),
            product: "protocol".into(),
            quantity: None,
            value: None,
            announced_at: Timestamp::from_seconds(1_758_585_600),
            venue: String::new(),
            source: String::new(),
        }),
    }
}

/// Sets the stored schema version of the closed read models in `path`.
fn set_schema(path: &std::path::Path, schema: Option<u32>) {
    // No background flusher: dropping `db` releases the directory at once.
    let db = when_unlocked(|| sled::Config::new().path(path).flush_every_ms(None).open());
    let meta = db.open_tree("meta").expect("meta tree");
    match schema {
        Some(schema) => meta.insert("schema", &schema.to_be_bytes()).map(drop),
        None => meta.remove("schema").map(drop),
    }
    .expect("writes");
    db.flush().expect("flushes");
}

fn written(path: &std::path::Path) {
    let models = ReadModels::open(path).expect("opens");
    models
        .apply(&[announced(1), announced(2)])
        .expect("applies");
    models.flush().expect("flushes");
}

/// Runs `open` until the directory's previous handle let go of it: sled
/// finishes writing in its own threads after a database is dropped, and
/// holds the directory's lock until they are done.
fn when_unlocked<T, E: std::fmt::Display>(open: impl Fn() -> Result<T, E>) -> T {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        match open() {
            Ok(opened) => return opened,
            Err(error)
                if error.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(error) => panic!("opens: {error}"),
        }
    }
}

fn reopen(path: &std::path::Path) -> ReadModels {
    when_unlocked(|| ReadModels::open(path))
}

#[test]
fn read_models_of_this_schema_are_kept() {
    let dir = tempfile::tempdir().expect("tempdir");
    written(dir.path());
    let models = reopen(dir.path());
    assert_eq!(models.checkpoint(), 2);
    assert!(models.agreement("agreement-2").expect("reads").is_some());
}

#[test]
fn read_models_of_another_schema_are_dropped_for_a_rebuild_once() {
    for schema in [None, Some(1), Some(99), Some(0)] {
        let dir = tempfile::tempdir().expect("tempdir");
        written(dir.path());
        set_schema(dir.path(), schema);
        let models = reopen(dir.path());
        assert_eq!(models.checkpoint(), 0, "schema {schema:?}");
        assert!(models.agreement("agreement-1").expect("reads").is_none());
        assert!(models.portfolios().expect("reads").is_empty());
        // Rebuilt in this schema, they are kept from then on.
        models.apply(&[announced(1)]).expect("applies");
        models.flush().expect("flushes");
        drop(models);
        let models = reopen(dir.path());
        assert_eq!(models.checkpoint(), 1, "schema {schema:?}");
    }
}
