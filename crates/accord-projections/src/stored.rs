//! How read models are stored: agreement views and country portfolio sums
//! as `accord.storage.v1` messages, apart from the wire API.
//!
//! The read models carry one schema version for the whole database
//! ([`READ_MODEL_SCHEMA`], kept in the meta tree). Read models of another
//! version are not upcast value by value: they are derived data, so
//! [`crate::ReadModels::open`] drops them and the projector rebuilds them
//! from the log.

use accord_domain::{Agreement, PortfolioSums};
use accord_storage::{storage, stored};
use prost::Message;

use crate::ProjectionError;

/// The schema of the read models written today. 1: views as
/// `accord.v1.Agreement`, portfolio sums as JSON (Accord 0.1). 2: both as
/// `accord.storage.v1` messages. 3: indexes by supplier country, sector
/// and stage beside the buyer index. 4: the indexes as posting pages
/// (`crate::postings`) instead of one key per agreement and value. 5: the
/// log's positions by event type and buyer country (`crate::positions`).
pub(crate) const READ_MODEL_SCHEMA: u32 = 5;

/// The schema of read models that predate the version key.
pub(crate) const UNVERSIONED_SCHEMA: u32 = 1;

/// The stored bytes of an agreement view.
pub(crate) fn encode_agreement(agreement: &Agreement) -> Vec<u8> {
    stored::agreement_to_stored(agreement).encode_to_vec()
}

/// The agreement view stored as `bytes`.
pub(crate) fn decode_agreement(bytes: &[u8]) -> Result<Agreement, ProjectionError> {
    let view = storage::AgreementView::decode(bytes).map_err(|error| {
        ProjectionError::Inconsistent(format!("undecodable agreement view: {error}"))
    })?;
    stored::agreement_from_stored(view)
        .map_err(|error| ProjectionError::Inconsistent(format!("agreement view: {error}")))
}

/// The stored bytes of a country's portfolio sums.
pub(crate) fn encode_portfolio(sums: &PortfolioSums) -> Vec<u8> {
    stored::portfolio_to_stored(sums).encode_to_vec()
}

/// The portfolio sums stored as `bytes`.
pub(crate) fn decode_portfolio(bytes: &[u8]) -> Result<PortfolioSums, ProjectionError> {
    let sums = storage::PortfolioSums::decode(bytes).map_err(|error| {
        ProjectionError::Inconsistent(format!("undecodable portfolio: {error}"))
    })?;
    stored::portfolio_from_stored(sums)
        .map_err(|error| ProjectionError::Inconsistent(format!("portfolio: {error}")))
}

/// The heap bytes of a stored view held in a cache.
pub(crate) fn view_bytes(view: &sled::IVec) -> usize {
    view.len()
}
