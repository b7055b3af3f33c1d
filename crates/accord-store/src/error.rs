//! Why the log refused or failed an operation.

use accord_domain::ExpectedVersion;

/// An error from the event log. The server maps each variant to one status code.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The agreement's stream is not at the expected version.
    #[error("agreement {agreement_id}: expected {expected}, actual version {actual}")]
    WrongExpectedVersion {
        /// The agreement.
        agreement_id: String,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's version (0 = no stream).
        actual: u64,
    },
    /// The command id was used before for a different command.
    #[error("command_id {command_id:?} was already used for a different command")]
    CommandIdConflict {
        /// The reused id.
        command_id: String,
    },
    /// Records offered for import do not continue this log.
    #[error("import refused: {0}")]
    InvalidImport(String),
    /// The disk is full.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// The storage failed or is closed.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A stored record does not decode or fails its checksum.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Classifies an I/O error of the store's own files.
    pub(crate) fn from_io(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::StorageFull {
            StoreError::StorageFull(error.to_string())
        } else {
            StoreError::Unavailable(error.to_string())
        }
    }
}

impl From<::sled::Error> for StoreError {
    fn from(error: ::sled::Error) -> Self {
        match error {
            // sled hands out copies of its first IO error that keep the kind
            // but not the OS code.
            ::sled::Error::Io(io) if io.kind() == std::io::ErrorKind::StorageFull => {
                StoreError::StorageFull(io.to_string())
            }
            ::sled::Error::Corruption { .. } => StoreError::Corrupt(error.to_string()),
            other => StoreError::Unavailable(other.to_string()),
        }
    }
}
