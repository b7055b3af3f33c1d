//! How read models are stored: an agreement view as the protobuf
//! `accord.v1.Agreement`, a country's portfolio sums as JSON.

use accord_domain::Agreement;
use accord_proto::v1;
use prost::Message;

use crate::{PortfolioSums, ProjectionError};

/// The stored bytes of an agreement view.
pub(crate) fn encode_agreement(agreement: &Agreement) -> Vec<u8> {
    accord_proto::agreement_to_wire(agreement).encode_to_vec()
}

/// The agreement view stored as `bytes`.
pub(crate) fn decode_agreement(bytes: &[u8]) -> Result<Agreement, ProjectionError> {
    let view = v1::Agreement::decode(bytes).map_err(|error| {
        ProjectionError::Inconsistent(format!("undecodable agreement view: {error}"))
    })?;
    accord_proto::agreement_from_wire(view)
        .map_err(|error| ProjectionError::Inconsistent(format!("agreement view: {error}")))
}

/// The stored bytes of a country's portfolio sums.
pub(crate) fn encode_portfolio(sums: &PortfolioSums) -> Result<Vec<u8>, ProjectionError> {
    serde_json::to_vec(sums).map_err(|error| ProjectionError::Inconsistent(error.to_string()))
}

/// The portfolio sums stored as `bytes`.
pub(crate) fn decode_portfolio(bytes: &[u8]) -> Result<PortfolioSums, ProjectionError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ProjectionError::Inconsistent(format!("undecodable portfolio: {error}")))
}
