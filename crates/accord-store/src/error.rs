//! Why the log refused or failed an operation.

use std::sync::Arc;

use accord_domain::ExpectedVersion;

/// The cause of a storage failure, kept for `source()`.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

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
    /// An import was asked of a log that holds events, or while another
    /// import runs.
    #[error("import refused: {0}")]
    ImportNotPossible(String),
    /// The disk is full.
    #[error("storage full: {0}")]
    StorageFull(String),
    /// The storage is closed or cannot serve (a condition of Accord's own).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The storage failed: a disk, sled, NATS or a task returned an error,
    /// kept as the source.
    #[error("storage unavailable: {context}: {source}")]
    Failed {
        /// What was being done.
        context: String,
        /// Why it failed.
        #[source]
        source: Cause,
    },
    /// The log does not match its signed checkpoint: it was changed by
    /// someone without the signing key (or the key was replaced).
    #[error("log tampered with: {0}")]
    Tampered(String),
    /// The log holds records but no signed checkpoint: a data directory of
    /// Accord 0.1 (an upgrade, adopted once with `--adopt-unsigned-log`),
    /// or one whose checkpoint was removed.
    #[error("the log is not signed: {0}")]
    Unsigned(String),
    /// A stored record does not decode or fails its checksum.
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// A failure while doing `context`, caused by `source`.
    pub fn failed(
        context: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        StoreError::Failed {
            context: context.into(),
            source: Arc::new(source),
        }
    }

    /// A failure while doing `context`, caused by an already boxed error.
    pub fn failed_boxed(
        context: impl Into<String>,
        source: Box<dyn std::error::Error + Send + Sync>,
    ) -> Self {
        StoreError::Failed {
            context: context.into(),
            source: Arc::from(source),
        }
    }

    /// Classifies an I/O error of the store's own files.
    pub(crate) fn from_io(error: std::io::Error) -> Self {
        if error.kind() == std::io::ErrorKind::StorageFull {
            StoreError::StorageFull(error.to_string())
        } else {
            StoreError::failed("storage I/O", error)
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
            other => StoreError::failed("sled", other),
        }
    }
}
