//! Positions a client names must be in the log: a stream started after a
//! position beyond the head would skip events as if the client had seen
//! them, and a query would wait for events that may never come. A query's
//! `min_position` may be a little ahead (waiting for the next events, up to
//! the deadline, is a way to long-poll), [`MIN_POSITION_AHEAD`] at most.

use accord_domain::ValidationError;
use accord_store::EventLog;

use crate::error::ApiError;

/// How far beyond the head a query's `min_position` may be.
pub(crate) const MIN_POSITION_AHEAD: u64 = 10_000;

/// Refuses `position` (named `field`) when it is more than `ahead` beyond
/// the log's head; on NATS the head is checked against the stream once this
/// node's replica has caught up, so a position written through another node
/// is accepted.
pub(crate) async fn within_log(
    log: &dyn EventLog,
    field: &str,
    position: u64,
    ahead: u64,
) -> Result<(), ApiError> {
    if position <= log.head().saturating_add(ahead) {
        return Ok(());
    }
    let head = log.caught_up_head().await?;
    if position <= head.saturating_add(ahead) {
        return Ok(());
    }
    let limit = match ahead {
        0 => format!("the head of the log ({head})"),
        _ => format!("{ahead} beyond the head of the log ({head})"),
    };
    Err(ValidationError::new(field, format!("position {position} is beyond {limit}")).into())
}
