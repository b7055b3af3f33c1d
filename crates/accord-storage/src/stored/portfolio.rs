//! A country's portfolio sums to and from their stored form.

use std::collections::BTreeMap;

use accord_domain::PortfolioSums;

use super::{FormatError, stage_from_stored, stage_to_stored};
use crate::storage;

/// Returns the stored form of a country's portfolio sums.
pub fn portfolio_to_stored(sums: &PortfolioSums) -> storage::PortfolioSums {
    storage::PortfolioSums {
        country: sums.country.clone(),
        agreement_count: sums.agreement_count,
        count_by_stage: sums
            .count_by_stage
            .iter()
            .map(|(stage, count)| storage::StageCount {
                stage: stage_to_stored(*stage) as i32,
                count: *count,
            })
            .collect(),
        contracted_value: amounts_to_stored(&sums.contracted_value),
        contracted_units: sums.contracted_units,
        delivered_units: sums.delivered_units,
        localization_weighted_value: amounts_to_stored(&sums.localization_weighted_value),
        value_without_technology_transfer: amounts_to_stored(
            &sums.value_without_technology_transfer,
        ),
    }
}

/// Returns the portfolio sums of their stored form.
pub fn portfolio_from_stored(stored: storage::PortfolioSums) -> Result<PortfolioSums, FormatError> {
    let mut count_by_stage = BTreeMap::new();
    for entry in stored.count_by_stage {
        count_by_stage.insert(stage_from_stored(entry.stage)?, entry.count);
    }
    Ok(PortfolioSums {
        country: stored.country,
        agreement_count: stored.agreement_count,
        count_by_stage,
        contracted_value: amounts_from_stored(stored.contracted_value),
        contracted_units: stored.contracted_units,
        delivered_units: stored.delivered_units,
        localization_weighted_value: amounts_from_stored(stored.localization_weighted_value),
        value_without_technology_transfer: amounts_from_stored(
            stored.value_without_technology_transfer,
        ),
    })
}

fn amounts_to_stored(amounts: &BTreeMap<String, i128>) -> Vec<storage::Amount> {
    amounts
        .iter()
        .map(|(currency, amount)| storage::Amount {
            currency: currency.clone(),
            high: (amount >> 64) as i64,
            low: *amount as u64,
        })
        .collect()
}

fn amounts_from_stored(amounts: Vec<storage::Amount>) -> BTreeMap<String, i128> {
    amounts
        .into_iter()
        .map(|amount| {
            let value = (i128::from(amount.high) << 64) | i128::from(amount.low);
            (amount.currency, value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_domain::Stage;

    #[test]
    fn sums_round_trip_exactly_beyond_64_bits_and_below_zero() {
        let amounts = BTreeMap::from([
            ("EUR".to_owned(), -1_i128),
            ("USD".to_owned(), i128::from(i64::MAX) * 10_000 + 7),
            ("XAU".to_owned(), i128::MIN),
        ]);
        let sums = PortfolioSums {
            country: "KZ".into(),
            agreement_count: 3,
            count_by_stage: BTreeMap::from([(Stage::Signed, 2), (Stage::Delivered, 1)]),
            contracted_value: amounts.clone(),
            contracted_units: 300,
            delivered_units: 25,
            localization_weighted_value: amounts.clone(),
            value_without_technology_transfer: amounts,
        };
        assert_eq!(portfolio_from_stored(portfolio_to_stored(&sums)), Ok(sums));
    }
}
