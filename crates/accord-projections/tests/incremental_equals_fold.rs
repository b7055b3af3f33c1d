//! For random valid command sequences, read models built batch by batch equal
//! a fresh fold of the whole log, and applying a batch twice changes nothing.

use std::collections::BTreeMap;

use accord_domain::{
    Agreement, AgreementKind, Announce, Command, EventMetadata, Money, Party, PortfolioSums,
    RecordDelivery, RecordLocalization, RecordedEvent, Sign, Stage, Timestamp, ValidCommand,
    decide,
};
use accord_projections::{AgreementFilter, PositionQuery, ReadModels};
use proptest::prelude::*;

const IDS: [&str; 5] = ["a", "b", "c", "d", "e"];
const COUNTRIES: [&str; 3] = ["UZ", "KZ", "TR"];
const CURRENCIES: [&str; 2] = ["USD", "EUR"];

fn command() -> impl Strategy<Value = Command> {
    let at = Timestamp::from_seconds(1_758_585_600);
    let id = proptest::sample::select(IDS.to_vec());
    prop_oneof![
        (
            id.clone(),
            proptest::sample::select(COUNTRIES.to_vec()),
            proptest::option::of(1u64..20),
            proptest::option::of((
                proptest::sample::select(CURRENCIES.to_vec()),
                0i64..1_000_000
            ))
        )
            .prop_map(
                move |(id, country, quantity, value)| Command::Announce(Announce {
                    agreement_id: id.into(),
                    title: "t".into(),
                    kind: AgreementKind::Procurement,
                    buyer: Party::new("buyer", country),
                    supplier: Party::new("supplier", "US"),
                    sector: "rail".into(),
                    product: "p".into(),
                    quantity,
                    value: value.map(|(currency, amount)| Money::new(currency, amount)),
                    announced_at: at,
                    venue: String::new(),
                    source: String::new(),
                })
            ),
        (id.clone(), proptest::option::of(1u64..20)).prop_map(move |(id, quantity)| Command::Sign(
            Sign {
                agreement_id: id.into(),
                signed_at: at,
                signatories: vec![],
                value: None,
                quantity,
            }
        )),
        (id.clone(), 1u64..8).prop_map(move |(id, units)| Command::RecordDelivery(
            RecordDelivery {
                agreement_id: id.into(),
                units,
                delivered_at: at,
                reference: String::new(),
            }
        )),
        (id, 0u32..=10_000, 0u64..3, proptest::bool::ANY).prop_map(
            move |(id, rate, local_units, technology)| {
                Command::RecordLocalization(RecordLocalization {
                    agreement_id: id.into(),
                    localization_rate_bp: rate,
                    facility: "f".into(),
                    local_units,
                    technology_transfer: if technology {
                        vec!["training".into()]
                    } else {
                        vec![]
                    },
                    recorded_at: at,
                })
            }
        ),
    ]
}

