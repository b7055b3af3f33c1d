//! Which events a read or subscription carries.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use accord_domain::{
    Event, RecordedEvent, ValidationError, validate_agreement_id, validate_country,
};
use accord_proto::v1;
use accord_store::EventLog;

use crate::error::ApiError;

/// A checked `SubscriptionFilter`; empty lists match everything.
pub(crate) struct EventFilter {
    event_types: HashSet<String>,
    agreement_ids: HashSet<String>,
    countries: HashSet<String>,
    buyer_countries: Mutex<HashMap<String, String>>,
}

impl EventFilter {
    /// Checks the filter's values (known event types, valid countries).
    pub(crate) fn new(filter: Option<v1::SubscriptionFilter>) -> Result<Self, ApiError> {
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
            if list > accord_domain::limits::LIST_MAX_ENTRIES {
                return Err(ValidationError::new(field, "must have at most 100 entries").into());
            }
        }
        Ok(Self {
            event_types: filter.event_types.into_iter().collect(),
            agreement_ids: filter.agreement_ids.into_iter().collect(),
            countries: filter.countries.into_iter().collect(),
            buyer_countries: Mutex::new(HashMap::new()),
        })
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
        let mut countries = self.lock();
        if countries.len() > 100_000 {
            countries.clear();
        }
        countries.insert(event.agreement_id.clone(), country.clone());
        Ok(country)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, String>> {
        self.buyer_countries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}
