//! Agreements: a list filtered by buyer and supplier country, sector and
//! stage, paged; an agreement's page with its events as a timeline and its
//! localization progress, as it stands now or as of an earlier position.

use accord_proto::v1;
use maud::{Markup, html};

use crate::console::format;
use crate::console::views::log::event_summary;

/// The list's filters, as the query string carries them.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub(crate) struct ListQuery {
    #[serde(default)]
    pub(crate) buyer: String,
    #[serde(default)]
    pub(crate) supplier: String,
    #[serde(default)]
    pub(crate) sector: String,
    #[serde(default)]
    pub(crate) stage: String,
    #[serde(default)]
    pub(crate) page: String,
}

impl ListQuery {
    /// The request the list is read with.
    pub(crate) fn request(&self) -> v1::ListAgreementsRequest {
        let stage = match self.stage.as_str() {
            "announced" => v1::AgreementStage::Announced as i32,
            "signed" => v1::AgreementStage::Signed as i32,
            "delivering" => v1::AgreementStage::Delivering as i32,
            "delivered" => v1::AgreementStage::Delivered as i32,
            _ => 0,
        };
        v1::ListAgreementsRequest {
            buyer_country: self.buyer.trim().to_uppercase(),
            supplier_country: self.supplier.trim().to_uppercase(),
            sector: self.sector.trim().to_owned(),
            stage,
            page_size: 25,
            page_token: self.page.clone(),
            min_position: 0,
        }
    }

    fn with_page(&self, page: &str) -> String {
        let mut query = url_query(&[
            ("buyer", &self.buyer),
            ("supplier", &self.supplier),
            ("sector", &self.sector),
            ("stage", &self.stage),
        ]);
        if !page.is_empty() {
            query.push_str(if query.is_empty() { "" } else { "&" });
            query.push_str("page=");
            query.push_str(&format::url_component(page));
        }
        format!("/agreements?{query}")
    }
}

fn url_query(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(name, value)| format!("{name}={}", format::url_component(value)))
        .collect::<Vec<_>>()
        .join("&")
}

