//! `accord.v1.Admin`: figures, and (with the operator tooling) rebuild and verify.

use std::pin::Pin;
use std::sync::Arc;

use accord_projections::{PROJECTION_NAME, ReadModels};
use accord_proto::v1::{self, admin_server::Admin};
use accord_store::EventLog;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::RpcResult;
use crate::error::ApiError;

/// Serves `Admin`.
pub struct AdminApi {
    log: Arc<dyn EventLog>,
    read_models: Arc<ReadModels>,
}

impl AdminApi {
    /// Returns the service over `log` and its `read_models`.
    pub fn new(log: Arc<dyn EventLog>, read_models: Arc<ReadModels>) -> Self {
        Self { log, read_models }
    }
}

type ProgressStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

#[tonic::async_trait]
impl Admin for AdminApi {
    async fn get_stats(
        &self,
        _request: Request<v1::GetStatsRequest>,
    ) -> RpcResult<v1::GetStatsResponse> {
        let checkpoint = self.read_models.checkpoint();
        let stats = self.log.stats().await.map_err(ApiError::from)?;
        Ok(Response::new(v1::GetStatsResponse {
            head_position: stats.head_position,
            event_count: stats.event_count,
            agreement_count: stats.agreement_count,
            disk_bytes: stats.disk_bytes + self.read_models.disk_bytes(),
            projections: vec![v1::ProjectionStatus {
                name: PROJECTION_NAME.to_owned(),
                checkpoint,
                lag: stats.head_position.saturating_sub(checkpoint),
            }],
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
