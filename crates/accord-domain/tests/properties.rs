//! Random command sequences never break the state machine's invariants.

use accord_domain::{
    Agreement, AgreementKind, Announce, Command, EventMetadata, Money, Party, RecordDelivery,
    RecordLocalization, RecordedEvent, Sign, Stage, Timestamp, ValidCommand, decide,
};
use proptest::prelude::*;

const ID: &str = "prop";

fn command() -> impl Strategy<Value = Command> {
    let at = Timestamp::from_seconds(1_700_000_000);
    prop_oneof![
        (proptest::option::of(0u64..50)).prop_map(move |quantity| {
            Command::Announce(Announce {
                agreement_id: ID.into(),
                title: "t".into(),
                kind: AgreementKind::Procurement,
                buyer: Party::new("b", "UZ"),
                supplier: Party::new("s", "US"),
                sector: "rail".into(),
                product: "p".into(),
                quantity,
                value: Some(Money::new("USD", 100)),
                announced_at: at,
                venue: String::new(),
                source: String::new(),
            })
        }),
        (proptest::option::of(0u64..50)).prop_map(move |quantity| {
            Command::Sign(Sign {
                agreement_id: ID.into(),
                signed_at: at,
                signatories: vec![],
                value: None,
                quantity,
            })
        }),
        (0u64..30).prop_map(move |units| {
            Command::RecordDelivery(RecordDelivery {
                agreement_id: ID.into(),
                units,
                delivered_at: at,
                reference: String::new(),
            })
        }),
        (0u32..12_000, 0u64..60).prop_map(move |(rate, local_units)| {
            Command::RecordLocalization(RecordLocalization {
                agreement_id: ID.into(),
                localization_rate_bp: rate,
                facility: "f".into(),
                local_units,
                technology_transfer: vec!["x".into()],
                recorded_at: at,
            })
        }),
    ]
}

proptest! {
    #[test]
    fn invariants_hold_for_any_command_sequence(commands in proptest::collection::vec(command(), 0..60)) {
        let mut state: Option<Agreement> = None;
        let mut version = 0;
        for command in &commands {
            let before = state.clone();
            // An invalid command never reaches the state machine.
            let Ok(valid) = ValidCommand::new(command.clone()) else { continue };
            let Ok(event) = decide(state.as_ref(), &valid) else { continue };
            version += 1;
            let recorded = RecordedEvent {
                position: version,
                agreement_id: ID.into(),
                version,
                event_id: [0; 16],
                recorded_at: Timestamp::default(),
                metadata: EventMetadata::default(),
                event,
            };
            state = Agreement::fold(state, &recorded);
            let agreement = state.as_ref().expect("an accepted command leaves state");
            if let Some(quantity) = agreement.quantity {
                prop_assert!(agreement.delivered_units <= quantity);
                prop_assert!(agreement.local_units <= quantity);
            } else {
                prop_assert_eq!(agreement.delivered_units, 0);
            }
            prop_assert!(agreement.localization_rate_bp <= 10_000);
            if let Some(before) = before {
                prop_assert!(agreement.stage >= before.stage, "stage moved backwards");
                prop_assert!(agreement.delivered_units >= before.delivered_units);
            }
            let all_delivered =
                agreement.delivered_units > 0 && Some(agreement.delivered_units) == agreement.quantity;
            prop_assert_eq!(agreement.stage == Stage::Delivered, all_delivered);
        }
    }
}
