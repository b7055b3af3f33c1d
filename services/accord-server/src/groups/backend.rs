//! The consumer groups a server answers for, as the application layer's
//! `GroupService`: its own (`Registry`, the embedded store), or the ones its
//! NATS cluster shares (`ClusterGroups`, on whichever node holds the
//! groups' lease; held in an `Arc`, which its members' tasks share).

use std::sync::Arc;

use accord_proto::v1;
use tokio_util::sync::CancellationToken;

use super::cluster::ClusterGroups;
use super::member_queue::MemberSender;
use super::registry::{MemberLink, Registry};
use super::service::GroupService;
use crate::error::ApiError;

#[async_trait::async_trait]
impl GroupService for Registry {
    async fn create(
        &self,
        name: &str,
        settings: v1::ConsumerGroupSettings,
    ) -> Result<v1::ConsumerGroupInfo, ApiError> {
        Registry::create(self, name, &settings).await
    }

    async fn update(
        &self,
        name: &str,
        settings: v1::ConsumerGroupSettings,
    ) -> Result<v1::ConsumerGroupInfo, ApiError> {
        Registry::update(self, name, &settings).await
    }

    async fn delete(&self, name: &str) -> Result<(), ApiError> {
        Registry::delete(self, name).await
    }

    async fn info(&self, name: &str) -> Result<v1::ConsumerGroupInfo, ApiError> {
        Registry::info(self, name).await
    }

    async fn list(&self) -> Result<Vec<v1::ConsumerGroupInfo>, ApiError> {
        Registry::list(self).await
    }

    async fn replay_parked(&self, name: &str) -> Result<u64, ApiError> {
        Registry::replay_parked(self, name).await
    }

    async fn join(
        &self,
        group: &str,
        member_name: String,
        sender: MemberSender,
    ) -> Result<MemberLink, ApiError> {
        Registry::join(self, group, member_name, sender).await
    }

    fn stopping(&self) -> CancellationToken {
        Registry::stopping(self)
    }

    async fn stopped(&self) {
        Registry::stopped(self).await;
    }
}

#[async_trait::async_trait]
impl GroupService for Arc<ClusterGroups> {
    async fn create(
        &self,
        name: &str,
        settings: v1::ConsumerGroupSettings,
    ) -> Result<v1::ConsumerGroupInfo, ApiError> {
        ClusterGroups::create(self, name, settings).await
    }

    async fn update(
        &self,
        name: &str,
        settings: v1::ConsumerGroupSettings,
    ) -> Result<v1::ConsumerGroupInfo, ApiError> {
        ClusterGroups::update(self, name, settings).await
    }

    async fn delete(&self, name: &str) -> Result<(), ApiError> {
        ClusterGroups::delete(self, name).await
    }

    async fn info(&self, name: &str) -> Result<v1::ConsumerGroupInfo, ApiError> {
        ClusterGroups::get(self, name).await
    }

    async fn list(&self) -> Result<Vec<v1::ConsumerGroupInfo>, ApiError> {
        ClusterGroups::list(self).await
    }

    async fn replay_parked(&self, name: &str) -> Result<u64, ApiError> {
        ClusterGroups::replay_parked(self, name).await
    }

    async fn join(
        &self,
        group: &str,
        member_name: String,
        sender: MemberSender,
    ) -> Result<MemberLink, ApiError> {
        ClusterGroups::join(self, group, member_name, sender).await
    }

    fn stopping(&self) -> CancellationToken {
        ClusterGroups::stopping(self)
    }

    async fn stopped(&self) {
        ClusterGroups::stopped(self).await;
    }
}
