//! Request validation on hostile input: arbitrary bytes decoded as every
//! request message, and arbitrary field values, never panic the conversion,
//! the validation or the state machine; whatever is refused names a field.

use accord_domain::{Command, ValidCommand, decide, validate_command_id};
use accord_proto::v1;
use accord_proto::{command_from_wire, expected_version_from_wire};
use proptest::prelude::*;
use prost::Message;

/// Runs a wire command through everything the server does before the store.
fn check(command: v1::Command) {
    let Ok((meta, command)) = command_from_wire(command) else {
        return;
    };
    let meta = meta.unwrap_or_default();
    let _ = validate_command_id(&meta.command_id);
    let _ = expected_version_from_wire(meta.expected_version.as_ref());
    let command = match ValidCommand::new(command) {
        Ok(command) => command,
        Err(error) => {
            assert!(!error.field.is_empty(), "a refusal names its field");
            return;
        }
    };
    // Valid commands meet the state machine with no state and with a state of their own making.
    let first = decide(None, &command);
    if let (Ok(event), Command::Announce(_)) = (first, command.command()) {
        let recorded = accord_domain::RecordedEvent {
            position: 1,
            agreement_id: command.agreement_id().to_owned(),
            version: 1,
            event_id: [0; 16],
            recorded_at: accord_domain::Timestamp::default(),
            metadata: accord_domain::EventMetadata::default(),
            event,
        };
        let state = accord_domain::Agreement::fold(None, &recorded);
        let _ = decide(state.as_ref(), &command);
    }
}

fn wrap(command: v1::command::Command) -> v1::Command {
    v1::Command {
        command: Some(command),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn arbitrary_bytes_as_any_request_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2_048)) {
        if let Ok(request) = v1::AnnounceRequest::decode(bytes.as_slice()) {
            check(wrap(v1::command::Command::Announce(request)));
        }
        if let Ok(request) = v1::SignRequest::decode(bytes.as_slice()) {
            check(wrap(v1::command::Command::Sign(request)));
        }
        if let Ok(request) = v1::RecordDeliveryRequest::decode(bytes.as_slice()) {
            check(wrap(v1::command::Command::RecordDelivery(request)));
        }
        if let Ok(request) = v1::RecordLocalizationRequest::decode(bytes.as_slice()) {
            check(wrap(v1::command::Command::RecordLocalization(request)));
        }
        if let Ok(request) = v1::ExecuteRequest::decode(bytes.as_slice()) {
            for command in request.commands {
                check(command);
            }
        }
    }

    #[test]
    fn arbitrary_field_values_never_panic(
        agreement_id in ".{0,140}",
        text in ".{0,250}",
        country in ".{0,4}",
        currency in ".{0,4}",
        minor_units in any::<i64>(),
        quantity in proptest::option::of(any::<u64>()),
        seconds in any::<i64>(),
        nanos in any::<i32>(),
        kind in any::<i32>(),
        rate in any::<u32>(),
        list in proptest::collection::vec(".{0,30}", 0..120),
    ) {
        let at = Some(prost_types::Timestamp { seconds, nanos });
        let meta = Some(v1::CommandMeta { command_id: text.clone(), ..Default::default() });
        let party = Some(v1::Party { name: text.clone(), country: country.clone() });
        check(wrap(v1::command::Command::Announce(v1::AnnounceRequest {
            meta: meta.clone(),
            agreement_id: agreement_id.clone(),
            title: text.clone(),
            kind,
            buyer: party.clone(),
            supplier: party,
            sector: text.clone(),
            product: text.clone(),
            quantity,
            value: Some(v1::Money { currency: currency.clone(), minor_units }),
            announced_at: at,
            venue: text.clone(),
            source: text.clone(),
        })));
        check(wrap(v1::command::Command::Sign(v1::SignRequest {
            meta: meta.clone(),
            agreement_id: agreement_id.clone(),
            signed_at: at,
            signatories: list.clone(),
            value: Some(v1::Money { currency, minor_units }),
            quantity,
        })));
        check(wrap(v1::command::Command::RecordLocalization(v1::RecordLocalizationRequest {
            meta,
            agreement_id,
            localization_rate_bp: rate,
            facility: text,
            local_units: quantity.unwrap_or_default(),
            technology_transfer: list,
            recorded_at: at,
        })));
    }
}
