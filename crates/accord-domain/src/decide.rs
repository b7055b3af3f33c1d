//! The lifecycle rules: given the agreement's state, is the command allowed,
//! and which event records it.

use crate::{
    Agreement, Announced, Command, DeliveryRecorded, DomainError, Event, LocalizationRecorded,
    Signed, Stage, ValidCommand, limits,
};

/// Decides the event a valid command produces, or why it is refused.
///
/// `state` is the agreement as its events have shaped it (None if it does not
/// exist). The command's field limits were checked when it became a
/// [`ValidCommand`].
pub fn decide(state: Option<&Agreement>, command: &ValidCommand) -> Result<Event, DomainError> {
    let command = command.command();
    let agreement_id = command.agreement_id();
    let Some(agreement) = state else {
        return match command {
            Command::Announce(announce) => Ok(Event::Announced(Announced {
                title: announce.title.clone(),
                kind: announce.kind,
                buyer: announce.buyer.clone(),
                supplier: announce.supplier.clone(),
                sector: announce.sector.clone(),
                product: announce.product.clone(),
                quantity: announce.quantity,
                value: announce.value.clone(),
                announced_at: announce.announced_at,
                venue: announce.venue.clone(),
                source: announce.source.clone(),
            })),
            _ => Err(DomainError::NotFound {
                agreement_id: agreement_id.to_owned(),
            }),
        };
    };
    let refuse = |rule: String| DomainError::LifecycleViolation {
        agreement_id: agreement_id.to_owned(),
        stage: agreement.stage,
        rule,
    };

    match command {
        Command::Announce(_) => Err(DomainError::AlreadyExists {
            agreement_id: agreement_id.to_owned(),
        }),
        Command::Sign(sign) => {
            if agreement.stage != Stage::Announced {
                return Err(refuse(
                    "an agreement can be signed only once, from AGREEMENT_STAGE_ANNOUNCED".into(),
                ));
            }
            Ok(Event::Signed(Signed {
                signed_at: sign.signed_at,
                signatories: sign.signatories.clone(),
                value: sign.value.clone(),
                quantity: sign.quantity,
            }))
        }
        Command::RecordDelivery(delivery) => {
            if !matches!(agreement.stage, Stage::Signed | Stage::Delivering) {
                return Err(refuse(
                    "deliveries can be recorded only when AGREEMENT_STAGE_SIGNED or AGREEMENT_STAGE_DELIVERING".into(),
                ));
            }
            let Some(remaining) = agreement.remaining_units() else {
                return Err(refuse(
                    "deliveries need a contracted quantity, and none was given".into(),
                ));
            };
            if delivery.units > remaining {
                return Err(refuse(format!(
                    "delivered units may not exceed the contracted quantity: {} of {} delivered, {} more requested",
                    agreement.delivered_units,
                    agreement.quantity.unwrap_or_default(),
                    delivery.units
                )));
            }
            Ok(Event::DeliveryRecorded(DeliveryRecorded {
                units: delivery.units,
                delivered_at: delivery.delivered_at,
                reference: delivery.reference.clone(),
            }))
        }
        Command::RecordLocalization(localization) => {
            if !agreement.stage.is_signed() {
                return Err(refuse(
                    "localization can be recorded only once the agreement is signed".into(),
                ));
            }
            if let Some(quantity) = agreement.quantity
                && localization.local_units > quantity
            {
                return Err(refuse(format!(
                    "local units may not exceed the contracted quantity: {} requested, {} contracted",
                    localization.local_units, quantity
                )));
            }
            // Each technology once, in the order given.
            let mut technology_transfer: Vec<String> = Vec::new();
            for technology in &localization.technology_transfer {
                if !technology_transfer.contains(technology) {
                    technology_transfer.push(technology.clone());
                }
            }
            let new = technology_transfer
                .iter()
                .filter(|technology| !agreement.technology_transfer.contains(technology))
                .count();
            if agreement.technology_transfer.len() + new
                > limits::TECHNOLOGY_TRANSFERS_PER_AGREEMENT
            {
                return Err(refuse(format!(
                    "an agreement lists at most {} technology transfers: it lists {} and this adds {new}",
                    limits::TECHNOLOGY_TRANSFERS_PER_AGREEMENT,
                    agreement.technology_transfer.len()
                )));
            }
            Ok(Event::LocalizationRecorded(LocalizationRecorded {
                localization_rate_bp: localization.localization_rate_bp,
                facility: localization.facility.clone(),
                local_units: localization.local_units,
                technology_transfer,
                recorded_at: localization.recorded_at,
            }))
        }
    }
}

#[cfg(test)]
mod tests;
