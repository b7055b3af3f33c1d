//! Domain events to their wire messages.

use accord_domain::{AgreementKind, Event, Money, Party, RecordedEvent};

use super::timestamp_from_domain;
use crate::v1;
use crate::v1::recorded_event::Payload;

/// Returns the wire payload of a domain event.
pub fn event_to_wire(event: &Event) -> Payload {
    match event {
        Event::Announced(announced) => Payload::Announced(v1::Announced {
            title: announced.title.clone(),
            kind: kind_to_wire(announced.kind) as i32,
            buyer: Some(party_to_wire(&announced.buyer)),
            supplier: Some(party_to_wire(&announced.supplier)),
            sector: announced.sector.clone(),
            product: announced.product.clone(),
            quantity: announced.quantity,
            value: announced.value.as_ref().map(money_to_wire),
            announced_at: Some(timestamp_from_domain(announced.announced_at)),
            venue: announced.venue.clone(),
            source: announced.source.clone(),
        }),
        Event::Signed(signed) => Payload::Signed(v1::Signed {
            signed_at: Some(timestamp_from_domain(signed.signed_at)),
            signatories: signed.signatories.clone(),
            value: signed.value.as_ref().map(money_to_wire),
            quantity: signed.quantity,
        }),
        Event::DeliveryRecorded(delivery) => Payload::DeliveryRecorded(v1::DeliveryRecorded {
            units: delivery.units,
            delivered_at: Some(timestamp_from_domain(delivery.delivered_at)),
            reference: delivery.reference.clone(),
        }),
        Event::LocalizationRecorded(localization) => {
            Payload::LocalizationRecorded(v1::LocalizationRecorded {
                localization_rate_bp: localization.localization_rate_bp,
                facility: localization.facility.clone(),
                local_units: localization.local_units,
                technology_transfer: localization.technology_transfer.clone(),
                recorded_at: Some(timestamp_from_domain(localization.recorded_at)),
            })
        }
    }
}

/// Returns the wire form of a recorded event.
pub fn recorded_event_to_wire(recorded: &RecordedEvent) -> v1::RecordedEvent {
    v1::RecordedEvent {
        position: recorded.position,
        agreement_id: recorded.agreement_id.clone(),
        version: recorded.version,
        event_id: format_uuid(&recorded.event_id),
        event_type: recorded.event.event_type().to_owned(),
        recorded_at: Some(timestamp_from_domain(recorded.recorded_at)),
        metadata: Some(v1::EventMetadata {
            command_id: recorded.metadata.command_id.clone(),
            correlation_id: recorded.metadata.correlation_id.clone(),
            causation_id: recorded.metadata.causation_id.clone(),
            actor: recorded.metadata.actor.clone(),
        }),
        payload: Some(event_to_wire(&recorded.event)),
    }
}

fn format_uuid(bytes: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*bytes).hyphenated().to_string()
}

pub(super) fn kind_to_wire(kind: AgreementKind) -> v1::AgreementKind {
    match kind {
        AgreementKind::Procurement => v1::AgreementKind::Procurement,
        AgreementKind::Cooperation => v1::AgreementKind::Cooperation,
        AgreementKind::Investment => v1::AgreementKind::Investment,
    }
}

pub(super) fn party_to_wire(party: &Party) -> v1::Party {
    v1::Party {
        name: party.name.clone(),
        country: party.country.clone(),
    }
}

pub(super) fn money_to_wire(money: &Money) -> v1::Money {
    v1::Money {
        currency: money.currency.clone(),
        minor_units: money.minor_units,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_formatted_8_4_4_4_12() {
        let bytes = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab,
            0xcd, 0xef,
        ];
        assert_eq!(format_uuid(&bytes), "01234567-89ab-cdef-0123-456789abcdef");
    }
}
