//! Why a read model could not be read or updated.

use accord_store::StoreError;

/// An error of the read models.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProjectionError {
    /// The read-model store failed.
    #[error("read models unavailable: {0}")]
    Storage(String),
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
        ProjectionError::Storage(error.to_string())
    }
}
