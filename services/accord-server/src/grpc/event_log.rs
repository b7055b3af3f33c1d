//! `accord.v1.EventLog`: finite reads of the log, and live subscriptions.

use std::sync::Arc;

use accord_domain::{DomainError, ValidationError, validate_agreement_id};
use accord_proto::SubscribeFrame;
use accord_proto::event_log_frames::event_log_server::EventLog as EventLogService;
use accord_proto::recorded_event_to_wire;
use accord_proto::v1;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response};

use super::RpcResult;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::reads::EventFilter;
use crate::reads::first_recorded_at_or_after;
use crate::streams::{
    LogIndexes, READ_BATCH, READ_STREAM_BUFFER, RecentEvents, SubscriptionSlots, spawn_stream,
    start_subscription,
};

/// Serves `EventLog`.
pub(crate) struct EventLogApi {
    recent: Arc<RecentEvents>,
    metrics: Arc<Metrics>,
    slots: Arc<SubscriptionSlots>,
    stopping: CancellationToken,
    /// The log's indexes, for filtered reads (and the buyer countries of
    /// agreements, for country filters).
    indexes: LogIndexes,
}

impl EventLogApi {
    /// Returns the service over `log`; streams end when `stopping` turns true.
    pub(crate) fn new(
        indexes: LogIndexes,
        recent: Arc<RecentEvents>,
        metrics: Arc<Metrics>,
        slots: Arc<SubscriptionSlots>,
        stopping: CancellationToken,
    ) -> Self {
        Self {
            indexes,
            recent,
            metrics,
            slots,
            stopping,
        }
    }
}

#[tonic::async_trait]
impl EventLogService for EventLogApi {
    type SubscribeStream = super::GrpcStream<SubscribeFrame>;

    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> RpcResult<Self::SubscribeStream> {
        let slot = self.slots.take(super::owner_of(&request))?;
        let mut request = request.into_inner();
        let filter = EventFilter::new(
            request.filter.take(),
            self.indexes.buyer_countries().clone(),
        )?;
        let stream = start_subscription(
            self.indexes.clone(),
            self.recent.clone(),
            self.metrics.clone(),
            self.stopping.clone(),
            slot,
            filter,
            request,
        )
        .await?;
        Ok(Response::new(super::grpc_stream(stream)))
    }

    type ReadLogStream = super::GrpcStream<v1::RecordedEvent>;

    async fn read_log(
        &self,
        request: Request<v1::ReadLogRequest>,
    ) -> RpcResult<Self::ReadLogStream> {
        let slot = self.slots.take(super::owner_of(&request))?;
        let request = request.into_inner();
        let filter = EventFilter::new(request.filter, self.indexes.buyer_countries().clone())?;
        let log = self.indexes.log().clone();
        let indexes = self.indexes.clone();
        let head = log.head();
        let from = match &request.from_time {
            None => request.from_position.max(1),
            Some(_) if request.from_position != 0 => {
                return Err(ApiError::from(ValidationError::new(
                    "from_time",
                    "give from_position or from_time, not both",
                ))
                .into());
            }
            Some(time) => first_recorded_at_or_after(log.as_ref(), "from_time", time).await?,
        };
        let limit = match request.max_count {
            0 => usize::MAX,
            count => count as usize,
        };
        let stream = spawn_stream(READ_STREAM_BUFFER, move |out| async move {
            let _slot = slot;
            let mut next = from;
            let mut sent = 0;
            // A filter that matches nothing sends nothing: the client's
            // absence shows only between batches.
            let mut indexed = true;
            while next <= head && sent < limit && !out.is_closed() {
                // From the indexes while they reach `next`, then a scan.
                if indexed {
                    match indexes
                        .read(&filter, next, READ_BATCH.min(limit - sent))
                        .await?
                    {
                        Some(matched) => {
                            for event in &matched.events {
                                if event.position > head {
                                    return Ok(());
                                }
                                if !out.send(recorded_event_to_wire(event)).await {
                                    return Ok(());
                                }
                                sent += 1;
                            }
                            next = matched.through.saturating_add(1);
                            continue;
                        }
                        None => indexed = false,
                    }
                }
                let batch = log.read_log(next, READ_BATCH).await?;
                if batch.is_empty() {
                    break;
                }
                for event in batch {
                    if event.position > head || sent >= limit {
                        return Ok(());
                    }
                    next = event.position + 1;
                    if !filter.matches(log.as_ref(), &event).await? {
                        continue;
                    }
                    if !out.send(recorded_event_to_wire(&event)).await {
                        return Ok(());
                    }
                    sent += 1;
                }
            }
            Ok(())
        });
        Ok(Response::new(super::grpc_stream(stream)))
    }

    type ReadAgreementHistoryStream = super::GrpcStream<v1::RecordedEvent>;

    async fn read_agreement_history(
        &self,
        request: Request<v1::ReadAgreementHistoryRequest>,
    ) -> RpcResult<Self::ReadAgreementHistoryStream> {
        let request = request.into_inner();
        validate_agreement_id(&request.agreement_id).map_err(ApiError::from)?;
        let log = self.indexes.log().clone();
        if log
            .locate(&request.agreement_id, 1)
            .await
            .map_err(ApiError::from)?
            .is_none()
        {
            return Err(ApiError::from(DomainError::NotFound {
                agreement_id: request.agreement_id,
            })
            .into());
        }
        let stream = spawn_stream(READ_STREAM_BUFFER, move |out| async move {
            let mut next = request.from_version.max(1);
            loop {
                let batch = log
                    .read_stream(&request.agreement_id, next, READ_BATCH)
                    .await?;
                if batch.is_empty() {
                    return Ok(());
                }
                for event in batch {
                    next = event.version + 1;
                    if !out.send(recorded_event_to_wire(&event)).await {
                        return Ok(());
                    }
                }
            }
        });
        Ok(Response::new(super::grpc_stream(stream)))
    }
}
