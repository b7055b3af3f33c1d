//! Positions hold one event each, gap-free, except where a NATS replica
//! quarantined a message that was not a valid record. Before events are
//! folded, a gap between them is checked against the log: allowed only
//! where every missing position is a quarantined message.

use accord_store::{EventLog, RawRecord};

use crate::ProjectionError;

/// Checks that `records` continue the position `after`, allowing only
/// quarantined positions in between.
pub(crate) async fn check(
    log: &dyn EventLog,
    after: u64,
    records: &[RawRecord],
) -> Result<(), ProjectionError> {
    let mut expected = after + 1;
    for record in records {
        if record.position < expected {
            // Already folded (a batch read twice): the fold skips it.
            continue;
        }
        if record.position > expected {
            let missing = record.position - expected;
            let quarantined = log
                .quarantined_between(expected, record.position - 1)
                .await?;
            if quarantined != missing {
                return Err(ProjectionError::Inconsistent(format!(
                    "expected position {expected} next, got {}",
                    record.position
                )));
            }
        }
        expected = record.position + 1;
    }
    Ok(())
}
