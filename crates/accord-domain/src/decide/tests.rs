use super::*;
use crate::{
    Announce, EventMetadata, ExpectedVersion, Money, Party, RecordDelivery, RecordLocalization,
    RecordedEvent, Sign, Timestamp,
};

const ID: &str = "kz-wabtec-locomotives";

/// `command`, which the tests build valid.
fn valid(command: &Command) -> ValidCommand {
    ValidCommand::new(command.clone()).expect("a valid command")
}

fn announce(quantity: Option<u64>) -> Command {
    Command::Announce(Announce {
        agreement_id: ID.into(),
        title: "Kazakhstan contract for 300 Wabtec freight locomotives".into(),
        kind: crate::AgreementKind::Procurement,
        buyer: Party::new("Kazakhstan", "KZ"),
        supplier: Party::new("Wabtec Corp.", "US"),
        sector: "rail".into(),
        product: "freight locomotive".into(),
        quantity,
        value: Some(Money::new("USD", 420_000_000_000)),
        announced_at: Timestamp::from_seconds(1_758_585_600),
        venue: String::new(),
        source: String::new(),
    })
}

fn sign() -> Command {
    Command::Sign(Sign {
        agreement_id: ID.into(),
        signed_at: Timestamp::from_seconds(1_758_585_600),
        signatories: vec!["Government of Kazakhstan".into(), "Wabtec Corp.".into()],
        value: None,
        quantity: None,
    })
}

fn deliver(units: u64) -> Command {
    Command::RecordDelivery(RecordDelivery {
        agreement_id: ID.into(),
        units,
        delivered_at: Timestamp::from_seconds(1_760_000_000),
        reference: "batch".into(),
    })
}

fn localize(rate_bp: u32, technology: &[&str]) -> Command {
    Command::RecordLocalization(RecordLocalization {
        agreement_id: ID.into(),
        localization_rate_bp: rate_bp,
        facility: "Wabtec plant, Astana".into(),
        local_units: 0,
        technology_transfer: technology.iter().map(|item| item.to_string()).collect(),
        recorded_at: Timestamp::from_seconds(1_758_585_600),
    })
}

/// Runs commands in order, each on the state the previous ones left.
fn run(commands: &[Command]) -> Result<Agreement, DomainError> {
    let mut state: Option<Agreement> = None;
    for (index, command) in commands.iter().enumerate() {
        let event = decide(state.as_ref(), &ValidCommand::new(command.clone())?)?;
        let recorded = RecordedEvent {
            position: index as u64 + 1,
            agreement_id: ID.into(),
            version: index as u64 + 1,
            event_id: [0; 16],
            recorded_at: Timestamp::default(),
            metadata: EventMetadata::default(),
            event,
        };
        state = Agreement::fold(state, &recorded);
    }
    Ok(state.expect("at least one command"))
}

fn rule_of(error: DomainError) -> (Stage, String) {
    match error {
        DomainError::LifecycleViolation { stage, rule, .. } => (stage, rule),
        other => panic!("expected a lifecycle violation, got {other:?}"),
    }
}

#[test]
fn announce_creates_an_announced_agreement() {
    let agreement = run(&[announce(Some(300))]).expect("accepted");
    assert_eq!(agreement.stage, Stage::Announced);
    assert_eq!(agreement.version, 1);
    assert_eq!(agreement.quantity, Some(300));
}

#[test]
fn announcing_an_existing_agreement_is_already_exists() {
    let error = run(&[announce(None), announce(None)]).expect_err("refused");
    assert_eq!(
        error,
        DomainError::AlreadyExists {
            agreement_id: ID.into()
        }
    );
}

#[test]
fn commands_on_an_unknown_agreement_are_not_found() {
    for command in [sign(), deliver(1), localize(100, &[])] {
        let error = decide(None, &valid(&command)).expect_err("refused");
        assert_eq!(
            error,
            DomainError::NotFound {
                agreement_id: ID.into()
            }
        );
    }
}

#[test]
fn signing_moves_announced_to_signed_and_may_set_final_terms() {
    let Command::Sign(mut final_terms) = sign() else {
        unreachable!()
    };
    final_terms.value = Some(Money::new("USD", 1));
    final_terms.quantity = Some(10);
    let agreement = run(&[announce(Some(300)), Command::Sign(final_terms)]).expect("accepted");
    assert_eq!(agreement.stage, Stage::Signed);
    assert_eq!(agreement.quantity, Some(10));
    assert_eq!(agreement.value, Some(Money::new("USD", 1)));
    assert_eq!(agreement.signatories.len(), 2);
}

#[test]
fn signing_twice_is_a_lifecycle_violation() {
    let error = run(&[announce(Some(300)), sign(), sign()]).expect_err("refused");
    let (stage, rule) = rule_of(error);
    assert_eq!(stage, Stage::Signed);
    assert!(rule.contains("only once"), "{rule}");
}

#[test]
fn delivery_before_signing_is_a_lifecycle_violation() {
    let error = run(&[announce(Some(300)), deliver(1)]).expect_err("refused");
    assert_eq!(rule_of(error).0, Stage::Announced);
}

#[test]
fn delivery_needs_a_contracted_quantity() {
    let error = run(&[announce(None), sign(), deliver(1)]).expect_err("refused");
    assert!(rule_of(error).1.contains("quantity"));
}

#[test]
fn deliveries_move_through_delivering_to_delivered() {
    let agreement = run(&[announce(Some(3)), sign(), deliver(1)]).expect("accepted");
    assert_eq!(agreement.stage, Stage::Delivering);
    assert_eq!(agreement.delivered_units, 1);
    let agreement = run(&[announce(Some(3)), sign(), deliver(1), deliver(2)]).expect("accepted");
    assert_eq!(agreement.stage, Stage::Delivered);
    assert_eq!(agreement.delivered_units, 3);
    assert!(agreement.last_delivery_at.is_some());
}

