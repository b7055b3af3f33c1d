//! `accord.v1.Admin`: figures, rebuild, verification, export and import.

use std::sync::Arc;

use accord_proto::v1::{self, admin_server::Admin};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Streaming};

use super::RpcResult;
use crate::error::{ApiError, Code};
use crate::service::{FeedService, OperationsService};

/// Serves `Admin` over the operations (which the console calls too).
pub(crate) struct AdminApi {
    operations: Arc<dyn OperationsService>,
    /// An export takes a stream slot like every other stream.
    feed: Arc<dyn FeedService>,
}

/// The metadata with which `ImportLog` accepts an export without a signed
/// checkpoint.
pub const ALLOW_UNSIGNED_METADATA: &str = "accord-allow-unsigned";

impl AdminApi {
    /// Returns the service over `operations`.
    pub(crate) fn new(operations: Arc<dyn OperationsService>, feed: Arc<dyn FeedService>) -> Self {
        Self { operations, feed }
    }
}

#[tonic::async_trait]
impl Admin for AdminApi {
    async fn get_stats(
        &self,
        _request: Request<v1::GetStatsRequest>,
    ) -> RpcResult<v1::GetStatsResponse> {
        Ok(Response::new(self.operations.stats().await?))
    }

    type RebuildProjectionsStream = super::GrpcStream<v1::RebuildProgress>;

    async fn rebuild_projections(
        &self,
        request: Request<v1::RebuildProjectionsRequest>,
    ) -> RpcResult<Self::RebuildProjectionsStream> {
        Ok(Response::new(super::grpc_stream(
            self.operations.rebuild(&request.into_inner().names)?,
        )))
    }

    type VerifyLogStream = super::GrpcStream<v1::VerifyProgress>;

    async fn verify_log(
        &self,
        _request: Request<v1::VerifyLogRequest>,
    ) -> RpcResult<Self::VerifyLogStream> {
        Ok(Response::new(super::grpc_stream(self.operations.verify())))
    }

    type ExportLogStream = super::GrpcStream<v1::ExportedRecord>;

    async fn export_log(
        &self,
        request: Request<v1::ExportLogRequest>,
    ) -> RpcResult<Self::ExportLogStream> {
        let slot = self.feed.take_slot(super::owner_of(&request))?;
        let from = request.into_inner().from_position;
        Ok(Response::new(super::grpc_stream(
            self.operations.export(from, slot),
        )))
    }

    async fn import_log(
        &self,
        request: Request<Streaming<v1::ExportedRecord>>,
    ) -> RpcResult<v1::ImportLogResponse> {
        let allow_unsigned = request
            .metadata()
            .get(ALLOW_UNSIGNED_METADATA)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"true"));
        // A request stream that breaks ends the import with its status.
        let records = Box::pin(request.into_inner().map(|record| {
            record.map_err(|status| {
                ApiError::Forwarded(
                    Code::from_number(status.code() as i32),
                    status.message().into(),
                )
            })
        }));
        Ok(Response::new(
            self.operations.import(records, allow_unsigned).await?,
        ))
    }
}
