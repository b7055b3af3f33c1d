//! Wire requests into domain commands.

use accord_domain::{
    AgreementKind, Announce, Command, ExpectedVersion, Money, Party, RecordDelivery,
    RecordLocalization, Sign, ValidationError,
};

use super::{WireError, required_timestamp};
use crate::v1;

/// Splits a wire command into its meta and the domain command.
pub fn command_from_wire(
    command: v1::Command,
) -> Result<(Option<v1::CommandMeta>, Command), WireError> {
    use v1::command::Command as Wire;
    match command.command {
        Some(Wire::Announce(request)) => {
            let meta = request.meta.clone();
            Ok((meta, Command::Announce(announce_from_wire(request)?)))
        }
        Some(Wire::Sign(request)) => {
            let meta = request.meta.clone();
            Ok((meta, Command::Sign(sign_from_wire(request)?)))
        }
        Some(Wire::RecordDelivery(request)) => {
            let meta = request.meta.clone();
            Ok((meta, Command::RecordDelivery(delivery_from_wire(request)?)))
        }
        Some(Wire::RecordLocalization(request)) => {
            let meta = request.meta.clone();
            Ok((
                meta,
                Command::RecordLocalization(localization_from_wire(request)?),
            ))
        }
        None => Err(ValidationError::new("command", "is required")),
    }
}

/// Returns the domain expectation, or None when the caller gave none.
pub fn expected_version_from_wire(
    expected: Option<&v1::ExpectedVersion>,
) -> Result<Option<ExpectedVersion>, WireError> {
    use v1::expected_version::Kind;
    let Some(expected) = expected else {
        return Ok(None);
    };
    match expected.kind {
        Some(Kind::Any(_)) => Ok(Some(ExpectedVersion::Any)),
        Some(Kind::NoStream(_)) => Ok(Some(ExpectedVersion::NoStream)),
        Some(Kind::StreamExists(_)) => Ok(Some(ExpectedVersion::StreamExists)),
        Some(Kind::Exact(0)) => Err(ValidationError::new(
            "meta.expected_version.exact",
            "versions start at 1; use no_stream for an agreement that must not exist",
        )),
        Some(Kind::Exact(version)) => Ok(Some(ExpectedVersion::Exact(version))),
        None => Err(ValidationError::new(
            "meta.expected_version",
            "must set one of any, no_stream, stream_exists, exact",
        )),
    }
}

fn announce_from_wire(request: v1::AnnounceRequest) -> Result<Announce, WireError> {
    let kind = match v1::AgreementKind::try_from(request.kind) {
        Ok(v1::AgreementKind::Procurement) => AgreementKind::Procurement,
        Ok(v1::AgreementKind::Cooperation) => AgreementKind::Cooperation,
        Ok(v1::AgreementKind::Investment) => AgreementKind::Investment,
        Ok(v1::AgreementKind::Unspecified) => {
            return Err(ValidationError::new("kind", "is required"));
        }
        Err(_) => {
            return Err(ValidationError::new(
                "kind",
                format!("unknown value {}", request.kind),
            ));
        }
    };
    Ok(Announce {
        agreement_id: request.agreement_id,
        title: request.title,
        kind,
        buyer: party_from_wire("buyer", request.buyer)?,
        supplier: party_from_wire("supplier", request.supplier)?,
        sector: request.sector,
        product: request.product,
        quantity: request.quantity,
        value: request.value.map(money_from_wire),
        announced_at: required_timestamp("announced_at", request.announced_at)?,
        venue: request.venue,
        source: request.source,
    })
}

fn sign_from_wire(request: v1::SignRequest) -> Result<Sign, WireError> {
    Ok(Sign {
        agreement_id: request.agreement_id,
        signed_at: required_timestamp("signed_at", request.signed_at)?,
        signatories: request.signatories,
        value: request.value.map(money_from_wire),
        quantity: request.quantity,
    })
}

fn delivery_from_wire(request: v1::RecordDeliveryRequest) -> Result<RecordDelivery, WireError> {
    Ok(RecordDelivery {
        agreement_id: request.agreement_id,
        units: request.units,
        delivered_at: required_timestamp("delivered_at", request.delivered_at)?,
        reference: request.reference,
    })
}

fn localization_from_wire(
    request: v1::RecordLocalizationRequest,
) -> Result<RecordLocalization, WireError> {
    Ok(RecordLocalization {
        agreement_id: request.agreement_id,
        localization_rate_bp: request.localization_rate_bp,
        facility: request.facility,
        local_units: request.local_units,
        technology_transfer: request.technology_transfer,
        recorded_at: required_timestamp("recorded_at", request.recorded_at)?,
    })
}

fn party_from_wire(field: &str, party: Option<v1::Party>) -> Result<Party, WireError> {
    let party = party.ok_or_else(|| ValidationError::new(field, "is required"))?;
    Ok(Party {
        name: party.name,
        country: party.country,
    })
}

pub(super) fn money_from_wire(money: v1::Money) -> Money {
    Money {
        currency: money.currency,
        minor_units: money.minor_units,
    }
}
