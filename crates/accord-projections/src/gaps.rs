//! Positions hold one event each, gap-free, except where a NATS replica
//! quarantined a message that was not a valid record. Before events are
//! folded, a gap between them is checked against the log: allowed only
//! where every missing position is a quarantined message.

use accord_store::EventLog;

use crate::ProjectionError;

/// Checks that the records at `positions` (increasing) continue the
/// position `after`, allowing only quarantined positions in between.
pub(crate) async fn check(
    log: &dyn EventLog,
    after: u64,
    positions: &[u64],
) -> Result<(), ProjectionError> {
    let mut expected = after + 1;
    for &position in positions {
        if position < expected {
            // Already folded (a batch read twice): the fold skips it.
            continue;
        }
        if position > expected {
            let missing = position - expected;
            let quarantined = log.quarantined_between(expected, position - 1).await?;
            if quarantined != missing {
                return Err(ProjectionError::Inconsistent(format!(
                    "expected position {expected} next, got {position}"
                )));
            }
        }
        expected = position + 1;
    }
    Ok(())
}
