//! `accord.v1.EventLog`: finite reads of the log, and live subscriptions.

use std::pin::Pin;
use std::sync::Arc;

use accord_domain::{DomainError, validate_agreement_id};
use accord_proto::recorded_event_to_wire;
use accord_proto::v1::{self, event_log_server::EventLog as EventLogService};
use accord_store::EventLog;
use tokio::sync::mpsc;
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use super::RpcResult;
use super::filter::EventFilter;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::streams::{RecentEvents, SubscriptionSlots, start_subscription};

/// Events read from the log per store call.
const READ_BATCH: usize = 512;
/// Messages buffered per stream before the reader waits for the client.
const STREAM_BUFFER: usize = 256;

/// Serves `EventLog`.
pub struct EventLogApi {
    log: Arc<dyn EventLog>,
    recent: Arc<RecentEvents>,
    metrics: Arc<Metrics>,
    slots: Arc<SubscriptionSlots>,
    stopping: CancellationToken,
}

impl EventLogApi {
    /// Returns the service over `log`; streams end when `stopping` turns true.
    pub fn new(
        log: Arc<dyn EventLog>,
        recent: Arc<RecentEvents>,
        metrics: Arc<Metrics>,
        slots: Arc<SubscriptionSlots>,
        stopping: CancellationToken,
    ) -> Self {
        Self {
            log,
            recent,
            metrics,
            slots,
            stopping,
        }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<v1::RecordedEvent, Status>> + Send>>;
type SubscribeStream = Pin<Box<dyn Stream<Item = Result<v1::SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EventLogService for EventLogApi {
    type SubscribeStream = SubscribeStream;

    async fn subscribe(
        &self,
        request: Request<v1::SubscribeRequest>,
    ) -> RpcResult<Self::SubscribeStream> {
        let slot = self.slots.take(request.remote_addr())?;
        let stream = start_subscription(
            self.log.clone(),
            self.recent.clone(),
            self.metrics.clone(),
            self.stopping.clone(),
            slot,
            request.into_inner(),
        )?;
        Ok(Response::new(Box::pin(stream)))
    }

    type ReadLogStream = EventStream;

    async fn read_log(
        &self,
        request: Request<v1::ReadLogRequest>,
    ) -> RpcResult<Self::ReadLogStream> {
        let request = request.into_inner();
        let filter = EventFilter::new(request.filter)?;
        let log = self.log.clone();
        let head = log.head();
        let limit = match request.max_count {
            0 => usize::MAX,
            count => count as usize,
        };
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            let mut next = request.from_position.max(1);
            let mut sent = 0;
            while next <= head && sent < limit {
                let batch = match log.read_log(next, READ_BATCH).await {
                    Ok(batch) if !batch.is_empty() => batch,
                    Ok(_) => break,
                    Err(error) => {
                        let _ = sender.send(Err(Status::from(ApiError::from(error)))).await;
                        return;
                    }
                };
                for event in batch {
                    if event.position > head || sent >= limit {
                        return;
                    }
                    next = event.position + 1;
                    match filter.matches(log.as_ref(), &event).await {
                        Ok(false) => continue,
                        Ok(true) => {}
                        Err(error) => {
                            let _ = sender.send(Err(error.into())).await;
                            return;
                        }
                    }
                    if sender
                        .send(Ok(recorded_event_to_wire(&event)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                    sent += 1;
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    type ReadAgreementHistoryStream = EventStream;

    async fn read_agreement_history(
        &self,
        request: Request<v1::ReadAgreementHistoryRequest>,
    ) -> RpcResult<Self::ReadAgreementHistoryStream> {
        let request = request.into_inner();
        validate_agreement_id(&request.agreement_id).map_err(ApiError::from)?;
        let log = self.log.clone();
        if log
            .read_stream(&request.agreement_id, 1, 1)
            .await
            .map_err(ApiError::from)?
            .is_empty()
        {
            return Err(ApiError::from(DomainError::NotFound {
                agreement_id: request.agreement_id,
            })
            .into());
        }
        let (sender, receiver) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            let mut next = request.from_version.max(1);
            loop {
                let batch = match log
                    .read_stream(&request.agreement_id, next, READ_BATCH)
                    .await
                {
                    Ok(batch) if !batch.is_empty() => batch,
                    Ok(_) => return,
                    Err(error) => {
                        let _ = sender.send(Err(Status::from(ApiError::from(error)))).await;
                        return;
                    }
                };
                for event in batch {
                    next = event.version + 1;
                    if sender
                        .send(Ok(recorded_event_to_wire(&event)))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}
