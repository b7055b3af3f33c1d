//! A buyer country's portfolio as sums that an agreement's contribution can
//! be added to and taken from exactly, so that the portfolio follows every
//! change of its agreements without a re-scan.

use std::collections::BTreeMap;

use crate::{Agreement, Stage};

/// The additive sums behind a country's portfolio.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortfolioSums {
    /// Buyer country.
    pub country: String,
    /// Agreements of the country, in any stage.
    pub agreement_count: u64,
    /// Agreements by stage.
    pub count_by_stage: BTreeMap<Stage, u64>,
    /// Signed value per currency, in minor units.
    pub contracted_value: BTreeMap<String, i128>,
    /// Signed units.
    pub contracted_units: u64,
    /// Delivered units.
    pub delivered_units: u64,
    /// Per currency: the sum of signed value times localization rate (bp).
    pub localization_weighted_value: BTreeMap<String, i128>,
    /// Signed value with neither localization nor technology transfer recorded.
    pub value_without_technology_transfer: BTreeMap<String, i128>,
}

impl PortfolioSums {
    /// Returns empty sums for `country`.
    pub fn new(country: &str) -> Self {
        Self {
            country: country.to_owned(),
            ..Self::default()
        }
    }

    /// Adds the agreement's contribution.
    pub fn add(&mut self, agreement: &Agreement) {
        self.apply(agreement, 1);
    }

    /// Takes the agreement's contribution away again.
    pub fn remove(&mut self, agreement: &Agreement) {
        self.apply(agreement, -1);
    }

    /// Returns true when no agreement contributes.
    pub fn is_empty(&self) -> bool {
        self.agreement_count == 0
    }

    fn apply(&mut self, agreement: &Agreement, sign: i128) {
        let add_u64 = |total: &mut u64, amount: u64| {
            *total = if sign > 0 {
                total.saturating_add(amount)
            } else {
                total.saturating_sub(amount)
            };
        };
        add_u64(&mut self.agreement_count, 1);
        let stage_count = self.count_by_stage.entry(agreement.stage).or_default();
        add_u64(stage_count, 1);
        if *stage_count == 0 {
            self.count_by_stage.remove(&agreement.stage);
        }
        if !agreement.stage.is_signed() {
            return;
        }
        add_u64(&mut self.contracted_units, agreement.quantity.unwrap_or(0));
        add_u64(&mut self.delivered_units, agreement.delivered_units);
        let Some(value) = &agreement.value else {
            return;
        };
        let minor_units = i128::from(value.minor_units);
        add_to(
            &mut self.contracted_value,
            &value.currency,
            sign * minor_units,
        );
        add_to(
            &mut self.localization_weighted_value,
            &value.currency,
            sign * minor_units * i128::from(agreement.localization_rate_bp),
        );
        if !agreement.has_local_content() {
            add_to(
                &mut self.value_without_technology_transfer,
                &value.currency,
                sign * minor_units,
            );
        }
    }

    /// Returns the localization rate weighted by signed value, per currency.
    pub fn weighted_localization_by_currency(&self) -> BTreeMap<String, u32> {
        self.contracted_value
            .iter()
            .filter(|(_, value)| **value > 0)
            .map(|(currency, value)| {
                let weighted = self
                    .localization_weighted_value
                    .get(currency)
                    .copied()
                    .unwrap_or(0);
                (currency.clone(), (weighted / value).clamp(0, 10_000) as u32)
            })
            .collect()
    }

    /// The currency with the largest signed value (ties to the first
    /// code), whose weighted rate is the portfolio's headline figure.
    /// Values are never mixed across currencies.
    pub fn main_currency(&self) -> Option<&str> {
        self.contracted_value
            .iter()
            .filter(|(_, value)| **value > 0)
            .max_by(|left, right| left.1.cmp(right.1).then(right.0.cmp(left.0)))
            .map(|(currency, _)| currency.as_str())
    }

    /// The localization rate weighted by signed value in the main currency.
    pub fn headline_localization_bp(&self) -> u32 {
        self.main_currency()
            .and_then(|currency| {
                self.weighted_localization_by_currency()
                    .get(currency)
                    .copied()
            })
            .unwrap_or(0)
    }
}

fn add_to(totals: &mut BTreeMap<String, i128>, currency: &str, amount: i128) {
    let total = totals.entry(currency.to_owned()).or_default();
    *total += amount;
    if *total == 0 {
        totals.remove(currency);
    }
}

#[cfg(test)]
mod tests;
