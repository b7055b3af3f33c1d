//! Operations: where the log and what follows it stand, and the operator's
//! actions (verify the log, rebuild the read models) with live progress.

use accord_proto::v1;
use maud::{Markup, html};

use crate::console::format;

/// What the operations view shows.
pub(crate) struct Operations {
    /// Where the log's head is.
    pub(crate) head: u64,
    /// The log's figures (`GetStats`): for operators only, as over gRPC.
    pub(crate) stats: Option<v1::GetStatsResponse>,
    pub(crate) subscriptions: i64,
    pub(crate) groups: Result<Vec<v1::ConsumerGroupInfo>, String>,
    pub(crate) healthy: bool,
    pub(crate) operator: bool,
    /// The transparency log's latest checkpoint: its size, the witness
    /// cosignatures it carries, and the quorum configured (0: no witness).
    pub(crate) witnessed: Option<(u64, usize, i64)>,
}

/// The operations view.
pub(crate) fn render(operations: &Operations) -> Markup {
    html! {
        h1 { "Operations" }
        dl class="facts" id="operations" data-head=(operations.head) {
            dt { "Health" } dd id="health" { @if operations.healthy { "serving" } @else { "NOT SERVING: the store failed (see the server log)" } }
            dt { "Head position" } dd id="head" { (format::count(operations.head)) }
            @if let Some((size, cosignatures, quorum)) = operations.witnessed {
                dt { "Transparency checkpoint" }
                dd id="witnessed" {
                    (format::count(size)) " entries"
                    @if quorum > 0 {
                        ", cosigned by " (cosignatures) " of the " (quorum) " witnesses needed"
                        @if i64::try_from(cosignatures).unwrap_or(i64::MAX) >= quorum { " (quorum met)" } @else { " (quorum not met)" }
                    }
                }
            }
            dt { "Events per second" } dd { span id="rate" { "…" } " " svg id="rate-chart" class="spark" viewBox="0 0 120 24" role="img" aria-label="events per second, last two minutes" {} }
            @if let Some(stats) = &operations.stats {
                dt { "Agreements" } dd { (format::count(stats.agreement_count)) }
                @for projection in &stats.projections {
                    dt { "Read models (" (projection.name) ")" } dd { "at position " (format::count(projection.checkpoint)) ", " (format::count(projection.lag)) " behind the log" }
                }
                dt { "Open subscriptions" } dd { (format::count(u64::try_from(operations.subscriptions).unwrap_or(0))) }
                dt { "Storage" } dd { (format::bytes(stats.disk_bytes)) }
                dt { "Signed checkpoint" } dd { (stats.checkpoint.as_ref().map_or_else(|| "none".to_owned(), |checkpoint| format!("position {}", format::count(checkpoint.position)))) }
            }
        }
        @if operations.stats.is_none() {
            p id="operator-only" { "The store's figures (read models, storage, checkpoint) are for the operator role, as GetStats is over gRPC." }
        }
        h2 { "Consumer groups" }
        @match &operations.groups {
            Err(error) => p { "Not available: " (error) },
            Ok(groups) if groups.is_empty() => p { "None." },
            Ok(groups) => div class="table-wrap" {
                table id="groups" {
                    thead { tr {
                        th scope="col" { "Group" } th scope="col" { "Checkpoint" } th scope="col" { "Lag" }
                        th scope="col" { "Members" } th scope="col" { "In flight" } th scope="col" { "Parked" }
                    } }
                    tbody {
                        @for group in groups {
                            tr {
                                th scope="row" { (group.name) }
                                td class="num" { (format::count(group.checkpoint)) }
                                td class="num" { (format::count(group.lag)) }
                                td class="num" { (group.members) }
                                td class="num" { (format::count(group.in_flight)) }
                                td class="num" { (format::count(group.parked)) }
                            }
                        }
                    }
                }
            },
        }
        @if operations.operator {
            h2 { "Actions" }
            p {
                button type="button" data-action="verify" { "Verify the log" }
                " "
                button type="button" data-action="rebuild" { "Rebuild the read models" }
            }
            p { progress id="action-progress" max="100" value="0" hidden {} }
            p id="action-status" role="status" aria-live="polite" {}
        }
    }
}
