//! Read models to their wire messages.

use std::collections::BTreeMap;

use accord_domain::{Agreement, PortfolioSums, Stage};

use super::events::{kind_to_wire, money_to_wire, party_to_wire};
use super::timestamp_from_domain;
use crate::v1;

/// Returns the wire stage of a domain stage.
pub fn stage_to_wire(stage: Stage) -> v1::AgreementStage {
    match stage {
        Stage::Announced => v1::AgreementStage::Announced,
        Stage::Signed => v1::AgreementStage::Signed,
        Stage::Delivering => v1::AgreementStage::Delivering,
        Stage::Delivered => v1::AgreementStage::Delivered,
    }
}

/// Returns the wire view of an agreement.
pub fn agreement_to_wire(agreement: &Agreement) -> v1::Agreement {
    v1::Agreement {
        agreement_id: agreement.agreement_id.clone(),
        title: agreement.title.clone(),
        kind: kind_to_wire(agreement.kind) as i32,
        stage: stage_to_wire(agreement.stage) as i32,
        buyer: Some(party_to_wire(&agreement.buyer)),
        supplier: Some(party_to_wire(&agreement.supplier)),
        sector: agreement.sector.clone(),
        product: agreement.product.clone(),
        quantity: agreement.quantity,
        value: agreement.value.as_ref().map(money_to_wire),
        delivered_units: agreement.delivered_units,
        localized: agreement.localized,
        localization_rate_bp: agreement.localization_rate_bp,
        local_units: agreement.local_units,
        facility: agreement.facility.clone(),
        technology_transfer: agreement.technology_transfer.clone(),
        announced_at: Some(timestamp_from_domain(agreement.announced_at)),
        signed_at: agreement.signed_at.map(timestamp_from_domain),
        last_delivery_at: agreement.last_delivery_at.map(timestamp_from_domain),
        version: agreement.version,
        position: agreement.position,
        venue: agreement.venue.clone(),
        source: agreement.source.clone(),
        signatories: agreement.signatories.clone(),
    }
}

/// Returns the domain stage of a wire stage, None for unspecified or unknown values.
pub fn stage_from_wire(stage: i32) -> Option<Stage> {
    match v1::AgreementStage::try_from(stage) {
        Ok(v1::AgreementStage::Announced) => Some(Stage::Announced),
        Ok(v1::AgreementStage::Signed) => Some(Stage::Signed),
        Ok(v1::AgreementStage::Delivering) => Some(Stage::Delivering),
        Ok(v1::AgreementStage::Delivered) => Some(Stage::Delivered),
        _ => None,
    }
}

/// Returns the wire portfolio of a buyer country's sums. Amounts beyond
/// what an `int64` holds saturate.
pub fn portfolio_to_wire(sums: &PortfolioSums) -> v1::CountryPortfolio {
    v1::CountryPortfolio {
        country: sums.country.clone(),
        agreement_count: sums.agreement_count,
        count_by_stage: sums
            .count_by_stage
            .iter()
            .map(|(stage, count)| (stage.as_str().to_owned(), *count))
            .collect(),
        contracted_value: money_list(&sums.contracted_value),
        contracted_units: sums.contracted_units,
        delivered_units: sums.delivered_units,
        weighted_localization_bp: sums.headline_localization_bp(),
        value_without_technology_transfer: money_list(&sums.value_without_technology_transfer),
        localization_by_currency: sums
            .weighted_localization_by_currency()
            .into_iter()
            .map(
                |(currency, weighted_localization_bp)| v1::CurrencyLocalization {
                    contracted_value: Some(v1::Money {
                        minor_units: saturate(
                            sums.contracted_value.get(&currency).copied().unwrap_or(0),
                        ),
                        currency,
                    }),
                    weighted_localization_bp,
                },
            )
            .collect(),
    }
}

/// Returns the localization report's entry for a signed agreement.
pub fn localization_entry_to_wire(agreement: &Agreement) -> v1::LocalizationEntry {
    v1::LocalizationEntry {
        agreement_id: agreement.agreement_id.clone(),
        title: agreement.title.clone(),
        buyer: Some(party_to_wire(&agreement.buyer)),
        supplier: Some(party_to_wire(&agreement.supplier)),
        value: agreement.value.as_ref().map(money_to_wire),
        stage: stage_to_wire(agreement.stage) as i32,
        localization_rate_bp: agreement.localization_rate_bp,
        facility: agreement.facility.clone(),
        local_units: agreement.local_units,
        technology_transfer: agreement.technology_transfer.clone(),
    }
}

fn money_list(totals: &BTreeMap<String, i128>) -> Vec<v1::Money> {
    totals
        .iter()
        .filter(|(_, amount)| **amount != 0)
        .map(|(currency, amount)| v1::Money {
            currency: currency.clone(),
            minor_units: saturate(*amount),
        })
        .collect()
}

fn saturate(amount: i128) -> i64 {
    amount.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_domain::{AgreementKind, Announced, Money, Party, Timestamp};

    fn signed(currency: &str, minor_units: i64, rate_bp: u32) -> Agreement {
        let mut agreement = Agreement::announced(
            "a",
            &Announced {
                title: "t".into(),
                kind: AgreementKind::Procurement,
                buyer: Party::new("b", "UZ"),
                supplier: Party::new("s", "US"),
                sector: "rail".into(),
                product: "p".into(),
                quantity: Some(3),
                value: Some(Money::new(currency, minor_units)),
                announced_at: Timestamp::default(),
                venue: String::new(),
                source: String::new(),
            },
        );
        agreement.stage = Stage::Signed;
        agreement.localized = rate_bp > 0;
        agreement.localization_rate_bp = rate_bp;
        agreement
    }

    #[test]
    fn a_portfolio_lists_each_currency_apart_with_its_weighted_rate() {
        let mut sums = PortfolioSums::new("UZ");
        sums.add(&signed("USD", 300, 10_000));
        sums.add(&signed("USD", 100, 0));
        sums.add(&signed("EUR", 1_000, 2_000));
        let wire = portfolio_to_wire(&sums);
        assert_eq!(wire.count_by_stage.get("AGREEMENT_STAGE_SIGNED"), Some(&3));
        let money = |currency: &str, minor_units| v1::Money {
            currency: currency.into(),
            minor_units,
        };
        assert_eq!(
            wire.contracted_value,
            vec![money("EUR", 1_000), money("USD", 400)]
        );
        assert_eq!(wire.weighted_localization_bp, 2_000);
        assert_eq!(
            wire.localization_by_currency,
            vec![
                v1::CurrencyLocalization {
                    contracted_value: Some(money("EUR", 1_000)),
                    weighted_localization_bp: 2_000,
                },
                v1::CurrencyLocalization {
                    contracted_value: Some(money("USD", 400)),
                    weighted_localization_bp: 7_500,
                },
            ]
        );
        assert_eq!(
            wire.value_without_technology_transfer,
            vec![money("USD", 100)]
        );
    }

    #[test]
    fn sums_beyond_int64_saturate_on_the_wire() {
        let mut sums = PortfolioSums::new("UZ");
        sums.add(&signed("USD", i64::MAX, 0));
        sums.add(&signed("USD", i64::MAX, 0));
        assert_eq!(
            portfolio_to_wire(&sums).contracted_value[0].minor_units,
            i64::MAX
        );
    }
}
