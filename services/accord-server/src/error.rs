//! The one place where errors become gRPC status codes, as the README's
//! "Errors" table lists them.

use accord_domain::{DomainError, ValidationError};
use accord_projections::ProjectionError;
use accord_store::StoreError;
use tonic::{Code, Status};

/// Any reason an RPC fails.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Refused by the domain rules.
    #[error(transparent)]
    Domain(#[from] DomainError),
    /// Refused or failed by the store.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The read models failed.
    #[error(transparent)]
    Projection(#[from] ProjectionError),
    /// A server limit was reached (commands per Execute, subscriptions).
    #[error("{0}")]
    LimitExceeded(String),
    /// The request does not fit the server's current state (a rebuild is
    /// already running; an import into a log that is not empty).
    #[error("{0}")]
    FailedPrecondition(String),
    /// The read models are behind, or the server is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// No consumer group of that name.
    #[error("no consumer group named {0:?}")]
    GroupNotFound(String),
    /// A consumer group of that name exists.
    #[error("consumer group {0:?} already exists")]
    GroupExists(String),
    /// The request is malformed in a way no domain rule names.
    #[error("{0}")]
    InvalidArgument(String),
    /// Refused by the node that runs the consumer groups of a NATS
    /// cluster, with the code it answered.
    #[error("{1}")]
    Forwarded(Code, String),
}

impl From<ValidationError> for ApiError {
    fn from(error: ValidationError) -> Self {
        ApiError::Domain(DomainError::Invalid(error))
    }
}

impl ApiError {
    /// Returns the status code the contract assigns to this error.
    pub fn code(&self) -> Code {
        match self {
            ApiError::Domain(error) => match error {
                DomainError::Invalid(_) => Code::InvalidArgument,
                DomainError::NotFound { .. } => Code::NotFound,
                DomainError::AlreadyExists { .. } => Code::AlreadyExists,
                DomainError::WrongExpectedVersion { .. } => Code::Aborted,
                DomainError::LifecycleViolation { .. } => Code::FailedPrecondition,
            },
            ApiError::Store(error) => match error {
                StoreError::WrongExpectedVersion { .. } => Code::Aborted,
                StoreError::CommandIdConflict { .. } => Code::AlreadyExists,
                StoreError::InvalidImport(_) => Code::InvalidArgument,
                StoreError::ImportNotPossible(_) => Code::FailedPrecondition,
                StoreError::StorageFull(_) => Code::ResourceExhausted,
                StoreError::Tampered(_) | StoreError::Unsigned(_) => Code::DataLoss,
                StoreError::Unavailable(_) | StoreError::Failed { .. } | StoreError::Corrupt(_) => {
                    Code::Unavailable
                }
            },
            ApiError::Projection(ProjectionError::Log(error)) => {
                ApiError::Store(error.clone()).code()
            }
            ApiError::Projection(_) => Code::Unavailable,
            ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::LimitExceeded(_) => Code::ResourceExhausted,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::GroupNotFound(_) => Code::NotFound,
            ApiError::GroupExists(_) => Code::AlreadyExists,
            ApiError::InvalidArgument(_) => Code::InvalidArgument,
            ApiError::Forwarded(code, _) => *code,
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Self {
        let code = error.code();
        if matches!(code, Code::Unavailable | Code::ResourceExhausted) {
            tracing::warn!(%error, ?code, "request failed");
        }
        Status::new(code, error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accord_domain::{ExpectedVersion, Stage};

    #[test]
    fn every_error_has_the_contract_code() {
        let cases: Vec<(ApiError, Code)> = vec![
            (
                ValidationError::new("title", "is required").into(),
                Code::InvalidArgument,
            ),
            (
                DomainError::NotFound {
                    agreement_id: "a".into(),
                }
                .into(),
                Code::NotFound,
            ),
            (
                DomainError::AlreadyExists {
                    agreement_id: "a".into(),
                }
                .into(),
                Code::AlreadyExists,
            ),
            (
                DomainError::WrongExpectedVersion {
                    agreement_id: "a".into(),
                    expected: ExpectedVersion::Exact(1),
                    actual: 2,
                }
                .into(),
                Code::Aborted,
            ),
            (
                DomainError::LifecycleViolation {
                    agreement_id: "a".into(),
                    stage: Stage::Announced,
                    rule: "r".into(),
                }
                .into(),
                Code::FailedPrecondition,
            ),
            (
                StoreError::CommandIdConflict {
                    command_id: "c".into(),
                }
                .into(),
                Code::AlreadyExists,
            ),
            (
                StoreError::StorageFull("disk".into()).into(),
                Code::ResourceExhausted,
            ),
            (
                StoreError::InvalidImport("record 3".into()).into(),
                Code::InvalidArgument,
            ),
            (
                StoreError::ImportNotPossible("not empty".into()).into(),
                Code::FailedPrecondition,
            ),
            (
                StoreError::Unavailable("io".into()).into(),
                Code::Unavailable,
            ),
            (ApiError::LimitExceeded("x".into()), Code::ResourceExhausted),
            (ApiError::GroupNotFound("g".into()), Code::NotFound),
            (ApiError::GroupExists("g".into()), Code::AlreadyExists),
            (
                ApiError::Forwarded(Code::NotFound, "no consumer group named \"g\"".into()),
                Code::NotFound,
            ),
            (ApiError::InvalidArgument("x".into()), Code::InvalidArgument),
            (ApiError::Unavailable("x".into()), Code::Unavailable),
        ];
        for (error, code) in cases {
            assert_eq!(Status::from(error).code(), code);
        }
    }
}
