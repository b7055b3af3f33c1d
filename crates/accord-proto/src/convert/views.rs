//! Read models to their wire messages.

use accord_domain::{Agreement, Stage};

use super::events::{kind_to_wire, money_to_wire, party_to_wire};
use super::timestamp_from_domain;
use crate::v1;

/// Returns the wire stage of a domain stage.
pub fn stage_to_wire(stage: Stage) -> v1::AgreementStage {
    match stage {
        Stage::Announced => v1::AgreementStage::Announced,
        Stage::Signed => v1::AgreementStage::Signed,
        Stage::Delivering => v1::AgreementStage::Delivering,
        Stage::Delivered => v1::AgreementStage::Delivered,
    }
}

/// Returns the wire view of an agreement.
pub fn agreement_to_wire(agreement: &Agreement) -> v1::Agreement {
    v1::Agreement {
        agreement_id: agreement.agreement_id.clone(),
        title: agreement.title.clone(),
        kind: kind_to_wire(agreement.kind) as i32,
        stage: stage_to_wire(agreement.stage) as i32,
        buyer: Some(party_to_wire(&agreement.buyer)),
        supplier: Some(party_to_wire(&agreement.supplier)),
        sector: agreement.sector.clone(),
        product: agreement.product.clone(),
        quantity: agreement.quantity,
        value: agreement.value.as_ref().map(money_to_wire),
        delivered_units: agreement.delivered_units,
        localized: agreement.localized,
        localization_rate_bp: agreement.localization_rate_bp,
        local_units: agreement.local_units,
        facility: agreement.facility.clone(),
        technology_transfer: agreement.technology_transfer.clone(),
        announced_at: Some(timestamp_from_domain(agreement.announced_at)),
        signed_at: agreement.signed_at.map(timestamp_from_domain),
        last_delivery_at: agreement.last_delivery_at.map(timestamp_from_domain),
        version: agreement.version,
        position: agreement.position,
        venue: agreement.venue.clone(),
        source: agreement.source.clone(),
        signatories: agreement.signatories.clone(),
    }
}
