//! An agreement view to and from its stored form.

use accord_domain::Agreement;

use super::{
    FormatError, kind_from_stored, kind_to_stored, money_from_stored, money_to_stored,
    party_from_stored, party_to_stored, required_timestamp, stage_from_stored, stage_to_stored,
    timestamp_from_stored, timestamp_to_stored,
};
use crate::storage;

/// Returns the stored form of an agreement view.
pub fn agreement_to_stored(agreement: &Agreement) -> storage::AgreementView {
    storage::AgreementView {
        agreement_id: agreement.agreement_id.clone(),
        title: agreement.title.clone(),
        kind: kind_to_stored(agreement.kind) as i32,
        stage: stage_to_stored(agreement.stage) as i32,
        buyer: Some(party_to_stored(&agreement.buyer)),
        supplier: Some(party_to_stored(&agreement.supplier)),
        sector: agreement.sector.clone(),
        product: agreement.product.clone(),
        quantity: agreement.quantity,
        value: agreement.value.as_ref().map(money_to_stored),
        delivered_units: agreement.delivered_units,
        localized: agreement.localized,
        localization_rate_bp: agreement.localization_rate_bp,
        local_units: agreement.local_units,
        facility: agreement.facility.clone(),
        technology_transfer: agreement.technology_transfer.clone(),
        announced_at: Some(timestamp_to_stored(agreement.announced_at)),
        signed_at: agreement.signed_at.map(timestamp_to_stored),
        last_delivery_at: agreement.last_delivery_at.map(timestamp_to_stored),
        version: agreement.version,
        position: agreement.position,
        venue: agreement.venue.clone(),
        source: agreement.source.clone(),
        signatories: agreement.signatories.clone(),
    }
}

/// Returns the agreement of a stored view.
pub fn agreement_from_stored(view: storage::AgreementView) -> Result<Agreement, FormatError> {
    Ok(Agreement {
        agreement_id: view.agreement_id,
        title: view.title,
        kind: kind_from_stored(view.kind)?,
        stage: stage_from_stored(view.stage)?,
        buyer: party_from_stored(view.buyer),
        supplier: party_from_stored(view.supplier),
        sector: view.sector,
        product: view.product,
        quantity: view.quantity,
        value: view.value.map(money_from_stored),
        delivered_units: view.delivered_units,
        localized: view.localized,
        localization_rate_bp: view.localization_rate_bp,
        local_units: view.local_units,
        facility: view.facility,
        technology_transfer: view.technology_transfer,
        announced_at: required_timestamp("announced_at", view.announced_at)?,
        signed_at: view.signed_at.as_ref().map(timestamp_from_stored),
        last_delivery_at: view.last_delivery_at.as_ref().map(timestamp_from_stored),
        venue: view.venue,
        source: view.source,
        signatories: view.signatories,
        version: view.version,
        position: view.position,
    })
}
