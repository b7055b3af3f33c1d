//! The transparency log's side of the application layer, as its adapters
//! call it.

use accord_proto::v1;

use crate::error::ApiError;

/// Signed checkpoints and proofs of the log's Merkle tree.
#[async_trait::async_trait]
pub(crate) trait TransparencyService: Send + Sync {
    /// The latest checkpoint, signed.
    async fn checkpoint(&self) -> Result<v1::Checkpoint, ApiError>;

    /// That a record is leaf `position - 1` of a tree.
    async fn inclusion_proof(
        &self,
        request: v1::GetInclusionProofRequest,
    ) -> Result<v1::InclusionProof, ApiError>;

    /// That a tree is a prefix of a larger one.
    async fn consistency_proof(
        &self,
        request: v1::GetConsistencyProofRequest,
    ) -> Result<v1::ConsistencyProof, ApiError>;
}