/// Runs the commands through the domain and returns the log they produce.
fn log_of(commands: &[Command]) -> Vec<RecordedEvent> {
    let mut states: BTreeMap<String, Agreement> = BTreeMap::new();
    let mut log = Vec::new();
    for command in commands {
        let id = command.agreement_id().to_owned();
        // An invalid command never reaches the state machine.
        let Ok(valid) = ValidCommand::new(command.clone()) else {
            continue;
        };
        let Ok(event) = decide(states.get(&id), &valid) else {
            continue;
        };
        let recorded = RecordedEvent {
            position: log.len() as u64 + 1,
            agreement_id: id.clone(),
            version: states.get(&id).map_or(0, |state| state.version) + 1,
            event_id: [0; 16],
            recorded_at: Timestamp::default(),
            metadata: EventMetadata::default(),
            event,
        };
        let next = Agreement::fold(states.remove(&id), &recorded).expect("decided events fold");
        states.insert(id, next);
        log.push(recorded);
    }
    log
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn incremental_read_models_equal_a_fresh_fold(
        commands in proptest::collection::vec(command(), 1..80),
        cuts in proptest::collection::vec(1usize..10, 1..40),
    ) {
        let log = log_of(&commands);
        let dir = tempfile::tempdir().expect("tempdir");
        let models = ReadModels::open(dir.path()).expect("opens");
        let mut start = 0;
        for cut in cuts.iter().cycle() {
            if start >= log.len() { break; }
            let end = (start + cut).min(log.len());
            models.apply(&log[start..end]).expect("applies");
            // A batch applied again (a retry after a crash) changes nothing.
            models.apply(&log[start..end]).expect("applies again");
            start = end;
        }
        prop_assert_eq!(models.checkpoint(), log.len() as u64);

        let mut expected: BTreeMap<String, Agreement> = BTreeMap::new();
        for event in &log {
            let next = Agreement::fold(expected.remove(&event.agreement_id), event).expect("folds");
            expected.insert(event.agreement_id.clone(), next);
        }
        for id in IDS {
            prop_assert_eq!(models.agreement(id).expect("reads"), expected.get(id).cloned());
        }
        let mut portfolios: BTreeMap<String, PortfolioSums> = BTreeMap::new();
        for agreement in expected.values() {
            portfolios
                .entry(agreement.buyer.country.clone())
                .or_insert_with(|| PortfolioSums::new(&agreement.buyer.country))
                .add(agreement);
        }
        let expected_portfolios: Vec<_> = portfolios.into_values().collect();
        prop_assert_eq!(models.portfolios().expect("reads"), expected_portfolios);

        // Every filter a list offers, through its index, in pages of 2.
        let mut filters = vec![AgreementFilter::default()];
        for country in COUNTRIES {
            filters.push(AgreementFilter { buyer_country: Some(country.into()), ..AgreementFilter::default() });
        }
        filters.push(AgreementFilter { supplier_country: Some("US".into()), ..AgreementFilter::default() });
        filters.push(AgreementFilter { sector: Some("rail".into()), ..AgreementFilter::default() });
        for stage in [Stage::Announced, Stage::Signed, Stage::Delivering, Stage::Delivered] {
            filters.push(AgreementFilter { stage: Some(stage), ..AgreementFilter::default() });
            for country in COUNTRIES {
                filters.push(AgreementFilter { buyer_country: Some(country.into()), stage: Some(stage), ..AgreementFilter::default() });
            }
        }
        for filter in filters {
            let mut listed = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = models.list_agreements(&filter, 2, after.as_deref()).expect("lists");
                listed.extend(page.agreements);
                match page.last_id {
                    Some(last) => after = Some(last),
                    None => break,
                }
            }
            let wanted: Vec<Agreement> = expected
                .values()
                .filter(|agreement| {
                    filter.buyer_country.as_ref().is_none_or(|country| agreement.buyer.country == *country)
                        && filter.supplier_country.as_ref().is_none_or(|country| agreement.supplier.country == *country)
                        && filter.sector.as_ref().is_none_or(|sector| agreement.sector == *sector)
                        && filter.stage.is_none_or(|stage| agreement.stage == stage)
                })
                .cloned()
                .collect();
            prop_assert_eq!(listed, wanted, "{:?}", filter);
        }

        // The position index of filtered reads lists what a scan of the
        // log finds, read in pieces of 3.
        let buyer_of: BTreeMap<&str, &str> = expected
            .iter()
            .map(|(id, agreement)| (id.as_str(), agreement.buyer.country.as_str()))
            .collect();
        let mut queries = vec![];
        for event_type in accord_domain::Event::TYPES {
            queries.push(PositionQuery { event_types: vec![event_type.into()], buyer_countries: vec![] });
            for country in COUNTRIES {
                queries.push(PositionQuery { event_types: vec![event_type.into()], buyer_countries: vec![country.into()] });
            }
        }
        for country in COUNTRIES {
            queries.push(PositionQuery { event_types: vec![], buyer_countries: vec![country.into()] });
        }
        queries.push(PositionQuery { event_types: vec![], buyer_countries: COUNTRIES.map(String::from).to_vec() });
        for query in queries {
            let mut found = Vec::new();
            let mut from = 1;
            loop {
                let answer = models.indexed_positions(&query, from, 3).expect("reads the index");
                if answer.through < from { break; }
                found.extend(answer.positions);
                from = answer.through + 1;
            }
            let wanted: Vec<u64> = log
                .iter()
                .filter(|event| {
                    (query.event_types.is_empty() || query.event_types.iter().any(|t| t == event.event.event_type()))
                        && (query.buyer_countries.is_empty()
                            || query.buyer_countries.iter().any(|c| c == buyer_of[event.agreement_id.as_str()]))
                })
                .map(|event| event.position)
                .collect();
            prop_assert_eq!(found, wanted, "{:?}", query);
        }
    }
}
