//! The one place where errors get their codes, as the README's "Errors"
//! table lists them: the gRPC status codes of the contract, which the gRPC
//! adapter answers as they are (`grpc/status.rs`) and the console as HTTP
//! statuses.

use accord_domain::{DomainError, ValidationError};
use accord_projections::ProjectionError;
use accord_store::StoreError;

/// The code of an error: gRPC's status codes (the same numbers), the
/// contract's vocabulary for every transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// The caller cancelled (a request stream it broke off).
    Cancelled = 1,
    /// A code Accord never answers (forwarded from elsewhere).
    Unknown = 2,
    /// The request is malformed or breaks a validation rule.
    InvalidArgument = 3,
    /// The caller's deadline passed.
    DeadlineExceeded = 4,
    /// What it names does not exist.
    NotFound = 5,
    /// It exists already (an agreement, a group, a reused command id).
    AlreadyExists = 6,
    /// The caller's role may not do this.
    PermissionDenied = 7,
    /// A limit was reached (a server limit, the disk).
    ResourceExhausted = 8,
    /// The state does not allow it (a lifecycle rule, a running rebuild).
    FailedPrecondition = 9,
    /// The expected version did not hold.
    Aborted = 10,
    /// A value past the end of a range.
    OutOfRange = 11,
    /// Not offered by this server.
    Unimplemented = 12,
    /// A bug: the server broke its own rules.
    Internal = 13,
    /// The server cannot answer now; retrying may succeed.
    Unavailable = 14,
    /// The log was changed behind the server's back.
    DataLoss = 15,
    /// No valid token.
    Unauthenticated = 16,
}

impl Code {
    /// The code of number `number`; `Unknown` for one Accord never answers.
    pub fn from_number(number: i32) -> Self {
        match number {
            1 => Code::Cancelled,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            _ => Code::Unknown,
        }
    }

    /// Its number, as gRPC numbers it.
    pub fn number(self) -> i32 {
        self as i32
    }
}

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
    /// Something the request names is gone (a consumer group deleted
    /// under its member).
    #[error("{0}")]
    NotFound(String),
    /// The caller may not do this (a node of the cluster whose message does
    /// not open with the cluster's key).
    #[error("{0}")]
    PermissionDenied(String),
    /// The server broke its own rules (a bug).
    #[error("{0}")]
    Internal(String),
    /// An error with the code it came with: a refusal of the node that runs
    /// the consumer groups of a NATS cluster, or a client's request stream
    /// that broke.
    #[error("{1}")]
    Forwarded(Code, String),
}

impl ApiError {
    /// Logs the error if it says the server is unwell or full (not for a
    /// client's mistakes, which are the client's to see).
    pub(crate) fn log_if_serious(&self) {
        let code = self.code();
        if matches!(code, Code::Unavailable | Code::ResourceExhausted) {
            tracing::warn!(error = %self, ?code, "request failed");
        }
    }
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
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::PermissionDenied(_) => Code::PermissionDenied,
            ApiError::Internal(_) => Code::Internal,
            ApiError::Forwarded(code, _) => *code,
        }
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
            (ApiError::NotFound("x".into()), Code::NotFound),
            (
                ApiError::PermissionDenied("x".into()),
                Code::PermissionDenied,
            ),
            (ApiError::Internal("x".into()), Code::Internal),
        ];
        for (error, code) in cases {
            assert_eq!(error.code(), code);
        }
    }
}
