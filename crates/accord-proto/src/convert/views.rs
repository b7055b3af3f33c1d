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

/// Returns the domain agreement of a wire view (read models are stored as wire views).
pub fn agreement_from_wire(view: v1::Agreement) -> Result<Agreement, super::WireError> {
    use super::events::{kind_from_wire, party_from_wire};
    use super::{commands::money_from_wire, timestamp_to_domain};
    let stage = match v1::AgreementStage::try_from(view.stage) {
        Ok(v1::AgreementStage::Announced) => Stage::Announced,
        Ok(v1::AgreementStage::Signed) => Stage::Signed,
        Ok(v1::AgreementStage::Delivering) => Stage::Delivering,
        Ok(v1::AgreementStage::Delivered) => Stage::Delivered,
        _ => {
            return Err(accord_domain::ValidationError::new(
                "stage",
                format!("unknown value {}", view.stage),
            ));
        }
    };
    Ok(Agreement {
        agreement_id: view.agreement_id,
        title: view.title,
        kind: kind_from_wire(view.kind)?,
        stage,
        buyer: party_from_wire(view.buyer),
        supplier: party_from_wire(view.supplier),
        sector: view.sector,
        product: view.product,
        quantity: view.quantity,
        value: view.value.map(money_from_wire),
        delivered_units: view.delivered_units,
        localized: view.localized,
        localization_rate_bp: view.localization_rate_bp,
        local_units: view.local_units,
        facility: view.facility,
        technology_transfer: view.technology_transfer,
        announced_at: view
            .announced_at
            .as_ref()
            .map(timestamp_to_domain)
            .unwrap_or_default(),
        signed_at: view.signed_at.as_ref().map(timestamp_to_domain),
        last_delivery_at: view.last_delivery_at.as_ref().map(timestamp_to_domain),
        venue: view.venue,
        source: view.source,
        signatories: view.signatories,
        version: view.version,
        position: view.position,
    })
}

/// Returns the domain stage of a wire stage, None for unspecified or unknown values.
pub fn stage_from_wire(stage: i32) -> Option<Stage> {
    match v1::AgreementStage::try_from(stage) {
        Ok(v1::AgreementStage::Announced) => Some(Stage::Announced),
        Ok(v1::AgreementStage::Signed) => Some(Stage::Signed),
        Ok(v1::AgreementStage::Delivering) => Some(Stage::Delivering),
        Ok(v1::AgreementStage::Delivered) => Some(Stage::Delivered),
        _ => None,
    }
}
