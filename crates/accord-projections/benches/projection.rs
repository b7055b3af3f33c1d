//! Projection throughput: builds a sled log of EVENTS events (default one
//! million) over AGREEMENTS agreements, then projects it from position 1 into
//! fresh read models with the real projector, as a rebuild does, and reports
//! events per second.
//!
//! `cargo bench -p accord-projections --bench projection` (EVENTS=... to change the size)

use std::sync::Arc;
use std::time::Instant;

use accord_domain::{
    AgreementKind, Announced, DeliveryRecorded, Event, EventMetadata, ExpectedVersion,
    LocalizationRecorded, Money, Party, Signed, Timestamp,
};
use accord_projections::{Projector, ReadModels};
use accord_store::{AppendItem, CheckpointKeys, EventLog, SledLog, SledOptions};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(default)
}

fn event_for(agreement: usize, version: u64) -> Event {
    let at = Timestamp::from_seconds(1_758_585_600);
    match version {
        1 => Event::Announced(Announced {
            title: format!("agreement {agreement}"),
            kind: AgreementKind::Procurement,
            buyer: Party::new("buyer", ["UZ", "KZ", "TR", "US"][agreement % 4]),
            supplier: Party::new("supplier", "US"),
            sector: "rail".into(),
            product: "freight locomotive".into(),
            quantity: Some(1_000_000),
            value: Some(Money::new("USD", 420_000_000_000)),
            announced_at: at,
            venue: "bench".into(),
            source: "bench".into(),
        }),
        2 => Event::Signed(Signed {
            signed_at: at,
            signatories: vec!["a".into(), "b".into()],
            value: None,
            quantity: None,
        }),
        version if version % 10 == 0 => Event::LocalizationRecorded(LocalizationRecorded {
            localization_rate_bp: (version % 10_000) as u32,
            facility: "plant".into(),
            local_units: 1,
            technology_transfer: vec!["training".into()],
            recorded_at: at,
        }),
        _ => Event::DeliveryRecorded(DeliveryRecorded {
            units: 1,
            delivered_at: at,
            reference: "bench".into(),
        }),
    }
}

fn main() {
    let events = env_usize("EVENTS", 1_000_000);
    let agreements = env_usize("AGREEMENTS", 10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let cache_mib = env_usize("CACHE_MIB", 1_024) as u64;
    let options = SledOptions {
        cache_capacity_bytes: cache_mib * 1024 * 1024,
        ..SledOptions::new(
            dir.path().join("log"),
            CheckpointKeys::ephemeral().expect("a key"),
        )
    };
    let log = Arc::new(SledLog::open(options).expect("log"));

    let started = Instant::now();
    runtime.block_on(async {
        let mut versions = vec![0u64; agreements];
        let mut written = 0;
        while written < events {
            let mut items = Vec::with_capacity(1_000);
            while items.len() < 1_000 && written < events {
                let agreement = written % agreements;
                versions[agreement] += 1;
                let version = versions[agreement];
                items.push(AppendItem {
                    agreement_id: format!("agreement-{agreement:06}"),
                    expected: ExpectedVersion::Any,
                    command_id: format!("c{written}"),
                    fingerprint: [0; 16],
                    metadata: EventMetadata {
                        command_id: format!("c{written}"),
                        ..EventMetadata::default()
                    },
                    event: event_for(agreement, version),
                });
                written += 1;
            }
            log.append(items).await.expect("append");
        }
    });
    println!(
        "wrote {events} events over {agreements} agreements in {:.1?}",
        started.elapsed()
    );

    let started = Instant::now();
    let scanned = runtime.block_on(scan(|next| {
        let log = Arc::clone(&log);
        async move {
            let batch = log.read_raw(next, 16_384).await.expect("read");
            (batch.len(), batch.last().map(|record| record.position))
        }
    }));
    let elapsed = started.elapsed();
    println!(
        "read {scanned} raw records in {:.2?}: {:.0} records/s",
        elapsed,
        scanned as f64 / elapsed.as_secs_f64()
    );

    let started = Instant::now();
    let scanned = runtime.block_on(scan(|next| {
        let log = Arc::clone(&log);
        async move {
            let batch = log.read_log(next, 16_384).await.expect("read");
            (batch.len(), batch.last().map(|event| event.position))
        }
    }));
    let elapsed = started.elapsed();
    println!(
        "read and decoded {scanned} events in {:.2?}: {:.0} events/s",
        elapsed,
        scanned as f64 / elapsed.as_secs_f64()
    );

    let read_models =
        Arc::new(ReadModels::open(&dir.path().join("read-models")).expect("read models"));
    let started = Instant::now();
    runtime.block_on(async {
        let log: Arc<dyn EventLog> = log.clone();
        let projector = Projector::spawn(log, read_models.clone());
        let mut checkpoint = read_models.watch_checkpoint();
        checkpoint
            .wait_for(|checkpoint| *checkpoint >= events as u64)
            .await
            .expect("projector runs");
        projector.stop().await;
    });
    let elapsed = started.elapsed();
    assert_eq!(read_models.checkpoint(), events as u64);
    println!(
        "projected {events} events in {:.2?}: {:.0} events/s",
        elapsed,
        events as f64 / elapsed.as_secs_f64()
    );
    runtime.block_on(log.close()).expect("close");
}

/// Reads the whole log in batches: `read(next)` returns how many it read
/// and the last position; returns the total.
async fn scan<F: std::future::Future<Output = (usize, Option<u64>)>>(
    read: impl Fn(u64) -> F,
) -> usize {
    let mut next = 1;
    let mut scanned = 0;
    while let (count, Some(last)) = read(next).await {
        next = last + 1;
        scanned += count;
    }
    scanned
}
