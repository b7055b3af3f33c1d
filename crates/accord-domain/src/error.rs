//! Why a command is refused.

use crate::{ExpectedVersion, Stage};

/// A field that fails the contract's limits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct ValidationError {
    /// The field's name as the contract spells it (`buyer.country`).
    pub field: String,
    /// Why the value is refused.
    pub reason: String,
}

impl ValidationError {
    /// Returns an error for `field` with `reason`.
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// A command refused by the domain; each variant has one status code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// A malformed, missing or out-of-range field.
    #[error("invalid argument: {0}")]
    Invalid(#[from] ValidationError),
    /// The agreement does not exist.
    #[error("agreement {agreement_id} not found")]
    NotFound {
        /// The unknown id.
        agreement_id: String,
    },
    /// An announcement of an id that already exists.
    #[error("agreement {agreement_id} already exists")]
    AlreadyExists {
        /// The existing id.
        agreement_id: String,
    },
    /// The stream is not at the version the writer expected.
    #[error("agreement {agreement_id}: expected {expected}, actual version {actual}")]
    WrongExpectedVersion {
        /// The agreement.
        agreement_id: String,
        /// What the writer expected.
        expected: ExpectedVersion,
        /// The stream's version (0 = no stream).
        actual: u64,
    },
    /// The command breaks a lifecycle rule in the agreement's current stage.
    #[error("agreement {agreement_id} is {stage}: {rule}")]
    LifecycleViolation {
        /// The agreement.
        agreement_id: String,
        /// Its current stage.
        stage: Stage,
        /// The rule the command breaks.
        rule: String,
    },
}
