//! Positions a client names must be in the log: a position beyond its head
//! would make a query wait for events that may never come, or a stream
//! skip events as if the client had seen them.

use accord_domain::ValidationError;
use accord_store::EventLog;

use crate::error::ApiError;

/// Refuses `position` (named `field`) when it is beyond the log's head; on
/// NATS the head is checked against the stream once this node's replica
/// has caught up, so a position written through another node is accepted.
pub(crate) async fn within_log(
    log: &dyn EventLog,
    field: &str,
    position: u64,
) -> Result<(), ApiError> {
    if position <= log.head() {
        return Ok(());
    }
    let head = log.caught_up_head().await?;
    if position <= head {
        return Ok(());
    }
    Err(ValidationError::new(
        field,
        format!("position {position} is beyond the head of the log ({head})"),
    )
    .into())
}
