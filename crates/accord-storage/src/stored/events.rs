//! Domain events and their metadata to and from a log record's body.

use accord_domain::{
    Announced, DeliveryRecorded, Event, EventMetadata, LocalizationRecorded, Signed,
};

use super::{
    FormatError, kind_from_stored, kind_to_stored, money_from_stored, money_to_stored,
    party_from_stored, party_to_stored, required_timestamp, timestamp_to_stored,
};
use crate::storage::{self, stored_record::Payload};

/// Returns the stored payload of a domain event.
pub fn event_to_stored(event: &Event) -> Payload {
    match event {
        Event::Announced(announced) => Payload::Announced(storage::Announced {
            title: announced.title.clone(),
            kind: kind_to_stored(announced.kind) as i32,
            buyer: Some(party_to_stored(&announced.buyer)),
            supplier: Some(party_to_stored(&announced.supplier)),
            sector: announced.sector.clone(),
            product: announced.product.clone(),
            quantity: announced.quantity,
            value: announced.value.as_ref().map(money_to_stored),
            announced_at: Some(timestamp_to_stored(announced.announced_at)),
            venue: announced.venue.clone(),
            source: announced.source.clone(),
        }),
        Event::Signed(signed) => Payload::Signed(storage::Signed {
            signed_at: Some(timestamp_to_stored(signed.signed_at)),
            signatories: signed.signatories.clone(),
            value: signed.value.as_ref().map(money_to_stored),
            quantity: signed.quantity,
        }),
        Event::DeliveryRecorded(delivery) => Payload::DeliveryRecorded(storage::DeliveryRecorded {
            units: delivery.units,
            delivered_at: Some(timestamp_to_stored(delivery.delivered_at)),
            reference: delivery.reference.clone(),
        }),
        Event::LocalizationRecorded(localization) => {
            Payload::LocalizationRecorded(storage::LocalizationRecorded {
                localization_rate_bp: localization.localization_rate_bp,
                facility: localization.facility.clone(),
                local_units: localization.local_units,
                technology_transfer: localization.technology_transfer.clone(),
                recorded_at: Some(timestamp_to_stored(localization.recorded_at)),
            })
        }
    }
}

/// Returns the domain event of a stored payload.
pub fn event_from_stored(payload: Payload) -> Result<Event, FormatError> {
    Ok(match payload {
        Payload::Announced(announced) => Event::Announced(Announced {
            title: announced.title,
            kind: kind_from_stored(announced.kind)?,
            buyer: party_from_stored(announced.buyer),
            supplier: party_from_stored(announced.supplier),
            sector: announced.sector,
            product: announced.product,
            quantity: announced.quantity,
            value: announced.value.map(money_from_stored),
            announced_at: required_timestamp("announced_at", announced.announced_at)?,
            venue: announced.venue,
            source: announced.source,
        }),
        Payload::Signed(signed) => Event::Signed(Signed {
            signed_at: required_timestamp("signed_at", signed.signed_at)?,
            signatories: signed.signatories,
            value: signed.value.map(money_from_stored),
            quantity: signed.quantity,
        }),
        Payload::DeliveryRecorded(delivery) => Event::DeliveryRecorded(DeliveryRecorded {
            units: delivery.units,
            delivered_at: required_timestamp("delivered_at", delivery.delivered_at)?,
            reference: delivery.reference,
        }),
        Payload::LocalizationRecorded(localization) => {
            Event::LocalizationRecorded(LocalizationRecorded {
                localization_rate_bp: localization.localization_rate_bp,
                facility: localization.facility,
                local_units: localization.local_units,
                technology_transfer: localization.technology_transfer,
                recorded_at: required_timestamp("recorded_at", localization.recorded_at)?,
            })
        }
    })
}

/// Returns the stored metadata of an event.
pub fn metadata_to_stored(metadata: &EventMetadata) -> storage::Metadata {
    storage::Metadata {
        command_id: metadata.command_id.clone(),
        correlation_id: metadata.correlation_id.clone(),
        causation_id: metadata.causation_id.clone(),
        actor: metadata.actor.clone(),
    }
}

/// Returns the domain metadata of stored metadata (empty when none was stored).
pub fn metadata_from_stored(metadata: Option<storage::Metadata>) -> EventMetadata {
    let metadata = metadata.unwrap_or_default();
    EventMetadata {
        command_id: metadata.command_id,
        correlation_id: metadata.correlation_id,
        causation_id: metadata.causation_id,
        actor: metadata.actor,
    }
}
