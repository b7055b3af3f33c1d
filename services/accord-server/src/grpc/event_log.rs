//! `accord.v1.EventLog` over the live feed: finite reads of the log, and
//! live subscriptions.

use accord_proto::SubscribeFrame;
use accord_proto::event_log_frames::event_log_server::EventLog as EventLogService;
use accord_proto::v1;
use tonic::{Request, Response};

use super::RpcResult;
use std::sync::Arc;

use crate::service::FeedService;

/// Serves `EventLog`.
pub(crate) struct EventLogApi {
    feed: Arc<dyn FeedService>,
}

impl EventLogApi {
    pub(crate) fn new(feed: Arc<dyn FeedService>) -> Self {
        Self { feed }
    }
}

#[tonic::async_trait]
impl EventLogService for EventLogApi {
    type SubscribeStream = super::GrpcStream<SubscribeFrame>;

    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> RpcResult<Self::SubscribeStream> {
        let owner = super::owner_of(&request);
        let stream = self.feed.subscribe(owner, request.into_inner()).await?;
        Ok(Response::new(super::grpc_stream(stream)))
    }

    type ReadLogStream = super::GrpcStream<v1::RecordedEvent>;

    async fn read_log(
        &self,
        request: Request<v1::ReadLogRequest>,
    ) -> RpcResult<Self::ReadLogStream> {
        let owner = super::owner_of(&request);
        let stream = self.feed.read_log(owner, request.into_inner()).await?;
        Ok(Response::new(super::grpc_stream(stream)))
    }

    type ReadAgreementHistoryStream = super::GrpcStream<v1::RecordedEvent>;

    async fn read_agreement_history(
        &self,
        request: Request<v1::ReadAgreementHistoryRequest>,
    ) -> RpcResult<Self::ReadAgreementHistoryStream> {
        let owner = super::owner_of(&request);
        let stream = self.feed.read_history(owner, request.into_inner()).await?;
        Ok(Response::new(super::grpc_stream(stream)))
    }
}
