//! Folds log events into pending read-model changes, and turns them into one
//! atomic batch of writes, checkpoint included. While the projector is
//! behind, many log batches are folded before one commit, so that each view
//! is written once for all of its events.

use std::collections::HashMap;

use accord_domain::{Agreement, PortfolioSums, RecordedEvent};
use accord_store::ClearingMap;

use crate::ProjectionError;
use crate::keys::{self, Index};
use crate::positions::PositionChanges;
use crate::postings::PostingChanges;
use crate::stored::{decode_agreement, decode_portfolio, encode_agreement, encode_portfolio};
use crate::writes::Writes;

/// Changes folded from the log but not yet written: what
/// [`crate::ReadModels::fold`] collects and [`crate::ReadModels::commit`]
/// writes.
pub struct PendingChanges {
    checkpoint: u64,
    /// The id of the event at `checkpoint`, once one was folded.
    checkpoint_event_id: Option<[u8; 16]>,
    generation: u64,
    before: HashMap<String, Option<Agreement>>,
    after: HashMap<String, Agreement>,
    order: Vec<String>,
    /// The positions folded, for the position index.
    positions: PositionChanges,
}

/// The writes of one commit.
pub(crate) struct ProjectedBatch {
    /// Everything to write, checkpoint included.
    pub(crate) writes: Writes,
    /// The position the batch brings the read models to.
    pub(crate) checkpoint: u64,
    /// Each changed agreement's stored view after the batch (shared with
    /// the batch's writes), for the caches of views.
    pub(crate) views: Vec<(String, sled::IVec)>,
}

impl PendingChanges {
    /// Starts from the read models of `generation` at `checkpoint`.
    pub(crate) fn new(checkpoint: u64, generation: u64) -> Self {
        Self {
            checkpoint,
            checkpoint_event_id: None,
            generation,
            before: HashMap::new(),
            after: HashMap::new(),
            order: Vec::new(),
            positions: PositionChanges::default(),
        }
    }

    /// The generation of read models the changes apply to.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The position the changes reach.
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// Agreements changed so far.
    pub fn changed_agreements(&self) -> usize {
        self.order.len()
    }

    /// Folds `events` (increasing positions after the checkpoint; gaps are
    /// quarantined positions, checked by `crate::gaps` against the log) in.
    /// Events at or before the checkpoint are skipped, so folding a batch
    /// twice changes nothing. `cached` holds views equal to the tree's;
    /// with `cached_is_whole` it holds every view the tree has, and a view
    /// it misses is not read from the tree (a rebuild's fresh tree, whose
    /// writer would hold up the read).
    pub(crate) fn fold(
        &mut self,
        tree: &sled::Tree,
        cached: &ClearingMap<sled::IVec>,
        cached_is_whole: bool,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        for event in events {
            if event.position <= self.checkpoint {
                continue;
            }

            if let Some(agreement) = self.after.get_mut(&event.agreement_id) {
                check_version(agreement.version, event)?;
                agreement.apply(&event.event);
                agreement.version = event.version;
                agreement.position = event.position;
                self.positions.add(
                    event.position,
                    event.event.event_type(),
                    &agreement.buyer.country,
                );
            } else {
                let stored = match cached.get(&event.agreement_id) {
                    Some(view) => Some(decode_agreement(view)?),
                    None if cached_is_whole => None,
                    None => load_agreement(tree, &event.agreement_id)?,
                };
                check_version(
                    stored.as_ref().map_or(0, |agreement| agreement.version),
                    event,
                )?;
                let next = Agreement::fold(stored.clone(), event).ok_or_else(|| {
                    ProjectionError::Inconsistent(format!(
                        "position {}: {} before the announcement of {}",
                        event.position,
                        event.event.event_type(),
                        event.agreement_id
                    ))
                })?;
                self.positions.add(
                    event.position,
                    event.event.event_type(),
                    &next.buyer.country,
                );
                self.before.insert(event.agreement_id.clone(), stored);
                self.order.push(event.agreement_id.clone());
                self.after.insert(event.agreement_id.clone(), next);
            }
            self.checkpoint = event.position;
            self.checkpoint_event_id = Some(event.event_id);
        }
        Ok(())
    }

    /// Returns the writes that bring `tree` to the pending state.
    pub(crate) fn into_batch(
        mut self,
        tree: &sled::Tree,
    ) -> Result<ProjectedBatch, ProjectionError> {
        let mut writes = Writes::default();
        let mut postings = PostingChanges::default();
        let mut portfolios: HashMap<String, PortfolioSums> = HashMap::new();
        let mut views = Vec::with_capacity(self.order.len());
        for agreement_id in self.order {
            let Some(agreement) = self.after.remove(&agreement_id) else {
                continue;
            };
            let previous = self.before.remove(&agreement_id).flatten();
            let country = agreement.buyer.country.clone();
            if !portfolios.contains_key(&country) {
                portfolios.insert(country.clone(), load_portfolio(tree, &country)?);
            }
            let sums = portfolios.get_mut(&country).expect("inserted above");
            // Index entries: added with the view, moved when the value changes.
            for index in Index::ALL {
                let list = index.prefix(&index.value_of(&agreement));
                let old = previous
                    .as_ref()
                    .map(|previous| index.prefix(&index.value_of(previous)));
                if old.as_ref() != Some(&list) {
                    if let Some(old) = old {
                        postings.remove(old, &agreement_id);
                    }
                    postings.add(list, &agreement_id);
                }
            }
            if let Some(previous) = &previous {
                sums.remove(previous);
            }
            sums.add(&agreement);
            let view = sled::IVec::from(encode_agreement(&agreement));
            writes.insert(keys::agreement_key(&agreement_id), view.clone());
            views.push((agreement_id, view));
        }
        postings.write(tree, &mut writes)?;
        self.positions.write(tree, &mut writes)?;
        for (country, sums) in portfolios {
            writes.insert(
                keys::portfolio_key(&country),
                encode_portfolio(&sums).into(),
            );
        }
        writes.insert(
            keys::CHECKPOINT.to_vec(),
            self.checkpoint.to_be_bytes().as_slice().into(),
        );
        if let Some(event_id) = self.checkpoint_event_id {
            writes.insert(keys::CHECKPOINT_EVENT.to_vec(), event_id.as_slice().into());
        }
        Ok(ProjectedBatch {
            writes,
            checkpoint: self.checkpoint,
            views,
        })
    }
}

fn check_version(current_version: u64, event: &RecordedEvent) -> Result<(), ProjectionError> {
    if event.version == current_version + 1 {
        return Ok(());
    }
    Err(ProjectionError::Inconsistent(format!(
        "agreement {} at version {current_version} cannot take event version {} (position {})",
        event.agreement_id, event.version, event.position
    )))
}

fn load_agreement(
    tree: &sled::Tree,
    agreement_id: &str,
) -> Result<Option<Agreement>, ProjectionError> {
    tree.get(keys::agreement_key(agreement_id))?
        .map(|bytes| decode_agreement(&bytes))
        .transpose()
}

fn load_portfolio(tree: &sled::Tree, country: &str) -> Result<PortfolioSums, ProjectionError> {
    Ok(tree
        .get(keys::portfolio_key(country))?
        .map(|bytes| decode_portfolio(&bytes))
        .transpose()?
        .unwrap_or_else(|| PortfolioSums::new(country)))
}
