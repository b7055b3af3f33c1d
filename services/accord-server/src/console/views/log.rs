//! The log: its latest events, live, filtered by event type, agreement and
//! buyer country, each linked to its agreement.

use accord_proto::v1;
use accord_proto::v1::recorded_event::Payload;
use maud::{Markup, html};

use crate::console::format;

/// The log view's filters, as the query string carries them.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub(crate) struct LogQuery {
    #[serde(default, rename = "type")]
    pub(crate) event_type: String,
    #[serde(default)]
    pub(crate) agreement: String,
    #[serde(default)]
    pub(crate) country: String,
}

impl LogQuery {
    /// The filter as `Subscribe` takes it.
    pub(crate) fn filter(&self) -> v1::SubscriptionFilter {
        let one = |value: &str| {
            let value = value.trim();
            if value.is_empty() {
                Vec::new()
            } else {
                vec![value.to_owned()]
            }
        };
        v1::SubscriptionFilter {
            event_types: one(&self.event_type),
            agreement_ids: one(&self.agreement),
            countries: one(&self.country.to_uppercase()),
        }
    }
}

/// What an event says, in a line.
pub(crate) fn event_summary(event: &v1::RecordedEvent) -> String {
    match &event.payload {
        Some(Payload::Announced(announced)) => format!(
            "{} announced{}",
            announced.title,
            announced
                .value
                .as_ref()
                .map(|value| format!(", {}", format::money(value)))
                .unwrap_or_default()
        ),
        Some(Payload::Signed(signed)) => {
            if signed.signatories.is_empty() {
                "signed".to_owned()
            } else {
                format!("signed by {}", signed.signatories.join(", "))
            }
        }
        Some(Payload::DeliveryRecorded(delivery)) => {
            format!("{} units delivered", format::count(delivery.units))
        }
        Some(Payload::LocalizationRecorded(localization)) => format!(
            "localization {}{}",
            format::percent(localization.localization_rate_bp),
            if localization.technology_transfer.is_empty() {
                String::new()
            } else {
                format!(
                    ", technology transfer: {}",
                    localization.technology_transfer.join(", ")
                )
            }
        ),
        None => String::new(),
    }
}

/// One row of the log table.
pub(crate) fn row(event: &v1::RecordedEvent) -> Markup {
    html! {
        tr data-position=(event.position) {
            td class="num" { (format::count(event.position)) }
            td { (format::time(event.recorded_at.as_ref())) }
            td { (event.event_type) }
            td { a href=(format!("/agreements/{}", format::url_component(&event.agreement_id))) { (event.agreement_id) } }
            td { (event_summary(event)) }
        }
    }
}

/// The log view: the filters and the latest events, newest first.
pub(crate) fn render(query: &LogQuery, events: &[v1::RecordedEvent], head: u64) -> Markup {
    html! {
        h1 { "Log" }
        form class="filters" method="get" action="/log" {
            label { "Event type "
                select name="type" {
                    @for (value, label) in [("", "any"), ("agreement.announced", "announced"), ("agreement.signed", "signed"), ("agreement.delivery_recorded", "delivery recorded"), ("agreement.localization_recorded", "localization recorded")] {
                        option value=(value) selected[query.event_type == value] { (label) }
                    }
                }
            }
            label { "Agreement " input name="agreement" value=(query.agreement) size="16" autocomplete="off"; }
            label { "Buyer country " input name="country" value=(query.country) size="3" maxlength="2" autocomplete="off"; }
            button type="submit" { "Filter" }
        }
        p class="lede" { "Live: new events appear at the top as they are appended." }
        div class="table-wrap" {
            table id="log" data-head=(head) data-live-rows="true" {
                caption { "Latest events" }
                thead {
                    tr {
                        th scope="col" { "Position" }
                        th scope="col" { "Recorded" }
                        th scope="col" { "Type" }
                        th scope="col" { "Agreement" }
                        th scope="col" { "What happened" }
                    }
                }
                tbody {
                    @for event in events.iter().rev() {
                        (row(event))
                    }
                }
            }
        }
    }
}
