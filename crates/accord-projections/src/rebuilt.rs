//! Read models being rebuilt from position 1 in a fresh tree. Folded
//! changes are written in batches on a thread of their own, one batch at a
//! time, while the caller folds the next: sled's inserts and the fold each
//! take about half of a rebuild, and run on both cores this way.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use accord_domain::RecordedEvent;
use accord_store::ClearingMap;

use crate::ProjectionError;
use crate::project::PendingChanges;
use crate::writes::Writes;

/// Agreements a rebuild changes before it writes them. Each carries its
/// view, its portfolio change and up to eight index writes, all held in
/// memory until written: 100,000 made about a million writes and 3.4 GiB
/// of peak memory when they were one sled batch (BENCHMARKS.md).
const REBUILD_PENDING_AGREEMENTS: usize = 2_000;

/// Held by the one rebuild that may run; lets the next one run once dropped.
pub struct RebuildClaim(Arc<AtomicBool>);

impl RebuildClaim {
    pub(crate) fn take(rebuilding: &Arc<AtomicBool>) -> Option<Self> {
        (!rebuilding.swap(true, Ordering::SeqCst)).then(|| Self(rebuilding.clone()))
    }
}

impl Drop for RebuildClaim {
    fn drop(&mut self) {
        self.0.store(false, Ordering::SeqCst);
    }
}

/// Read models being rebuilt from position 1 in a fresh tree.
pub struct Rebuild {
    tree: sled::Tree,
    number: u64,
    /// The position of the last batch handed to the writer.
    checkpoint: u64,
    /// Views as the tree holds them once the batch being written is
    /// written: that batch's views are put here before it is handed over,
    /// so that the fold of the next one never reads them from the tree
    /// before they are there.
    cached: ClearingMap<sled::IVec>,
    pending: Option<PendingChanges>,
    writing: Option<JoinHandle<Result<(), sled::Error>>>,
}

impl Rebuild {
    /// A rebuild into `tree` that keeps at most `cached_view_bytes` of views
    /// in memory.
    pub(crate) fn new(tree: sled::Tree, number: u64, cached_view_bytes: usize) -> Self {
        Self {
            tree,
            number,
            checkpoint: 0,
            cached: ClearingMap::new(cached_view_bytes, crate::stored::view_bytes),
            pending: None,
            writing: None,
        }
    }

    /// The tree the rebuild writes.
    pub(crate) fn tree(&self) -> &sled::Tree {
        &self.tree
    }

    /// The generation number of the rebuilt read models.
    pub(crate) fn number(&self) -> u64 {
        self.number
    }

    /// The position the rebuilt read models have reached (written or pending).
    pub fn position(&self) -> u64 {
        self.pending
            .as_ref()
            .map_or(self.checkpoint, PendingChanges::checkpoint)
    }

    /// Folds consecutive events into the rebuilt read models, handing them
    /// to the writer when many agreements are pending.
    pub fn apply(&mut self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let pending = self
            .pending
            .get_or_insert_with(|| PendingChanges::new(self.checkpoint, self.number));
        // The tree started empty and every view written to it went through
        // the cache: while the cache dropped nothing, a miss is a new view.
        let cached_is_whole = self.cached.dropped_nothing();
        pending.fold(&self.tree, &self.cached, cached_is_whole, events)?;
        if pending.changed_agreements() >= REBUILD_PENDING_AGREEMENTS {
            let batch = self.next_batch()?;
            let tree = self.tree.clone();
            let writer = std::thread::Builder::new()
                .name("rebuild-writer".into())
                .spawn(move || batch.write_in_key_order(&tree))
                .map_err(|error| ProjectionError::Storage(Arc::new(error)))?;
            self.writing = Some(writer);
        }
        Ok(())
    }

    /// Writes everything folded so far, and waits until it is written.
    pub fn write_pending(&mut self) -> Result<(), ProjectionError> {
        let batch = self.next_batch()?;
        batch.write_in_key_order(&self.tree)?;
        Ok(())
    }

    /// Waits for the batch being written (portfolio sums are read from the
    /// tree), then turns what is pending into the next one.
    fn next_batch(&mut self) -> Result<Writes, ProjectionError> {
        self.wait_for_writer()?;
        let Some(pending) = self.pending.take() else {
            return Ok(Writes::default());
        };
        let batch = pending.into_batch(&self.tree)?;
        self.cached.extend(batch.views);
        self.checkpoint = batch.checkpoint;
        Ok(batch.writes)
    }

