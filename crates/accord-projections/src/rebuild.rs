//! Rebuilds the read models from position 1 into a fresh generation while
//! the active one keeps serving, then swaps them atomically. The log is
//! read and decoded ahead on tasks of their own, and the rebuilt views are
//! written on a thread of their own (see [`crate::Rebuild`]) while the next
//! are folded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_store::EventLog;

use tokio::sync::mpsc;

use crate::read_ahead::{AbortOnDrop, READ_AHEAD, decode_ahead, read_ahead};
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
    let (batches, raw) = mpsc::channel(READ_AHEAD);
    let _reader = AbortOnDrop(tokio::spawn(read_ahead(log.clone(), 1, batches)));
    // One decoded batch waits while the fold applies another: decoded
    // events take several times the bytes of the records they came from.
    let (decoded, mut received) = mpsc::channel(1);
    let _decoder = AbortOnDrop(tokio::spawn(decode_ahead(raw, decoded)));
    loop {
        let events = match received.recv().await {
            Some(events) => events?,
            None => return Err(ProjectionError::ReaderStopped),
        };
        if events.is_empty() {
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
        let positions: Vec<u64> = events.iter().map(|event| event.position).collect();
        crate::gaps::check(log.as_ref(), rebuild.position(), &positions).await?;
        let (applied, returned) = tokio::task::spawn_blocking(move || {
            let applied = rebuild.apply(&events);
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
