//! The live feed's side of the application layer, as its adapters call it.

use accord_domain::RecordedEvent;
use accord_proto::SubscribeFrame;
use accord_proto::v1;
use tokio_util::sync::CancellationToken;

use super::{LogCursor, Owner, ServerStream, Slot};
use crate::error::ApiError;
use crate::reads::EventFilter;

/// The live feed: streams of the log and of the views, the stream slots
/// every open stream takes, and the server's stop.
#[async_trait::async_trait]
pub(crate) trait FeedService: Send + Sync {
    /// A subscription: the backlog, then live events.
    async fn subscribe(
        &self,
        owner: Owner,
        request: v1::SubscribeRequest,
    ) -> Result<ServerStream<SubscribeFrame>, ApiError>;

    /// The log up to the head as the read began, filtered.
    async fn read_log(
        &self,
        owner: Owner,
        request: v1::ReadLogRequest,
    ) -> Result<ServerStream<v1::RecordedEvent>, ApiError>;

    /// One agreement's events from a version on.
    async fn read_history(
        &self,
        owner: Owner,
        request: v1::ReadAgreementHistoryRequest,
    ) -> Result<ServerStream<v1::RecordedEvent>, ApiError>;

    /// Agreements' views as they change.
    fn watch(
        &self,
        owner: Owner,
        request: v1::WatchAgreementsRequest,
    ) -> Result<ServerStream<v1::AgreementUpdate>, ApiError>;

    /// The latest `count` events at or below `head` that match `filter`,
    /// oldest first (a bounded look back).
    async fn latest(
        &self,
        filter: &EventFilter,
        head: u64,
        count: usize,
    ) -> Result<Vec<v1::RecordedEvent>, ApiError>;

    /// Where the log's head stands.
    fn head(&self) -> u64;

    /// A stream slot for `owner`, within the stream limits.
    fn take_slot(&self, owner: Owner) -> Result<Slot, ApiError>;

    /// `filter` checked, with the server's buyer-country cache.
    fn filter(&self, filter: Option<v1::SubscriptionFilter>) -> Result<EventFilter, ApiError>;

    /// Whether `event` passes `filter`.
    async fn matches(&self, filter: &EventFilter, event: &RecordedEvent) -> Result<bool, ApiError>;

    /// A cursor over the log from after `position`.
    fn cursor_after(&self, position: u64) -> LogCursor;

    /// Cancelled when the server begins to shut down.
    fn stopping(&self) -> CancellationToken;
}
