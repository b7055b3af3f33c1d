//! Positions a client names must be in the log: a stream started after a
//! position beyond the head would skip events as if the client had seen
//! them, and a query would wait for events that may never come. A query's
//! `min_position` may be a little ahead (waiting for the next events, up to
//! the deadline, is a way to long-poll), [`MIN_POSITION_AHEAD`] at most.

use accord_domain::{Timestamp, ValidationError};
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

/// The position a stream that starts at `time` (named `field`) starts at:
/// the first event recorded at or after it, or the head + 1 when none is
/// yet. `recorded_at` never decreases along the log, so a binary search
/// over positions finds it in about log2(head) reads of one event.
pub(crate) async fn first_recorded_at_or_after(
    log: &dyn EventLog,
    field: &str,
    time: &prost_types::Timestamp,
) -> Result<u64, ApiError> {
    let time = accord_proto::timestamp_to_domain(time);
    accord_domain::validate_instant(field, time)?;
    first_at_or_after(log, time).await
}

async fn first_at_or_after(log: &dyn EventLog, time: Timestamp) -> Result<u64, ApiError> {
    // The answer is in `low..=high`; `head + 1` means no event yet.
    let (mut low, mut high) = (1, log.head() + 1);
    while low < high {
        let middle = low + (high - low) / 2;
        // The first event at or after `middle` (positions without one, on
        // NATS, are passed over).
        let found = log.read_log(middle, 1).await?;
        match found.first() {
            Some(event) if event.recorded_at < time && event.position < high => {
                low = event.position + 1;
            }
            _ => high = middle,
        }
    }
    Ok(low)
}
