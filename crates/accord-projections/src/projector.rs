//! The task that follows the log and keeps the read models at its head.

use std::sync::Arc;
use std::time::Duration;

use accord_store::EventLog;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::ReadModels;

/// Events read from the log and applied per batch.
const BATCH_EVENTS: usize = 2_048;
/// Pause after a failure before trying again.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// Starts projectors.
pub struct Projector;

/// A running projector.
pub struct ProjectorHandle {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    read_models: Arc<ReadModels>,
}

impl Projector {
    /// Follows `log` from the read models' checkpoint until stopped.
    pub fn spawn(log: Arc<dyn EventLog>, read_models: Arc<ReadModels>) -> ProjectorHandle {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(follow(log, read_models.clone(), stopped));
        ProjectorHandle {
            stop,
            task,
            read_models,
        }
    }
}

impl ProjectorHandle {
    /// Stops following the log and flushes the read models.
    pub async fn stop(self) {
        self.stop.send_replace(true);
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

async fn follow(
    log: Arc<dyn EventLog>,
    read_models: Arc<ReadModels>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut head = log.watch_head();
    while !*stopped.borrow() {
        let checkpoint = read_models.checkpoint();
        let events = match log.read_log(checkpoint + 1, BATCH_EVENTS).await {
            Ok(events) => events,
            Err(error) => {
                tracing::error!(%error, checkpoint, "projector cannot read the log");
                pause(&mut stopped).await;
                continue;
            }
        };
        if events.is_empty() {
            tokio::select! {
                _ = head.wait_for(|head| *head > checkpoint) => {}
                _ = stopped.wait_for(|stop| *stop) => {}
            }
            continue;
        }
        let models = read_models.clone();
        let applied = tokio::task::spawn_blocking(move || models.apply(&events)).await;
        match applied {
            Ok(Ok(_changed)) => {}
            Ok(Err(error)) => {
                tracing::error!(%error, checkpoint, "projector cannot apply events");
                pause(&mut stopped).await;
            }
            Err(error) => {
                tracing::error!(%error, checkpoint, "projector task failed");
                pause(&mut stopped).await;
            }
        }
    }
}

async fn pause(stopped: &mut watch::Receiver<bool>) {
    tokio::select! {
        _ = tokio::time::sleep(RETRY_AFTER) => {}
        _ = stopped.wait_for(|stop| *stop) => {}
    }
}
