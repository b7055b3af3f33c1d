use super::*;
use crate::{AgreementKind, Announced, Money, Party, Timestamp};

fn agreement(country: &str, value: Option<(&str, i64)>, stage: Stage, rate_bp: u32) -> Agreement {
    let mut agreement = Agreement::announced(
        "a",
        &Announced {
            title: "t".into(),
            kind: AgreementKind::Procurement,
            buyer: Party::new("b", country),
            supplier: Party::new("s", "US"),
            sector: "rail".into(),
            product: "p".into(),
            quantity: Some(300),
            value: value.map(|(currency, amount)| Money::new(currency, amount)),
            announced_at: Timestamp::default(),
            venue: String::new(),
            source: String::new(),
        },
    );
    agreement.stage = stage;
    if rate_bp > 0 {
        agreement.localized = true;
        agreement.localization_rate_bp = rate_bp;
    }
    agreement
}

fn usd(amount: i128) -> BTreeMap<String, i128> {
    BTreeMap::from([("USD".to_owned(), amount)])
}

#[test]
fn the_kazakh_portfolio_is_usd_4_2_bn_at_45_percent() {
    let mut sums = PortfolioSums::new("KZ");
    sums.add(&agreement(
        "KZ",
        Some(("USD", 420_000_000_000)),
        Stage::Signed,
        4_500,
    ));
    assert_eq!(sums.contracted_value, usd(420_000_000_000));
    assert_eq!(sums.headline_localization_bp(), 4_500);
    assert!(sums.value_without_technology_transfer.is_empty());
    assert_eq!(sums.contracted_units, 300);
}

#[test]
fn announced_agreements_count_but_contract_nothing() {
    let mut sums = PortfolioSums::new("UZ");
    sums.add(&agreement("UZ", Some(("USD", 5)), Stage::Announced, 0));
    assert_eq!(sums.agreement_count, 1);
    assert_eq!(sums.count_by_stage.get(&Stage::Announced), Some(&1));
    assert!(sums.contracted_value.is_empty());
    assert_eq!(sums.main_currency(), None);
    assert_eq!(sums.headline_localization_bp(), 0);
}

#[test]
fn weighting_is_by_value_within_a_currency_and_never_across() {
    let mut sums = PortfolioSums::new("UZ");
    sums.add(&agreement("UZ", Some(("USD", 300)), Stage::Signed, 10_000));
    sums.add(&agreement("UZ", Some(("USD", 100)), Stage::Signed, 0));
    sums.add(&agreement("UZ", Some(("EUR", 1_000)), Stage::Signed, 2_000));
    assert_eq!(sums.contracted_value.len(), 2, "one entry per currency");
    // EUR has the largest value (1000 > 400).
    assert_eq!(sums.main_currency(), Some("EUR"));
    assert_eq!(sums.headline_localization_bp(), 2_000);
    assert_eq!(
        sums.weighted_localization_by_currency().get("USD"),
        Some(&7_500)
    );
    assert_eq!(sums.value_without_technology_transfer, usd(100));
}

#[test]
fn removing_a_contribution_restores_the_sums_exactly() {
    let mut sums = PortfolioSums::new("UZ");
    let before = sums.clone();
    let signed = agreement("UZ", Some(("USD", 850_000_000_000)), Stage::Signed, 0);
    sums.add(&signed);
    sums.remove(&signed);
    assert_eq!(sums, before);
}
