//! Why a read model could not be read or updated.

use std::sync::Arc;

use accord_store::{Cause, StoreError};

/// An error of the read models.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProjectionError {
    /// The read-model store failed.
    #[error("read models unavailable: {0}")]
    Storage(#[source] Cause),
    /// A task of the projector or a rebuild ended abnormally (it panicked
    /// or was cancelled).
    #[error("read-model task failed: {0}")]
    Task(#[source] Arc<tokio::task::JoinError>),
    /// The task reading the log ahead of the projector is gone.
    #[error("the projector's log reader stopped")]
    ReaderStopped,
    /// A stored view does not decode, or the log is not what the views expect.
    #[error("read models inconsistent: {0}")]
    Inconsistent(String),
    /// The read models were replaced by a rebuild while changes were pending.
    #[error("read models were replaced by a rebuild")]
    Superseded,
    /// The log could not be read.
    #[error(transparent)]
    Log(#[from] StoreError),
}

impl From<sled::Error> for ProjectionError {
    fn from(error: sled::Error) -> Self {
        ProjectionError::Storage(Arc::new(error))
    }
}

impl From<tokio::task::JoinError> for ProjectionError {
    fn from(error: tokio::task::JoinError) -> Self {
        ProjectionError::Task(Arc::new(error))
    }
}
