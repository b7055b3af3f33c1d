//! The live feed every transport reads: the log through its indexes and its
//! window of recent events, filters with the server's one buyer-country
//! cache, the read models for watched views, the stream slots every open
//! stream takes, and the server's stop. gRPC's `EventLog` and
//! `WatchAgreements` and the console's live pages read through it.

use std::sync::Arc;

use accord_domain::{DomainError, RecordedEvent, ValidationError, validate_agreement_id};
use accord_projections::ReadModels;
use accord_proto::SubscribeFrame;
use accord_proto::recorded_event_to_wire;
use accord_proto::v1;
use accord_store::EventLog;
use tokio_util::sync::CancellationToken;

use super::{
    FeedService, LogCursor, LogIndexes, Owner, READ_BATCH, READ_STREAM_BUFFER, RecentEvents,
    ServerStream, Slot, SubscriptionSlots, spawn_stream, start_subscription, start_watch,
};
use crate::error::ApiError;
use crate::metrics::Metrics;

/// Most events `latest` looks back over.
const SCAN_BACK: u64 = 20_000;
use crate::reads::{EventFilter, first_recorded_at_or_after};

/// The live feed: what streams of the log and of the views are read from.
#[derive(Clone)]
pub(crate) struct LiveFeed {
    indexes: LogIndexes,
    recent: Arc<RecentEvents>,
    read_models: Arc<ReadModels>,
    slots: Arc<SubscriptionSlots>,
    metrics: Arc<Metrics>,
    stopping: CancellationToken,
}

impl LiveFeed {
    pub(crate) fn new(
        indexes: LogIndexes,
        recent: Arc<RecentEvents>,
        read_models: Arc<ReadModels>,
        slots: Arc<SubscriptionSlots>,
        metrics: Arc<Metrics>,
        stopping: CancellationToken,
    ) -> Self {
        Self {
            indexes,
            recent,
            read_models,
            slots,
            metrics,
            stopping,
        }
    }

    /// The log.
    fn log(&self) -> &Arc<dyn EventLog> {
        self.indexes.log()
    }
}

#[async_trait::async_trait]
impl FeedService for LiveFeed {
    fn head(&self) -> u64 {
        self.log().head()
    }

    fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }

    fn take_slot(&self, owner: Owner) -> Result<Slot, ApiError> {
        self.slots.take(owner)
    }

    fn filter(&self, filter: Option<v1::SubscriptionFilter>) -> Result<EventFilter, ApiError> {
        EventFilter::new(filter, self.indexes.buyer_countries().clone())
    }

    async fn matches(&self, filter: &EventFilter, event: &RecordedEvent) -> Result<bool, ApiError> {
        filter.matches(self.log().as_ref(), event).await
    }

    /// Reads recent events from the shared window.
    fn cursor_after(&self, position: u64) -> LogCursor {
        LogCursor::after(self.log().clone(), self.recent.clone(), position)
    }

    /// Scans back from `head` a read at a time, at most `SCAN_BACK` events.
    async fn latest(
        &self,
        filter: &EventFilter,
        head: u64,
        count: usize,
    ) -> Result<Vec<v1::RecordedEvent>, ApiError> {
        let log = self.log();
        let mut found = Vec::new();
        let mut end = head;
        let floor = head.saturating_sub(SCAN_BACK);
        while end > floor && found.len() < count {
            let from = end.saturating_sub(READ_BATCH as u64).max(floor) + 1;
            // The stretch `from..=end`, in as many reads as the log's read
            // size takes; of what matches, only the latest `count` are kept.
            let mut matching = Vec::new();
            let mut next = from;
            while next <= end {
                let events = log.read_log(next, (end + 1 - next) as usize).await?;
                let Some(last) = events.last().map(|event| event.position) else {
                    break;
                };
                next = last + 1;
                for event in events.iter().filter(|event| event.position <= end) {
                    if filter.matches(log.as_ref(), event).await? {
                        matching.push(recorded_event_to_wire(event));
                    }
                }
                let over = matching.len().saturating_sub(count);
                matching.drain(..over);
            }
            matching.extend(found);
            found = matching;
            end = from - 1;
        }
        let skip = found.len().saturating_sub(count);
        Ok(found.split_off(skip))
    }

    /// A subscription: the backlog from where it starts (from the indexes
    /// when filtered), then live events.
    async fn subscribe(
        &self,
        owner: Owner,
        mut request: v1::SubscribeRequest,
    ) -> Result<ServerStream<SubscribeFrame>, ApiError> {
        let slot = self.take_slot(owner)?;
        let filter = self.filter(request.filter.take())?;
        start_subscription(
            self.indexes.clone(),
            self.recent.clone(),
            self.metrics.clone(),
            self.stopping.clone(),
            slot,
            filter,
            request,
        )
        .await
    }

    /// Agreements' views as they change.
    fn watch(
        &self,
        owner: Owner,
        request: v1::WatchAgreementsRequest,
    ) -> Result<ServerStream<v1::AgreementUpdate>, ApiError> {
        let slot = self.take_slot(owner)?;
        start_watch(
            self.log().clone(),
            self.recent.clone(),
            self.read_models.clone(),
            self.stopping.clone(),
            slot,
            request,
        )
    }

    /// The log from a position or a time up to the head as the read began,
    /// filtered (from the indexes while they reach, then a scan).
    async fn read_log(
        &self,
        owner: Owner,
        request: v1::ReadLogRequest,
    ) -> Result<ServerStream<v1::RecordedEvent>, ApiError> {
        let slot = self.take_slot(owner)?;
        let filter = self.filter(request.filter)?;
        let log = self.indexes.log().clone();
        let indexes = self.indexes.clone();
        let head = log.head();
        let from = match &request.from_time {
            None => request.from_position.max(1),
            Some(_) if request.from_position != 0 => {
                return Err(ValidationError::new(
                    "from_time",
                    "give from_position or from_time, not both",
                )
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
        Ok(stream)
    }

    /// One agreement's events from a version on; the stream takes a slot
    /// like every other.
    async fn read_history(
        &self,
        owner: Owner,
        request: v1::ReadAgreementHistoryRequest,
    ) -> Result<ServerStream<v1::RecordedEvent>, ApiError> {
        validate_agreement_id(&request.agreement_id)?;
        let slot = self.take_slot(owner)?;
        let log = self.indexes.log().clone();
        if log.locate(&request.agreement_id, 1).await?.is_none() {
            return Err(DomainError::NotFound {
                agreement_id: request.agreement_id,
            }
            .into());
        }
        let stream = spawn_stream(READ_STREAM_BUFFER, move |out| async move {
            let _slot = slot;
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
        Ok(stream)
    }
}
