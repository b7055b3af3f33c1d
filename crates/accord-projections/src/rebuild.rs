//! Rebuilds the read models from position 1 into a fresh generation while
//! the active one keeps serving, then swaps them atomically. The log is
//! read ahead on a task of its own, and the rebuilt views are written on a
//! thread of their own (see [`crate::Rebuild`]) while the next are folded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_store::{EventLog, StoreError, decode_record};

use tokio::sync::mpsc;

use crate::read_ahead::{AbortOnDrop, READ_AHEAD, read_ahead};
use crate::{ProjectionError, ReadModels};

/// Shortest time between two progress reports.
const REPORT_EVERY: Duration = Duration::from_millis(200);

/// Where a rebuild stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RebuildStatus {
    /// Position the rebuilt read models have reached.
    pub position: u64,
    /// Head of the log.
    pub head_position: u64,
    /// Events per second since the rebuild started.
    pub events_per_second: f64,
    /// True once the rebuilt read models serve queries.
    pub done: bool,
}

/// Rebuilds every read model from the log; `progress` hears about it at
/// most every 200 ms and once when done.
pub async fn rebuild(
    log: Arc<dyn EventLog>,
    read_models: Arc<ReadModels>,
    mut progress: impl FnMut(RebuildStatus),
) -> Result<RebuildStatus, ProjectionError> {
    let models = read_models.clone();
    let mut rebuild = tokio::task::spawn_blocking(move || models.start_rebuild()).await??;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let status = |position: u64, head: u64, done: bool| RebuildStatus {
        position,
        head_position: head,
        events_per_second: position as f64 / started.elapsed().as_secs_f64().max(f64::EPSILON),
        done,
    };
    let (batches, mut received) = mpsc::channel(READ_AHEAD);
    let _reader = AbortOnDrop(tokio::spawn(read_ahead(log.clone(), 1, batches)));
    loop {
        let records = match received.recv().await {
            Some(records) => records?,
            None => return Err(ProjectionError::ReaderStopped),
        };
        if records.is_empty() {
            // At the head of the log.
            let models = read_models.clone();
            let (swapped, returned) = tokio::task::spawn_blocking(move || {
                let swapped = models.swap_in(&mut rebuild);
                (swapped, rebuild)
            })
            .await?;
            rebuild = returned;
            if swapped? {
                let done = status(rebuild.position(), log.head(), true);
                progress(done);
                return Ok(done);
            }
            // The active read models moved past the rebuilt ones: read on.
            continue;
        }
        crate::gaps::check(log.as_ref(), rebuild.position(), &records).await?;
        let (applied, returned) = tokio::task::spawn_blocking(move || {
            let applied = records
                .iter()
                .map(|record| decode_record(&record.bytes).map(|decoded| decoded.event))
                .collect::<Result<Vec<_>, StoreError>>()
                .map_err(ProjectionError::from)
                .and_then(|events| rebuild.apply(&events));
            (applied, rebuild)
        })
        .await?;
        rebuild = returned;
        applied?;
        if last_report.elapsed() >= REPORT_EVERY {
            progress(status(rebuild.position(), log.head(), false));
            last_report = Instant::now();
        }
    }
}
