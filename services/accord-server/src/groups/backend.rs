//! The consumer groups a server answers for: its own (embedded store), or
//! the ones its NATS cluster shares.

use std::sync::Arc;

use accord_proto::v1;
use tokio_util::sync::CancellationToken;

use super::cluster::ClusterGroups;
use super::member_queue::MemberSender;
use super::registry::{MemberLink, Registry};
use crate::error::ApiError;

/// Where a server's consumer groups run.
#[derive(Clone)]
pub(crate) enum Groups {
    /// On this server (the embedded store).
    Local(Arc<Registry>),
    /// On whichever node of the NATS cluster holds the groups' lease.
    Cluster(Arc<ClusterGroups>),
}

impl Groups {
    pub(crate) async fn create(
        &self,
        name: &str,
        settings: v1::ConsumerGroupSettings,
    ) -> Result<v1::ConsumerGroupInfo, ApiError> {
        match self {
            Groups::Local(registry) => registry.create(name, &settings).await,
            Groups::Cluster(cluster) => cluster.create(name, settings).await,
        }
    }

    pub(crate) async fn update(
        &self,
        name: &str,
        settings: v1::ConsumerGroupSettings,
    ) -> Result<v1::ConsumerGroupInfo, ApiError> {
        match self {
            Groups::Local(registry) => registry.update(name, &settings).await,
            Groups::Cluster(cluster) => cluster.update(name, settings).await,
        }
    }

    pub(crate) async fn delete(&self, name: &str) -> Result<(), ApiError> {
        match self {
            Groups::Local(registry) => registry.delete(name).await,
            Groups::Cluster(cluster) => cluster.delete(name).await,
        }
    }

    pub(crate) async fn info(&self, name: &str) -> Result<v1::ConsumerGroupInfo, ApiError> {
        match self {
            Groups::Local(registry) => registry.info(name).await,
            Groups::Cluster(cluster) => cluster.get(name).await,
        }
    }

    pub(crate) async fn list(&self) -> Result<Vec<v1::ConsumerGroupInfo>, ApiError> {
        match self {
            Groups::Local(registry) => registry.list().await,
            Groups::Cluster(cluster) => cluster.list().await,
        }
    }

    pub(crate) async fn replay_parked(&self, name: &str) -> Result<u64, ApiError> {
        match self {
            Groups::Local(registry) => registry.replay_parked(name).await,
            Groups::Cluster(cluster) => cluster.replay_parked(name).await,
        }
    }

    /// Adds a member whose stream is `sender`.
    pub(crate) async fn join(
        &self,
        group: &str,
        member_name: String,
        sender: MemberSender,
    ) -> Result<MemberLink, ApiError> {
        match self {
            Groups::Local(registry) => registry.join(group, member_name, sender).await,
            Groups::Cluster(cluster) => cluster.join(group, member_name, sender).await,
        }
    }

    /// The server's stopping token.
    pub(crate) fn stopping(&self) -> CancellationToken {
        match self {
            Groups::Local(registry) => registry.stopping(),
            Groups::Cluster(cluster) => cluster.stopping(),
        }
    }

    /// Waits until the groups this server runs have stored their progress
    /// (after the stopping token is cancelled).
    pub(crate) async fn stopped(&self) {
        match self {
            Groups::Local(registry) => registry.stopped().await,
            Groups::Cluster(cluster) => cluster.stopped().await,
        }
    }
}
