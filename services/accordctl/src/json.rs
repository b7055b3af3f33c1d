//! Events and checkpoints as `accordctl export` writes them and `import`
//! reads them back (a file format kept as it is, so that old exports keep
//! importing). What accordctl prints for machines is `crate::canonical`.

use accord_proto::v1::{self, recorded_event::Payload};
use serde_json::{Value, json};

/// Returns the event as a JSON object.
pub(crate) fn event(event: &v1::RecordedEvent) -> Value {
    let metadata = event.metadata.clone().unwrap_or_default();
    let mut value = json!({
        "position": event.position,
        "agreement_id": event.agreement_id,
        "version": event.version,
        "event_id": event.event_id,
        "event_type": event.event_type,
        "recorded_at": timestamp(event.recorded_at.as_ref()),
        "metadata": {
            "command_id": metadata.command_id,
            "correlation_id": metadata.correlation_id,
            "causation_id": metadata.causation_id,
            "actor": metadata.actor,
        },
    });
    let (name, payload) = match &event.payload {
        Some(Payload::Announced(announced)) => (
            "announced",
            json!({
                "title": announced.title,
                "kind": v1::AgreementKind::try_from(announced.kind).map(|kind| kind.as_str_name()).unwrap_or("AGREEMENT_KIND_UNSPECIFIED"),
                "buyer": party(announced.buyer.as_ref()),
                "supplier": party(announced.supplier.as_ref()),
                "sector": announced.sector,
                "product": announced.product,
                "quantity": announced.quantity,
                "value": money(announced.value.as_ref()),
                "announced_at": timestamp(announced.announced_at.as_ref()),
                "venue": announced.venue,
                "source": announced.source,
            }),
        ),
        Some(Payload::Signed(signed)) => (
            "signed",
            json!({
                "signed_at": timestamp(signed.signed_at.as_ref()),
                "signatories": signed.signatories,
                "value": money(signed.value.as_ref()),
                "quantity": signed.quantity,
            }),
        ),
        Some(Payload::DeliveryRecorded(delivery)) => (
            "delivery_recorded",
            json!({
                "units": delivery.units,
                "delivered_at": timestamp(delivery.delivered_at.as_ref()),
                "reference": delivery.reference,
            }),
        ),
        Some(Payload::LocalizationRecorded(localization)) => (
            "localization_recorded",
            json!({
                "localization_rate_bp": localization.localization_rate_bp,
                "facility": localization.facility,
                "local_units": localization.local_units,
                "technology_transfer": localization.technology_transfer,
                "recorded_at": timestamp(localization.recorded_at.as_ref()),
            }),
        ),
        None => ("payload", Value::Null),
    };
    value[name] = payload;
    value
}

fn party(party: Option<&v1::Party>) -> Value {
    party.map_or(
        Value::Null,
        |party| json!({"name": party.name, "country": party.country}),
    )
}

fn money(money: Option<&v1::Money>) -> Value {
    money.map_or(
        Value::Null,
        |money| json!({"currency": money.currency, "minor_units": money.minor_units}),
    )
}

/// `seconds.nanos` since the epoch as a JSON object, exact in both directions.
fn timestamp(timestamp: Option<&prost_types::Timestamp>) -> Value {
    timestamp.map_or(
        Value::Null,
        |timestamp| json!({"seconds": timestamp.seconds, "nanos": timestamp.nanos}),
    )
}

/// Returns a signed checkpoint as a JSON object, its bytes in hex.
pub(crate) fn checkpoint(checkpoint: &v1::SignedCheckpoint) -> Value {
    json!({
        "position": checkpoint.position,
        "hash": accord_server::hex::encode(&checkpoint.hash),
        "public_key": accord_server::hex::encode(&checkpoint.public_key),
        "signature": accord_server::hex::encode(&checkpoint.signature),
    })
}

/// Reads a signed checkpoint written by [`checkpoint`].
pub(crate) fn checkpoint_from(value: &Value) -> Result<v1::SignedCheckpoint, String> {
    let bytes = |name: &str| {
        value
            .get(name)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("lacks {name}"))
            .and_then(|text| {
                accord_server::hex::decode(text).map_err(|error| format!("{name}: {error}"))
            })
    };
    Ok(v1::SignedCheckpoint {
        position: value
            .get("position")
            .and_then(Value::as_u64)
            .ok_or("lacks position")?,
        hash: bytes("hash")?,
        public_key: bytes("public_key")?,
        signature: bytes("signature")?,
    })
}
