//! Countries: per buyer country what was contracted and delivered, how
//! much of it is made locally, and how much was signed with no technology
//! transfer, with one picture that answers "production hub or consumer
//! market?".

use accord_proto::v1;
use maud::{Markup, html};

use crate::console::format;

/// In the currency with the largest signed value (amounts are never added
/// across currencies): the share signed with no localization or technology
/// transfer, in basis points.
fn dependent_share_bp(portfolio: &v1::CountryPortfolio) -> Option<u32> {
    let largest = portfolio
        .contracted_value
        .iter()
        .max_by_key(|money| money.minor_units)?;
    if largest.minor_units <= 0 {
        return None;
    }
    let dependent = portfolio
        .value_without_technology_transfer
        .iter()
        .find(|money| money.currency == largest.currency)
        .map_or(0, |money| money.minor_units);
    Some(((dependent as i128 * 10_000) / largest.minor_units as i128).clamp(0, 10_000) as u32)
}

/// What the picture says about a country.
fn verdict(localization_bp: u32, dependent_bp: u32) -> &'static str {
    match (localization_bp >= 2_500, dependent_bp >= 5_000) {
        (true, false) => "becoming a production hub",
        (true, true) => "mixed: local production beside imports",
        (false, true) => "a consumer market",
        (false, false) => "early: little signed either way",
    }
}

/// The scatter: localization (up) against the share signed with no
/// technology transfer (right), one labelled point per country.
fn chart(portfolios: &[v1::CountryPortfolio]) -> Markup {
    const W: f64 = 480.0;
    const H: f64 = 300.0;
    const LEFT: f64 = 56.0;
    const BOTTOM: f64 = 40.0;
    const TOP: f64 = 16.0;
    const RIGHT: f64 = 24.0;
    let x = |bp: u32| LEFT + f64::from(bp) / 10_000.0 * (W - LEFT - RIGHT);
    let y = |bp: u32| H - BOTTOM - f64::from(bp) / 10_000.0 * (H - BOTTOM - TOP);
    let points: Vec<(&str, u32, u32)> = portfolios
        .iter()
        .filter_map(|portfolio| {
            dependent_share_bp(portfolio).map(|dependent| {
                (
                    portfolio.country.as_str(),
                    portfolio.weighted_localization_bp,
                    dependent,
                )
            })
        })
        .collect();
    let description = points
        .iter()
        .map(|(country, localization, dependent)| {
            format!(
                "{country}: {} localized, {} signed without technology transfer",
                format::percent(*localization),
                format::percent(*dependent)
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    html! {
        svg class="chart" viewBox=(format!("0 0 {W} {H}")) role="img" aria-labelledby="hub-title hub-desc" {
            title id="hub-title" { "Production hub or consumer market?" }
            desc id="hub-desc" { (description) }
            // Quadrants: top-left is where production hubs sit.
            rect class="hub" x=(LEFT) y=(TOP) width=(x(5_000) - LEFT) height=(y(2_500) - TOP) {}
            rect class="market" x=(x(5_000)) y=(y(2_500)) width=(W - RIGHT - x(5_000)) height=(H - BOTTOM - y(2_500)) {}
            text class="quadrant" x=(LEFT + 6.0) y=(TOP + 16.0) { "production hub" }
            text class="quadrant" x=(W - RIGHT - 6.0) y=(y(2_500) + 16.0) text-anchor="end" { "consumer market" }
            line class="axis" x1=(LEFT) y1=(H - BOTTOM) x2=(W - RIGHT) y2=(H - BOTTOM) {}
            line class="axis" x1=(LEFT) y1=(TOP) x2=(LEFT) y2=(H - BOTTOM) {}
            @for tick in [0u32, 2_500, 5_000, 7_500, 10_000] {
                text class="tick" x=(x(tick)) y=(H - BOTTOM + 16.0) text-anchor="middle" { (format::percent(tick)) }
                text class="tick" x=(LEFT - 6.0) y=(y(tick) + 4.0) text-anchor="end" { (format::percent(tick)) }
            }
            text class="label" x=((LEFT + W - RIGHT) / 2.0) y=(H - 4.0) text-anchor="middle" { "signed value without technology transfer" }
            text class="label" transform=(format!("translate(14 {}) rotate(-90)", (TOP + H - BOTTOM) / 2.0)) text-anchor="middle" { "localization" }
            @for (country, localization, dependent) in &points {
                g class="point" data-country=(country) {
                    circle cx=(x(*dependent)) cy=(y(*localization)) r="6" {}
                    // Labels near the right edge go on the point's left.
                    @if *dependent > 8_000 {
                        text x=(x(*dependent) - 9.0) y=(y(*localization) - 8.0) text-anchor="end" { (country) }
                    } @else {
                        text x=(x(*dependent) + 9.0) y=(y(*localization) + 4.0) { (country) }
                    }
                }
            }
        }
    }
}

/// The countries view.
pub(crate) fn render(portfolios: &[v1::CountryPortfolio], head: u64) -> Markup {
    html! {
        h1 { "Countries" }
        p class="lede" {
            "Is a buyer country becoming a production hub or staying a consumer market? "
            "Localization is weighted by signed value; amounts are shown per currency, never added across currencies."
        }
        @if portfolios.is_empty() {
            p { "No agreement has been recorded yet." }
        } @else {
            figure {
                (chart(portfolios))
                figcaption { "Each point is a buyer country: up is more of the signed value made locally, right is more of it signed with no technology transfer." }
            }
            div class="table-wrap" {
                table id="countries" data-head=(head) {
                    caption { "Buyer countries at log position " (format::count(head)) }
                    thead {
                        tr {
                            th scope="col" { "Country" }
                            th scope="col" { "Agreements" }
                            th scope="col" { "Contracted value" }
                            th scope="col" { "Units delivered / contracted" }
                            th scope="col" { "Localization" }
                            th scope="col" { "Signed without technology transfer" }
                            th scope="col" { "Reading" }
                        }
                    }
                    tbody {
                        @for portfolio in portfolios {
                            @let dependent = dependent_share_bp(portfolio).unwrap_or(0);
                            tr data-country=(portfolio.country) {
                                th scope="row" {
                                    a href=(format!("/agreements?buyer={}", portfolio.country)) { (portfolio.country) }
                                }
                                td class="num" { (format::count(portfolio.agreement_count)) }
                                td class="num" { (format::amounts(&portfolio.contracted_value)) }
                                td class="num" { (format::count(portfolio.delivered_units)) " / " (format::count(portfolio.contracted_units)) }
                                td class="num localization" { (format::percent(portfolio.weighted_localization_bp)) }
                                td class="num dependent" { (format::amounts(&portfolio.value_without_technology_transfer)) }
                                td { (verdict(portfolio.weighted_localization_bp, dependent)) }
                            }
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

    fn usd(minor_units: i64) -> v1::Money {
        v1::Money {
            currency: "USD".into(),
            minor_units,
        }
    }

    #[test]
    fn the_dependent_share_is_taken_within_the_largest_currency() {
        let portfolio = v1::CountryPortfolio {
            country: "UZ".into(),
            contracted_value: vec![usd(850_000_000_000)],
            value_without_technology_transfer: vec![usd(850_000_000_000)],
            ..Default::default()
        };
        assert_eq!(dependent_share_bp(&portfolio), Some(10_000));
        assert_eq!(verdict(0, 10_000), "a consumer market");
        assert_eq!(verdict(4_500, 0), "becoming a production hub");
        let empty = v1::CountryPortfolio::default();
        assert_eq!(dependent_share_bp(&empty), None);
    }
}
