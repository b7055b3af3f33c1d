//! At open, read models must follow the log they are served beside: never
//! ahead of its head, and at their checkpoint the same event as the log.
//! A power cut that kept one file's writes and not the other's, a data
//! directory restored from different backups, or a log replaced by an
//! import can break that; such read models are dropped and rebuilt.

use accord_store::EventLog;

use crate::{ProjectionError, ReadModels};

/// Why read models do not follow a log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Divergence {
    /// The checkpoint is beyond the log's head.
    AheadOfLog {
        /// The read models' checkpoint.
        checkpoint: u64,
        /// The log's head.
        head: u64,
    },
    /// The log holds another event at the checkpoint's position.
    OtherEvent {
        /// The read models' checkpoint.
        checkpoint: u64,
    },
}

impl std::fmt::Display for Divergence {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Divergence::AheadOfLog { checkpoint, head } => write!(
                formatter,
                "checkpoint {checkpoint} is beyond the log's head {head}"
            ),
            Divergence::OtherEvent { checkpoint } => write!(
                formatter,
                "the log holds another event at the checkpoint {checkpoint}"
            ),
        }
    }
}

/// Returns how `read_models` diverge from `log`, if they do.
async fn divergence(
    read_models: &ReadModels,
    log: &dyn EventLog,
) -> Result<Option<Divergence>, ProjectionError> {
    let checkpoint = read_models.checkpoint();
    if checkpoint == 0 {
        return Ok(None);
    }
    let head = log.head();
    if checkpoint > head {
        return Ok(Some(Divergence::AheadOfLog { checkpoint, head }));
    }
    // Read models written before the checkpoint's event id was kept cannot
    // be compared; the position check above is all there is for them.
    let Some(expected) = read_models.checkpoint_event_id()? else {
        return Ok(None);
    };
    let at_checkpoint = log.read_log(checkpoint, 1).await?;
    match at_checkpoint.first() {
        Some(event) if event.position == checkpoint && event.event_id == expected => Ok(None),
        _ => Ok(Some(Divergence::OtherEvent { checkpoint })),
    }
}

/// Drops read models that do not follow `log`, so that the projector
/// rebuilds them from position 1; returns what was wrong.
pub async fn reconcile(
    read_models: &ReadModels,
    log: &dyn EventLog,
) -> Result<Option<Divergence>, ProjectionError> {
    let found = divergence(read_models, log).await?;
    if let Some(divergence) = &found {
        tracing::warn!(
            %divergence,
            checkpoint = read_models.checkpoint(),
            head = log.head(),
            "read models do not follow the log; rebuilding them from the log"
        );
        read_models.reset()?;
    }
    Ok(found)
}
