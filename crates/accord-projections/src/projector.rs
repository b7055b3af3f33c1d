//! The task that follows the log and keeps the read models at its head.
//!
//! A reader task reads ahead from the log while the projector folds what it
//! has read; the pending changes are committed (views and checkpoint in one
//! atomic batch) as soon as they reach the head of the log, when they touch
//! many agreements, or when a commit is due, so that a projector catching up
//! or rebuilding writes each view once for many of its events. Empty read
//! models are built from the whole log as a rebuild builds them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_store::EventLog;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

use crate::read_ahead::{AbortOnDrop, read_ahead};
use crate::{PendingChanges, ProjectionError, ReadModels};

/// Most agreements changed before a commit (one sled batch, held whole in
/// memory: see `REBUILD_PENDING_AGREEMENTS`).
const MAX_PENDING_AGREEMENTS: usize = 2_000;
/// Longest time between commits while catching up.
const MAX_COMMIT_INTERVAL: Duration = Duration::from_secs(1);
/// Pause after a failure before trying again.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// Starts projectors.
pub struct Projector;

/// A running projector.
pub struct ProjectorHandle {
    /// Cancelled by `stop`, or when the handle is dropped.
    stop: DropGuard,
    task: JoinHandle<()>,
    read_models: Arc<ReadModels>,
}

impl Projector {
    /// Follows `log` from the read models' checkpoint until stopped.
    pub fn spawn(log: Arc<dyn EventLog>, read_models: Arc<ReadModels>) -> ProjectorHandle {
        let stop = CancellationToken::new();
        let task = tokio::spawn(follow(log, read_models.clone(), stop.clone()));
        ProjectorHandle {
            stop: stop.drop_guard(),
            task,
            read_models,
        }
    }
}

impl ProjectorHandle {
    /// Stops following the log and flushes the read models.
    pub async fn stop(self) {
        drop(self.stop);
        if let Err(error) = self.task.await {
            tracing::error!(%error, "projector task failed");
        }
        let read_models = self.read_models;
        match tokio::task::spawn_blocking(move || read_models.flush()).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::error!(%error, "cannot flush the read models"),
            Err(error) => tracing::error!(%error, "flush task failed"),
        }
    }
}

async fn follow(log: Arc<dyn EventLog>, read_models: Arc<ReadModels>, stopped: CancellationToken) {
    while !stopped.is_cancelled() {
        if let Err(error) = project_until_stopped(&log, &read_models, &stopped).await {
            tracing::error!(%error, checkpoint = read_models.checkpoint(), "projector failed; retrying");
            tokio::select! {
                _ = tokio::time::sleep(RETRY_AFTER) => {}
                _ = stopped.cancelled() => {}
            }
        }
    }
}

async fn project_until_stopped(
    log: &Arc<dyn EventLog>,
    read_models: &Arc<ReadModels>,
    stopped: &CancellationToken,
) -> Result<(), ProjectionError> {
    if read_models.checkpoint() == 0
        && log.head() > 0
        && let Some(claim) = read_models.claim_rebuild()
    {
        build_from_empty(log, read_models, stopped).await?;
        drop(claim);
        if stopped.is_cancelled() {
            return Ok(());
        }
    }
    let (batches, mut received) = mpsc::channel(crate::read_ahead::READ_AHEAD);
    let reader = tokio::spawn(read_ahead(
        log.clone(),
        read_models.checkpoint() + 1,
        batches,
    ));
    let _stop_reader = AbortOnDrop(reader);
    let mut pending = read_models.begin();
    let mut last_commit = Instant::now();
    loop {
        let caught_up = pending.checkpoint() >= log.head();
        let due = last_commit.elapsed() >= MAX_COMMIT_INTERVAL
            || pending.changed_agreements() >= MAX_PENDING_AGREEMENTS;
        if pending.changed_agreements() > 0 && (caught_up || due) {
            let full = std::mem::replace(&mut pending, PendingChanges::new(0, 0));
            let models = read_models.clone();
            match tokio::task::spawn_blocking(move || models.commit(full)).await? {
                Ok(_) => {}
                // A rebuild swapped in newer read models: follow them instead.
                Err(ProjectionError::Superseded) => return Ok(()),
                Err(error) => return Err(error),
            }
            pending = read_models.begin();
            last_commit = Instant::now();
            continue;
        }
        let wait = if pending.changed_agreements() == 0 {
            Duration::from_secs(3_600)
        } else {
            MAX_COMMIT_INTERVAL.saturating_sub(last_commit.elapsed())
        };
        let events = tokio::select! {
            batch = received.recv() => match batch {
                Some(batch) => batch?,
                None => return Err(ProjectionError::ReaderStopped),
            },
            _ = tokio::time::sleep(wait) => continue,
            _ = stopped.cancelled() => {
                if pending.changed_agreements() > 0 {
                    match read_models.commit(pending) {
                        Ok(_) | Err(ProjectionError::Superseded) => {}
                        Err(error) => return Err(error),
                    }
                }
                return Ok(());
            }
        };
        if events.is_empty() {
            // The reader is at the head; `caught_up` says so too.
            continue;
        }
        let positions: Vec<u64> = events.iter().map(|record| record.position).collect();
        crate::gaps::check(log.as_ref(), pending.checkpoint(), &positions).await?;
        let models = read_models.clone();
        pending = tokio::task::spawn_blocking(move || {
            // Decoding here rather than in the reader spreads the work over both cores.
            let events = crate::read_ahead::decode_batch(&events)?;
            models.fold(&mut pending, &events).map(|()| pending)
        })
        .await??;
    }
}

/// Builds empty read models (new, deleted, or replaced for a new schema)
/// from the whole log the way a rebuild does (views written on their own
/// thread while the next are folded, then swapped in at the head), which
/// is faster than committing batch after batch. Stopped midway, it leaves
/// the read models empty, and the next start builds them again.
async fn build_from_empty(
    log: &Arc<dyn EventLog>,
    read_models: &Arc<ReadModels>,
    stopped: &CancellationToken,
) -> Result<(), ProjectionError> {
    let built = tokio::select! {
        built = crate::rebuild(log.clone(), read_models.clone(), |_| {}) => built?,
        _ = stopped.cancelled() => return Ok(()),
    };
    tracing::info!(
        position = built.position,
        events_per_second = built.events_per_second,
        "read models built from the log"
    );
    Ok(())
}
