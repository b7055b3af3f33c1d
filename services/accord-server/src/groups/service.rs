//! The consumer groups' side of the application layer, as its adapters
//! call it.

use accord_proto::v1;
use tokio_util::sync::CancellationToken;

use super::member_queue::MemberSender;
use super::registry::MemberLink;
use crate::error::ApiError;

/// Consumer groups: their definitions, and members that share their events.
#[async_trait::async_trait]
pub(crate) trait GroupService: Send + Sync {
    async fn create(
        &self,
        name: &str,
        settings: v1::ConsumerGroupSettings,
    ) -> Result<v1::ConsumerGroupInfo, ApiError>;

    async fn update(
        &self,
        name: &str,
        settings: v1::ConsumerGroupSettings,
    ) -> Result<v1::ConsumerGroupInfo, ApiError>;

    async fn delete(&self, name: &str) -> Result<(), ApiError>;

    async fn info(&self, name: &str) -> Result<v1::ConsumerGroupInfo, ApiError>;

    async fn list(&self) -> Result<Vec<v1::ConsumerGroupInfo>, ApiError>;

    /// Puts a group's parked events back into its queue; how many.
    async fn replay_parked(&self, name: &str) -> Result<u64, ApiError>;

    /// Adds a member whose stream is `sender`.
    async fn join(
        &self,
        group: &str,
        member_name: String,
        sender: MemberSender,
    ) -> Result<MemberLink, ApiError>;

    /// The server's stopping token.
    fn stopping(&self) -> CancellationToken;

    /// Waits until the groups have stored their progress (after the
    /// stopping token is cancelled).
    async fn stopped(&self);
}