#[test]
fn over_delivery_is_a_lifecycle_violation() {
    let error = run(&[announce(Some(3)), sign(), deliver(2), deliver(2)]).expect_err("refused");
    let (stage, rule) = rule_of(error);
    assert_eq!(stage, Stage::Delivering);
    assert!(rule.contains("2 of 3 delivered"), "{rule}");
}

#[test]
fn delivery_after_everything_was_delivered_is_refused() {
    let error = run(&[announce(Some(1)), sign(), deliver(1), deliver(1)]).expect_err("refused");
    assert_eq!(rule_of(error).0, Stage::Delivered);
}

#[test]
fn localization_before_signing_is_refused() {
    let error = run(&[announce(Some(300)), localize(4_500, &[])]).expect_err("refused");
    assert_eq!(rule_of(error).0, Stage::Announced);
}

#[test]
fn localization_is_allowed_in_any_signed_stage_and_may_repeat() {
    let agreement = run(&[
        announce(Some(2)),
        sign(),
        localize(1_000, &["training"]),
        deliver(2),
        localize(4_500, &["engineering centre", "training"]),
    ])
    .expect("accepted");
    assert!(agreement.localized);
    assert_eq!(agreement.localization_rate_bp, 4_500);
    assert_eq!(agreement.stage, Stage::Delivered);
    assert_eq!(
        agreement.technology_transfer,
        vec!["training", "engineering centre"]
    );
}

#[test]
fn a_localization_records_each_technology_once() {
    let state = run(&[announce(Some(2)), sign()]).expect("signed");
    let event = decide(
        Some(&state),
        &valid(&localize(
            100,
            &["training", "training", "licence", "training"],
        )),
    )
    .expect("accepted");
    let Event::LocalizationRecorded(recorded) = event else {
        unreachable!()
    };
    assert_eq!(recorded.technology_transfer, vec!["training", "licence"]);
}

#[test]
fn an_agreement_lists_a_bounded_number_of_technology_transfers() {
    let names: Vec<String> = (0..limits::TECHNOLOGY_TRANSFERS_PER_AGREEMENT + 1)
        .map(|index| format!("technology {index}"))
        .collect();
    let first: Vec<&str> = names[..60].iter().map(String::as_str).collect();
    let second: Vec<&str> = names[60..100].iter().map(String::as_str).collect();
    let full = run(&[
        announce(Some(2)),
        sign(),
        localize(100, &first),
        localize(100, &second),
    ])
    .expect("up to the limit");
    assert_eq!(
        full.technology_transfer.len(),
        limits::TECHNOLOGY_TRANSFERS_PER_AGREEMENT
    );
    // Repeating what is listed adds nothing and is allowed; one more is not.
    let mut repeat = first.clone();
    repeat.truncate(10);
    decide(Some(&full), &valid(&localize(200, &repeat))).expect("nothing new");
    let error = decide(Some(&full), &valid(&localize(200, &[names[100].as_str()])))
        .expect_err("one too many");
    let (_, rule) = rule_of(error);
    assert!(rule.contains("at most 100 technology transfers"), "{rule}");
}

#[test]
fn local_units_may_not_exceed_the_contracted_quantity() {
    let Command::RecordLocalization(mut too_many) = localize(100, &[]) else {
        unreachable!()
    };
    too_many.local_units = 301;
    let error = run(&[
        announce(Some(300)),
        sign(),
        Command::RecordLocalization(too_many),
    ])
    .expect_err("refused");
    assert!(rule_of(error).1.contains("local units"));
}

#[test]
fn invalid_fields_are_refused_before_the_state_is_consulted() {
    // A command becomes one `decide` takes only once its fields are valid.
    let error = ValidCommand::new(localize(10_001, &[])).expect_err("refused");
    assert_eq!(error.field, "localization_rate_bp");
}

#[test]
fn lifecycle_messages_name_the_stage() {
    let error = run(&[announce(Some(300)), deliver(1)]).expect_err("refused");
    assert!(
        error.to_string().contains("AGREEMENT_STAGE_ANNOUNCED"),
        "{error}"
    );
}

#[test]
fn expected_version_errors_name_both_versions() {
    let error = ExpectedVersion::Exact(4)
        .check(ID, 2)
        .expect_err("mismatch");
    assert_eq!(
        error.to_string(),
        format!("agreement {ID}: expected version 4, actual version 2")
    );
}

#[test]
fn a_decided_event_moves_the_state_as_its_stored_record_will() {
    let commands = [announce(Some(300)), sign(), deliver(5)];
    let mut decided: Option<Agreement> = None;
    for command in &commands {
        assert_eq!(command.opens_agreement(), decided.is_none());
        let event = decide(decided.as_ref(), &valid(command)).expect("allowed");
        assert_eq!(event.opens_agreement(), decided.is_none());
        decided = Agreement::next(decided, ID, &event);
    }
    let mut decided = decided.expect("announced");
    assert_eq!(decided.version, 3);
    // Only the position is unknown until the event is stored.
    decided.position = 3;
    assert_eq!(Ok(decided), run(&commands));
    assert_eq!(
        Agreement::next(
            None,
            ID,
            &decide(None, &valid(&announce(None))).expect("allowed")
        )
        .map(|agreement| agreement.version),
        Some(1)
    );
    let signed = decide(
        Some(&run(&[announce(None)]).expect("announced")),
        &valid(&sign()),
    )
    .expect("allowed");
    assert_eq!(
        Agreement::next(None, ID, &signed),
        None,
        "no stream starts with a signature"
    );
}
