//! The operators' side of the application layer, as its adapters call it.

use accord_proto::v1;
use tokio_stream::Stream;

use crate::error::ApiError;
use crate::streams::{ServerStream, Slot};

/// Records an import reads, as they arrive; one that is an error ends the
/// import with it.
pub(crate) type ImportRecords =
    std::pin::Pin<Box<dyn Stream<Item = Result<v1::ExportedRecord, ApiError>> + Send>>;

/// What an operator does with the log and its read models.
#[async_trait::async_trait]
pub(crate) trait OperationsService: Send + Sync {
    /// The log's figures and each projection's progress.
    async fn stats(&self) -> Result<v1::GetStatsResponse, ApiError>;

    /// Rebuilds the named read models (all when none is named); one
    /// rebuild at a time.
    fn rebuild(&self, names: &[String]) -> Result<ServerStream<v1::RebuildProgress>, ApiError>;

    /// Verifies the whole log: chain, records, signed checkpoints.
    fn verify(&self) -> ServerStream<v1::VerifyProgress>;

    /// The log's records from `from` (its stream holds `slot`).
    fn export(&self, from: u64, slot: Slot) -> ServerStream<v1::ExportedRecord>;

    /// Imports an export into an empty log, all or nothing.
    async fn import(
        &self,
        records: ImportRecords,
        allow_unsigned: bool,
    ) -> Result<v1::ImportLogResponse, ApiError>;
}
