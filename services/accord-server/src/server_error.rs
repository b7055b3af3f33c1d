//! Why the server could not start, or stopped with an error.

use accord_store::StoreError;

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The data directory or a port could not be used.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The store failed to open or to close cleanly.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The read models failed to open.
    #[error(transparent)]
    ReadModels(#[from] accord_projections::ProjectionError),
    /// A task of the server ended abnormally (it panicked or was cancelled).
    #[error("server task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The token file could not be read or parsed.
    #[error(transparent)]
    Tokens(#[from] crate::auth::TokenFileError),
    /// The configuration is refused.
    #[error("{0}")]
    Config(String),
    /// The gRPC transport failed.
    #[error("grpc transport: {0}")]
    Transport(#[from] tonic::transport::Error),
    /// Reflection could not load the descriptor set.
    #[error("reflection: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
}
