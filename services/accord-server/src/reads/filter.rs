//! Which events a read or subscription carries.

use std::collections::HashSet;
use std::sync::Arc;

use parking_lot::Mutex;

use accord_domain::{
    Event, RecordedEvent, ValidationError, validate_agreement_id, validate_country,
};
use accord_projections::PositionQuery;
use accord_proto::v1;
use accord_store::{ClearingMap, EventLog};

use crate::error::ApiError;

/// Bytes of buyer countries the server remembers for filters (about
/// 100,000 agreements with ids of 30 characters).
const BUYER_COUNTRY_BYTES: usize = 16 * 1024 * 1024;

/// The buyer country of recently filtered agreements, shared by every
/// stream of a server (an agreement's buyer never changes), bounded.
pub(crate) struct BuyerCountries(Mutex<ClearingMap<String>>);

impl Default for BuyerCountries {
    fn default() -> Self {
        Self(Mutex::new(ClearingMap::new(
            BUYER_COUNTRY_BYTES,
            String::len,
        )))
    }
}

/// A checked `SubscriptionFilter`; empty lists match everything.
pub(crate) struct EventFilter {
    event_types: HashSet<String>,
    agreement_ids: HashSet<String>,
    countries: HashSet<String>,
    buyer_countries: Arc<BuyerCountries>,
}

impl EventFilter {
    /// Checks the filter's values (known event types, valid countries).
    pub(crate) fn new(
        filter: Option<v1::SubscriptionFilter>,
        buyer_countries: Arc<BuyerCountries>,
    ) -> Result<Self, ApiError> {
        let filter = filter.unwrap_or_default();
        for (index, event_type) in filter.event_types.iter().enumerate() {
            if !Event::TYPES.contains(&event_type.as_str()) {
                return Err(ValidationError::new(
                    format!("filter.event_types[{index}]"),
                    format!(
                        "unknown event type {}; known: {}",
                        accord_domain::quoted(event_type),
                        Event::TYPES.join(", ")
                    ),
                )
                .into());
            }
        }
        for (index, agreement_id) in filter.agreement_ids.iter().enumerate() {
            validate_agreement_id(agreement_id).map_err(|error| {
                ValidationError::new(format!("filter.agreement_ids[{index}]"), error.reason)
            })?;
        }
        for (index, country) in filter.countries.iter().enumerate() {
            validate_country(&format!("filter.countries[{index}]"), country)?;
        }
        for (field, list) in [
            ("filter.event_types", filter.event_types.len()),
            ("filter.agreement_ids", filter.agreement_ids.len()),
            ("filter.countries", filter.countries.len()),
        ] {
            accord_domain::validate_list_len(field, list)?;
        }
        Ok(Self {
            event_types: filter.event_types.into_iter().collect(),
            agreement_ids: filter.agreement_ids.into_iter().collect(),
            countries: filter.countries.into_iter().collect(),
            buyer_countries,
        })
    }

    /// What the log's position index can answer of this filter (nothing
    /// when the filter names agreements: their streams answer it).
    pub(crate) fn position_query(&self) -> PositionQuery {
        if !self.agreement_ids.is_empty() {
            return PositionQuery::default();
        }
        PositionQuery {
            event_types: sorted(&self.event_types),
            buyer_countries: sorted(&self.countries),
        }
    }

    /// The agreements the filter names (none: any agreement).
    pub(crate) fn agreement_ids(&self) -> Vec<String> {
        sorted(&self.agreement_ids)
    }

    /// Returns true when the event passes every list of the filter.
    pub(crate) async fn matches(
        &self,
        log: &dyn EventLog,
        event: &RecordedEvent,
    ) -> Result<bool, ApiError> {
        if !self.event_types.is_empty() && !self.event_types.contains(event.event.event_type()) {
            return Ok(false);
        }
        if !self.agreement_ids.is_empty() && !self.agreement_ids.contains(&event.agreement_id) {
            return Ok(false);
        }
        if self.countries.is_empty() {
            return Ok(true);
        }
        let country = self.buyer_country(log, event).await?;
        Ok(self.countries.contains(&country))
    }

    async fn buyer_country(
        &self,
        log: &dyn EventLog,
        event: &RecordedEvent,
    ) -> Result<String, ApiError> {
        if let Event::Announced(announced) = &event.event {
            return Ok(announced.buyer.country.clone());
        }
        if let Some(country) = self.lock().get(&event.agreement_id) {
            return Ok(country.clone());
        }
        let announcement = log.read_stream(&event.agreement_id, 1, 1).await?;
        let country = match announcement.first().map(|first| &first.event) {
            Some(Event::Announced(announced)) => announced.buyer.country.clone(),
            _ => String::new(),
        };
        self.lock()
            .insert(event.agreement_id.clone(), country.clone());
        Ok(country)
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, ClearingMap<String>> {
        self.buyer_countries.0.lock()
    }
}

fn sorted(values: &HashSet<String>) -> Vec<String> {
    let mut sorted: Vec<String> = values.iter().cloned().collect();
    sorted.sort_unstable();
    sorted
}