fn filters(query: &ListQuery) -> Markup {
    html! {
        form class="filters" method="get" action="/agreements" {
            label { "Buyer country " input name="buyer" value=(query.buyer) size="3" maxlength="2" autocomplete="off"; }
            label { "Supplier country " input name="supplier" value=(query.supplier) size="3" maxlength="2" autocomplete="off"; }
            label { "Sector " input name="sector" value=(query.sector) size="12" maxlength="64" autocomplete="off"; }
            label { "Stage "
                select name="stage" {
                    @for (value, label) in [("", "any"), ("announced", "announced"), ("signed", "signed"), ("delivering", "delivering"), ("delivered", "delivered")] {
                        option value=(value) selected[query.stage == value] { (label) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
    }
}

/// The list view.
pub(crate) fn list(query: &ListQuery, page: &v1::ListAgreementsResponse) -> Markup {
    html! {
        h1 { "Agreements" }
        (filters(query))
        @if page.agreements.is_empty() {
            p { "No agreement matches." }
        } @else {
            div class="table-wrap" {
                table id="agreements" {
                    caption { "Agreements, by id" }
                    thead {
                        tr {
                            th scope="col" { "Agreement" }
                            th scope="col" { "Buyer" }
                            th scope="col" { "Supplier" }
                            th scope="col" { "Sector" }
                            th scope="col" { "Stage" }
                            th scope="col" { "Value" }
                            th scope="col" { "Localization" }
                        }
                    }
                    tbody {
                        @for agreement in &page.agreements {
                            tr {
                                th scope="row" {
                                    a href=(format!("/agreements/{}", format::url_component(&agreement.agreement_id))) { (agreement.title) }
                                    br; small { (agreement.agreement_id) }
                                }
                                td { (agreement.buyer.as_ref().map_or("", |party| party.country.as_str())) }
                                td { (agreement.supplier.as_ref().map_or("", |party| party.country.as_str())) }
                                td { (agreement.sector) }
                                td { (format::stage(agreement.stage)) }
                                td class="num" { (agreement.value.as_ref().map_or_else(|| "—".to_owned(), format::money)) }
                                td class="num" { (format::percent(agreement.localization_rate_bp)) }
                            }
                        }
                    }
                }
            }
        }
        nav class="pager" aria-label="Pages" {
            @if !query.page.is_empty() {
                a href=(query.with_page("")) { "First page" }
            }
            @if !page.next_page_token.is_empty() {
                a href=(query.with_page(&page.next_page_token)) rel="next" { "Next page" }
            }
        }
    }
}

/// An agreement's page: its state (now, or as of `as_of`), its localization
/// progress and its events as a timeline.
/// `earlier` events of the agreement come before those of its timeline.
pub(crate) fn detail(
    agreement: &v1::Agreement,
    events: &[v1::RecordedEvent],
    as_of: u64,
    earlier: u64,
    included: Option<(u64, usize)>,
) -> Markup {
    let quantity = agreement.quantity.unwrap_or(0);
    let local_share = agreement
        .local_units
        .saturating_mul(10_000)
        .checked_div(quantity)
        .map_or(0, |share| share.min(10_000) as u32);
    html! {
        h1 { (agreement.title) }
        p class="lede" {
            (agreement.agreement_id) " · " (format::stage(agreement.stage))
            @if as_of > 0 { " · as of log position " (format::count(as_of)) }
        }
        form class="filters" method="get" action=(format!("/agreements/{}", format::url_component(&agreement.agreement_id))) {
            label { "As of log position " input name="as_of" type="number" min="0" value=(if as_of > 0 { as_of.to_string() } else { String::new() }); }
            button type="submit" { "Show" }
            @if as_of > 0 { a href=(format!("/agreements/{}", format::url_component(&agreement.agreement_id))) { "Now" } }
        }
        dl class="facts" {
            dt { "Buyer" } dd { (agreement.buyer.as_ref().map_or(String::new(), |party| format!("{} ({})", party.name, party.country))) }
            dt { "Supplier" } dd { (agreement.supplier.as_ref().map_or(String::new(), |party| format!("{} ({})", party.name, party.country))) }
            dt { "Sector" } dd { (agreement.sector) }
            dt { "Product" } dd { (agreement.product) }
            dt { "Value" } dd { (agreement.value.as_ref().map_or_else(|| "—".to_owned(), format::money)) }
            dt { "Units delivered" } dd { (format::count(agreement.delivered_units)) " of " (format::count(quantity)) }
            dt { "Localization" } dd { (format::percent(agreement.localization_rate_bp)) @if !agreement.facility.is_empty() { " at " (agreement.facility) } }
            dt { "Technology transfer" } dd {
                @if agreement.technology_transfer.is_empty() { "none recorded" }
                @else { (agreement.technology_transfer.join(", ")) }
            }
        }
        h2 { "Localization progress" }
        p {
            label for="local-units" { "Units made locally: " (format::count(agreement.local_units)) " of " (format::count(quantity)) }
        }
        progress id="local-units" max="10000" value=(local_share) { (format::percent(local_share)) }
        @if let Some((size, cosignatures)) = included {
            p id="included" {
                "In the transparency log's checkpoint of " (format::count(size)) " entries"
                @if cosignatures > 0 { ", cosigned by " (cosignatures) " witnesses" }
                ". "
                a href=(format!("/agreements/{}/proof.json", format::url_component(&agreement.agreement_id))) download { "Download its proof bundle" }
                " (verify it offline with accordctl check-proof)."
            }
        }
        h2 { "Timeline" }
        @if earlier > 0 {
            p { "The latest " (format::count(events.len() as u64)) " events; " (format::count(earlier)) " earlier ones are not shown (see the log, or ReadAgreementHistory)." }
        }
        ol class="timeline" id="timeline" {
            @for event in events {
                li data-position=(event.position) {
                    span class="when" { (format::time(event.recorded_at.as_ref())) }
                    " "
                    strong { (event.event_type.trim_start_matches("agreement.")) }
                    " — " (event_summary(event))
                    br;
                    small {
                        "position " (format::count(event.position)) " · version " (event.version)
                        @if let Some(actor) = event.metadata.as_ref().map(|metadata| metadata.actor.as_str()).filter(|actor| !actor.is_empty()) {
                            " · by " (actor)
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_a_request_and_links_keep_them() {
        let query = ListQuery {
            buyer: "kz".into(),
            stage: "signed".into(),
            ..Default::default()
        };
        let request = query.request();
        assert_eq!(request.buyer_country, "KZ");
        assert_eq!(request.stage, v1::AgreementStage::Signed as i32);
        assert_eq!(
            query.with_page("a b"),
            "/agreements?buyer=kz&stage=signed&page=a%20b"
        );
    }
}
