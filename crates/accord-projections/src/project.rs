//! Turns a batch of log events into one atomic batch of read-model writes,
//! checkpoint included.

use std::collections::HashMap;

use accord_domain::{Agreement, RecordedEvent};
use prost::Message;

use crate::keys;
use crate::read_models::{decode_agreement, decode_portfolio, read_checkpoint};
use crate::{PortfolioSums, ProjectionError};

/// The writes of one projected batch.
pub struct ProjectedBatch {
    /// Everything to write, checkpoint included.
    pub writes: sled::Batch,
    /// The position the batch brings the read models to.
    pub checkpoint: u64,
    /// Each changed agreement's view after the batch, with the position of its last event.
    pub changed: Vec<Agreement>,
}

/// Folds `events` (consecutive positions after the tree's checkpoint) into
/// the read models of `tree`. Events at or before the checkpoint are skipped,
/// so a batch applied twice changes nothing.
pub fn project_batch(
    tree: &sled::Tree,
    events: &[RecordedEvent],
) -> Result<ProjectedBatch, ProjectionError> {
    let mut checkpoint = read_checkpoint(tree)?;
    let mut before: HashMap<String, Option<Agreement>> = HashMap::new();
    let mut after: HashMap<String, Agreement> = HashMap::new();
    let mut order: Vec<String> = Vec::new();
    for event in events {
        if event.position <= checkpoint {
            continue;
        }
        if event.position != checkpoint + 1 {
            return Err(ProjectionError::Inconsistent(format!(
                "expected position {} next, got {}",
                checkpoint + 1,
                event.position
            )));
        }
        checkpoint = event.position;
        let current = match after.remove(&event.agreement_id) {
            Some(agreement) => Some(agreement),
            None => {
                let stored = load_agreement(tree, &event.agreement_id)?;
                before.insert(event.agreement_id.clone(), stored.clone());
                order.push(event.agreement_id.clone());
                stored
            }
        };
        let current_version = current.as_ref().map_or(0, |agreement| agreement.version);
        if event.version != current_version + 1 {
            return Err(ProjectionError::Inconsistent(format!(
                "agreement {} at version {current_version} cannot take event version {} (position {})",
                event.agreement_id, event.version, event.position
            )));
        }
        let next = Agreement::fold(current, event).ok_or_else(|| {
            ProjectionError::Inconsistent(format!(
                "position {}: {} before the announcement of {}",
                event.position,
                event.event.event_type(),
                event.agreement_id
            ))
        })?;
        after.insert(event.agreement_id.clone(), next);
    }

    let mut writes = sled::Batch::default();
    let mut portfolios: HashMap<String, PortfolioSums> = HashMap::new();
    let mut changed = Vec::with_capacity(order.len());
    for agreement_id in order {
        let Some(agreement) = after.remove(&agreement_id) else {
            continue;
        };
        let previous = before.remove(&agreement_id).flatten();
        let country = agreement.buyer.country.clone();
        if !portfolios.contains_key(&country) {
            portfolios.insert(country.clone(), load_portfolio(tree, &country)?);
        }
        let sums = portfolios.get_mut(&country).expect("inserted above");
        match &previous {
            Some(previous) => sums.remove(previous),
            None => writes.insert(keys::buyer_key(&country, &agreement_id), &[] as &[u8]),
        }
        sums.add(&agreement);
        writes.insert(
            keys::agreement_key(&agreement_id),
            accord_proto::agreement_to_wire(&agreement).encode_to_vec(),
        );
        changed.push(agreement);
    }
    for (country, sums) in portfolios {
        let encoded = serde_json::to_vec(&sums)
            .map_err(|error| ProjectionError::Inconsistent(error.to_string()))?;
        writes.insert(keys::portfolio_key(&country), encoded);
    }
    writes.insert(keys::CHECKPOINT, &checkpoint.to_be_bytes());
    Ok(ProjectedBatch {
        writes,
        checkpoint,
        changed,
    })
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