    fn wait_for_writer(&mut self) -> Result<(), ProjectionError> {
        let Some(writing) = self.writing.take() else {
            return Ok(());
        };
        match writing.join() {
            Ok(written) => Ok(written?),
            Err(_) => Err(ProjectionError::Inconsistent(
                "the rebuild's writer thread panicked".into(),
            )),
        }
    }
}

impl Drop for Rebuild {
    /// A rebuild given up on still finishes the write it started, so that
    /// nothing writes to its tree once the next rebuild drops it.
    fn drop(&mut self) {
        if let Err(error) = self.wait_for_writer() {
            tracing::warn!(%error, "an abandoned rebuild's last write failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use accord_domain::{
        Agreement, AgreementKind, Announced, Event, EventMetadata, Party, PortfolioSums,
        RecordedEvent, Signed, Timestamp,
    };

    use super::{REBUILD_PENDING_AGREEMENTS, Rebuild};
    use crate::keys;
    use crate::stored::{decode_agreement, decode_portfolio};

    /// Every agreement announced, then every one signed: the second round
    /// reads back views written batches before (from the cache, or from the
    /// tree once a small cache has dropped them).
    fn log(agreements: usize) -> Vec<RecordedEvent> {
        let mut log = Vec::new();
        for version in [1, 2] {
            for agreement in 0..agreements {
                let event = if version == 1 {
                    Event::Announced(Announced {
                        title: "t".into(),
                        kind: AgreementKind::Procurement,
                        buyer: Party::new("KTZ", if agreement % 2 == 0 { "KZ" } else { "UZ" }),
                        supplier: Party::new("Wabtec", "US"),
                        sector: "rail".into(),
                        product: "locomotives".into(),
                        quantity: Some(3),
                        value: None,
                        announced_at: Timestamp::from_seconds(1),
                        venue: String::new(),
                        source: String::new(),
                    })
                } else {
                    Event::Signed(Signed {
                        signed_at: Timestamp::from_seconds(2),
                        signatories: vec!["KTZ".into()],
                        value: None,
                        quantity: Some(agreement as u64),
                    })
                };
                log.push(RecordedEvent {
                    position: log.len() as u64 + 1,
                    agreement_id: format!("agreement-{agreement:05}"),
                    version,
                    event_id: [0; 16],
                    recorded_at: Timestamp::default(),
                    metadata: EventMetadata::default(),
                    event,
                });
            }
        }
        log
    }

    #[test]
    fn a_rebuild_written_while_it_folds_equals_a_fresh_fold() {
        let agreements = REBUILD_PENDING_AGREEMENTS * 3 + 17;
        let log = log(agreements);
        let mut expected: std::collections::BTreeMap<String, Agreement> = Default::default();
        for event in &log {
            let next = Agreement::fold(expected.remove(&event.agreement_id), event).expect("folds");
            expected.insert(event.agreement_id.clone(), next);
        }
        // A cache that holds everything (no view read from the tree), and
        // one that drops what it holds several times during the rebuild.
        for cached_views in [1 << 30, 100_000] {
            let db = sled::Config::new().temporary(true).open().expect("opens");
            let tree = db.open_tree("rebuilt").expect("tree");
            let mut rebuild = Rebuild::new(tree.clone(), 2, cached_views);
            for events in log.chunks(999) {
                rebuild.apply(events).expect("applies");
            }
            rebuild.write_pending().expect("writes");
            assert_eq!(
                rebuild.cached.dropped_nothing(),
                cached_views == 1 << 30,
                "the small budget drops views, the large one none"
            );
            assert_eq!(rebuild.position(), log.len() as u64);
            assert_eq!(
                crate::read_models::read_checkpoint(&tree).expect("reads"),
                log.len() as u64
            );
            let mut portfolios: std::collections::BTreeMap<String, PortfolioSums> =
                Default::default();
            for (id, agreement) in &expected {
                let stored = tree
                    .get(keys::agreement_key(id))
                    .expect("reads")
                    .map(|bytes| decode_agreement(&bytes).expect("decodes"));
                assert_eq!(stored.as_ref(), Some(agreement), "{id} with {cached_views}");
                portfolios
                    .entry(agreement.buyer.country.clone())
                    .or_insert_with(|| PortfolioSums::new(&agreement.buyer.country))
                    .add(agreement);
            }
            for (country, sums) in portfolios {
                let stored = tree
                    .get(keys::portfolio_key(&country))
                    .expect("reads")
                    .map(|bytes| decode_portfolio(&bytes).expect("decodes"));
                assert_eq!(stored, Some(sums), "{country} with {cached_views}");
            }
        }
    }
}
