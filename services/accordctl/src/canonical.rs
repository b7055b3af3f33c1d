//! What accordctl prints for machines: protobuf's canonical JSON mapping of
//! the contract's messages (field names in lowerCamelCase, 64-bit integers
//! as strings, timestamps as RFC 3339, enums by name, bytes in base64), as
//! grpcurl and every protobuf library print them, so a `jq` filter written
//! against one works on the other. Fields at their default value are
//! printed too (as `grpcurl -emit-defaults` does): a count of 0 is `0`,
//! not missing.

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use serde_json::Value;

/// The contract's descriptors, as the server's reflection serves them.
static POOL: LazyLock<DescriptorPool> = LazyLock::new(|| {
    DescriptorPool::decode(accord_proto::FILE_DESCRIPTOR_SET)
        .expect("the descriptor set built into accord-proto decodes")
});

/// `message`, of the contract's type `full_name` (`accord.v1.RecordedEvent`),
/// in the canonical JSON mapping.
pub(crate) fn json(message: &impl prost::Message, full_name: &str) -> Result<Value, String> {
    let descriptor = POOL
        .get_message_by_name(full_name)
        .ok_or_else(|| format!("no message {full_name} in the contract"))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|error| format!("{full_name}: {error}"))?;
    let options = SerializeOptions::new().skip_default_fields(false);
    dynamic
        .serialize_with_options(serde_json::value::Serializer, &options)
        .map_err(|error| format!("{full_name}: {error}"))
}

#[cfg(test)]
mod tests {
    use accord_proto::v1;

    use super::json;

    #[test]
    fn events_print_as_grpcurl_prints_them() {
        let event = v1::RecordedEvent {
            position: 12,
            agreement_id: "kz-wabtec-locomotives".into(),
            version: 3,
            event_type: "agreement.signed".into(),
            recorded_at: Some(prost_types::Timestamp {
                seconds: 1_758_585_600,
                nanos: 500_000_000,
            }),
            payload: Some(v1::recorded_event::Payload::Announced(v1::Announced {
                kind: v1::AgreementKind::Procurement as i32,
                value: Some(v1::Money {
                    currency: "USD".into(),
                    minor_units: 420_000_000_000,
                }),
                ..Default::default()
            })),
            ..Default::default()
        };
        let value = json(&event, "accord.v1.RecordedEvent").expect("prints");
        assert_eq!(value["position"], "12");
        assert_eq!(value["agreementId"], "kz-wabtec-locomotives");
        assert_eq!(value["recordedAt"], "2025-09-23T00:00:00.500Z");
        assert_eq!(value["announced"]["kind"], "AGREEMENT_KIND_PROCUREMENT");
        assert_eq!(value["announced"]["value"]["minorUnits"], "420000000000");
        assert_eq!(value["announced"]["quantity"], serde_json::Value::Null);
        assert_eq!(value["eventId"], "", "defaults are printed");
    }
}
