//! The transparency log's side of the application layer, as its adapters
//! call it.

use accord_proto::v1;

use crate::error::ApiError;
use crate::streams::{ServerStream, Slot};

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

    /// An agreement's proof bundle (the JSON `accordctl prove` writes and
    /// `accordctl check-proof` verifies): the latest checkpoint, and each of
    /// the agreement's records in it (from version 1, at most
    /// `MAX_BUNDLE_EVENTS` and about `MAX_BUNDLE_BYTES`) with its inclusion
    /// proof.
    async fn bundle(&self, agreement_id: &str) -> Result<String, ApiError>;

    /// The hashes of a C2SP tile: `width` of tile `index` at `level` (all
    /// 256 when `None`), concatenated.
    async fn tile(&self, level: u8, index: u64, width: Option<usize>) -> Result<Vec<u8>, ApiError>;

    /// A C2SP entry bundle: the leaves of tile `index` of level 0, each
    /// after its length (u16 BE), in chunks; its stream holds `slot`.
    fn entries(
        &self,
        index: u64,
        width: Option<usize>,
        slot: Slot,
    ) -> Result<ServerStream<Vec<u8>>, ApiError>;
}
