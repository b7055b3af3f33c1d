//! `accord.v1.Admin`: figures, and (with the operator tooling) rebuild and verify.

use std::pin::Pin;
use std::sync::Arc;

use accord_proto::v1::{self, admin_server::Admin};
use accord_store::EventLog;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::RpcResult;
use crate::error::ApiError;

/// Serves `Admin`.
pub struct AdminApi {
    log: Arc<dyn EventLog>,
}

impl AdminApi {
    /// Returns the service over `log`.
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        Self { log }
    }
}

type ProgressStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Admin for AdminApi {
    async fn get_stats(
        &self,
        _request: Request<v1::GetStatsRequest>,
    ) -> RpcResult<v1::GetStatsResponse> {
        let stats = self.log.stats().await.map_err(ApiError::from)?;
        Ok(Response::new(v1::GetStatsResponse {
            head_position: stats.head_position,
            event_count: stats.event_count,
            agreement_count: stats.agreement_count,
            disk_bytes: stats.disk_bytes,
            projections: Vec::new(),
        }))
    }

    type RebuildProjectionsStream = ProgressStream<v1::RebuildProgress>;

    async fn rebuild_projections(
        &self,
        _request: Request<v1::RebuildProjectionsRequest>,
    ) -> RpcResult<Self::RebuildProjectionsStream> {
        Err(Status::unimplemented(
            "RebuildProjections arrives with the operator tooling",
        ))
    }

    type VerifyLogStream = ProgressStream<v1::VerifyProgress>;

    async fn verify_log(
        &self,
        _request: Request<v1::VerifyLogRequest>,
    ) -> RpcResult<Self::VerifyLogStream> {
        Err(Status::unimplemented(
            "VerifyLog arrives with the operator tooling",
        ))
    }
}
