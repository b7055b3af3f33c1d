//! `accord.v1.Transparency`: signed checkpoints and proofs of the log's
//! Merkle tree.

use std::sync::Arc;

use accord_proto::v1::{self, transparency_server::Transparency};
use tonic::{Request, Response};

use super::RpcResult;
use crate::service::TransparencyService;

/// Serves `Transparency`.
pub(crate) struct TransparencyApi {
    transparency: Arc<dyn TransparencyService>,
}

impl TransparencyApi {
    pub(crate) fn new(transparency: Arc<dyn TransparencyService>) -> Self {
        Self { transparency }
    }
}

#[tonic::async_trait]
impl Transparency for TransparencyApi {
    async fn get_checkpoint(
        &self,
        _request: Request<v1::GetCheckpointRequest>,
    ) -> RpcResult<v1::Checkpoint> {
        Ok(Response::new(self.transparency.checkpoint().await?))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<v1::GetInclusionProofRequest>,
    ) -> RpcResult<v1::InclusionProof> {
        Ok(Response::new(
            self.transparency
                .inclusion_proof(request.into_inner())
                .await?,
        ))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<v1::GetConsistencyProofRequest>,
    ) -> RpcResult<v1::ConsistencyProof> {
        Ok(Response::new(
            self.transparency
                .consistency_proof(request.into_inner())
                .await?,
        ))
    }
}
