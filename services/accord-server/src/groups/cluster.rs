//! Consumer groups on the NATS backend, shared by every Accord node of the
//! cluster. Their definitions, checkpoints and parked events live in a
//! key-value bucket of the NATS cluster (`kv_store`), replicated like the
//! log; one node at a time, the holder of a lease (`lease`), runs them
//! (`leader`) exactly as a server on the embedded store does; every node,
//! that one included, passes its clients' calls and members to it over
//! NATS (`relay`). When the holder dies another node takes the lease once
//! it expires, loads the groups from the bucket and goes on from their
//! checkpoints; members on the other nodes join it again by themselves.
//!
//! Why a bucket and one runner rather than a JetStream durable consumer per
//! group: a durable consumer filters by subject only (not by event type or
//! buyer country), has no notion of an agreement held by one member at a
//! time with its events in version order, and no parked list to replay;
//! the group's rules would still need one place to run.

mod kv_store;
mod leader;
mod lease;
mod names;
mod relay;
mod sealing;

use std::sync::Arc;

use accord_proto::cluster::{self, group_answer, group_call};
use accord_proto::v1;
use accord_store::StoreError;
use async_nats::jetstream::{self, kv};
use prost::Message;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::member_queue::MemberSender;
use super::registry::MemberLink;
use crate::error::{ApiError, Code};
use crate::metrics::Metrics;
use crate::streams::LogIndexes;
use names::Names;
pub(crate) use sealing::NodeKey;
use sealing::Purpose;

/// Commands a member's relay queues from its stream.
const MEMBER_COMMANDS: usize = 1_024;
/// Pause between calls while no node runs the groups.
const NO_RESPONDERS_PAUSE: std::time::Duration = std::time::Duration::from_millis(100);

/// The connection and stream the groups share with the log.
pub(crate) struct ClusterSetup {
    pub(crate) client: async_nats::Client,
    pub(crate) jetstream: jetstream::Context,
    /// The log's stream: names the groups' subjects and buckets.
    pub(crate) stream: String,
    pub(crate) replicas: usize,
    /// Most parked events per group (`--max-parked-per-group`).
    pub(crate) max_parked: usize,
    /// What nodes seal their messages to each other with.
    pub(crate) key: NodeKey,
}

/// This node's side of the cluster's consumer groups.
pub(crate) struct ClusterGroups {
    client: async_nats::Client,
    names: Names,
    lease_bucket: kv::Store,
    /// The node the lease named when last read.
    holder: parking_lot::Mutex<Option<String>>,
    stopping: CancellationToken,
    /// Races for the lease and runs the groups while this node holds it.
    leader: parking_lot::Mutex<Option<JoinHandle<()>>>,
    /// What nodes seal their messages to each other with.
    key: NodeKey,
}

/// A refusal as it crosses between nodes.
fn refused(error: &ApiError) -> cluster::Refused {
    cluster::Refused {
        code: error.code().number(),
        message: error.to_string(),
    }
}

/// A refusal from the node running the groups, as this node answers it.
fn status_of(refused: cluster::Refused) -> ApiError {
    ApiError::Forwarded(Code::from_number(refused.code), refused.message)
}

fn unavailable(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("consumer groups on NATS: {what}: {error}"))
}

/// Creates (or opens) a bucket.
async fn bucket(
    jetstream: &jetstream::Context,
    config: kv::Config,
) -> Result<kv::Store, StoreError> {
    let name = config.bucket.clone();
    jetstream
        .create_or_update_key_value(config)
        .await
        .map_err(|error| unavailable(&format!("bucket {name}"), error))
}

impl ClusterGroups {
    /// Opens the buckets and starts taking part in the race for the lease.
    pub(crate) async fn start(
        setup: ClusterSetup,
        indexes: LogIndexes,
        metrics: Arc<Metrics>,
        stopping: CancellationToken,
    ) -> Result<Arc<Self>, StoreError> {
        let names = Names::of(&setup.stream);
        let groups = bucket(
            &setup.jetstream,
            kv::Config {
                bucket: names.bucket.clone(),
                description: "Accord consumer groups: definitions, checkpoints, parked events"
                    .into(),
                history: 1,
                num_replicas: setup.replicas,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            },
        )
        .await?;
        let lease_bucket = bucket(
            &setup.jetstream,
            kv::Config {
                bucket: names.lease_bucket.clone(),
                description: "Which Accord node runs the consumer groups".into(),
                history: 1,
                max_age: lease::EXPIRES,
                num_replicas: setup.replicas,
                storage: jetstream::stream::StorageType::File,
                ..Default::default()
            },
        )
        .await?;
        let task = tokio::spawn(leader::run(leader::LeaderContext {
            client: setup.client.clone(),
            names: names.clone(),
            bucket: groups,
            lease_bucket: lease_bucket.clone(),
            node: uuid::Uuid::new_v4().to_string(),
            indexes,
            metrics,
            stopping: stopping.clone(),
            max_parked: setup.max_parked,
            key: setup.key.clone(),
        }));
        Ok(Arc::new(Self {
            client: setup.client,
            names,
            lease_bucket,
            holder: parking_lot::Mutex::new(None),
            stopping,
            leader: parking_lot::Mutex::new(Some(task)),
            key: setup.key,
        }))
    }

    /// Waits, once the server stops, until this node no longer runs the
    /// groups: their tasks have stored their progress and the lease is
    /// given up for another node to take at once.
    pub(crate) async fn stopped(&self) {
        let task = self.leader.lock().take();
        if let Some(task) = task
            && let Err(error) = task.await
        {
            tracing::error!(%error, "consumer groups' lease task failed");
        }
    }

    /// The server's stopping token.
    pub(crate) fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
    }

    /// Asks the node running the groups (the one the lease names); returns
    /// its answer and that node. While no node runs them (one went away and
    /// the lease has not expired yet, or the cluster just started) the call
    /// waits for the next one, up to `lease::EXPIRES` and a little more.
    async fn call_node(
        &self,
        kind: group_call::Kind,
    ) -> Result<(group_answer::Kind, String), ApiError> {
        let call = self
            .key
            .seal_message(Purpose::Call, &cluster::GroupCall { kind: Some(kind) });
        let patience = lease::EXPIRES + lease::RENEW_EVERY * 2;
        let deadline = tokio::time::Instant::now() + patience;
        let (answer, holder) = loop {
            let cached = self.holder.lock().clone();
            let holder = match cached {
                Some(holder) => Some(holder),
                None => lease::holder(&self.lease_bucket).await,
            };
            let asked = match &holder {
                Some(holder) => {
                    *self.holder.lock() = Some(holder.clone());
                    self.client
                        .request(self.names.calls(holder), call.clone())
                        .await
                }
                None => Err(async_nats::RequestErrorKind::NoResponders.into()),
            };
            match asked {
                Ok(answer) => break (answer, holder.unwrap_or_default()),
                Err(error) => {
                    // Read the lease again next time.
                    *self.holder.lock() = None;
                    let no_one = error.kind() == async_nats::RequestErrorKind::NoResponders;
                    if no_one && tokio::time::Instant::now() < deadline {
                        tokio::time::sleep(NO_RESPONDERS_PAUSE).await;
                        continue;
                    }
                    return Err(ApiError::Unavailable(match error.kind() {
                        async_nats::RequestErrorKind::NoResponders => format!(
                            "no node has run the consumer groups for {} s; retry",
                            patience.as_secs()
                        ),
                        async_nats::RequestErrorKind::TimedOut => {
                            "the node running the consumer groups did not answer in time; the call may or may not have taken effect".into()
                        }
                        _ => format!("cannot reach the node running the consumer groups: {error}"),
                    }));
                }
            }
        };
        let answer = cluster::GroupAnswer::decode(answer.payload.as_ref()).map_err(|_| {
            ApiError::Unavailable(
                "an answer about consumer groups that does not decode (nodes of different versions?)"
                    .into(),
            )
        })?;
        match answer.kind {
            Some(group_answer::Kind::Refused(refused)) => Err(status_of(refused)),
            Some(kind) => Ok((kind, holder)),
            None => Err(ApiError::Unavailable(
                "an empty answer about consumer groups".into(),
            )),
        }
    }

    /// Asks the node running the groups.
    async fn call(&self, kind: group_call::Kind) -> Result<group_answer::Kind, ApiError> {
        Ok(self.call_node(kind).await?.0)
    }

    async fn info(&self, kind: group_call::Kind) -> Result<v1::ConsumerGroupInfo, ApiError> {
        match self.call(kind).await? {
            group_answer::Kind::Info(info) => Ok(info),
            _ => Err(unexpected()),
        }
    }

    pub(crate) async fn create(
        &self,
        name: &str,
        settings: v1::ConsumerGroupSettings,
    ) -> Result<v1::ConsumerGroupInfo, ApiError> {
        self.info(group_call::Kind::Create(v1::CreateConsumerGroupRequest {
            name: name.to_owned(),
            settings: Some(settings),
        }))
        .await
    }

    pub(crate) async fn update(
        &self,
        name: &str,
        settings: v1::ConsumerGroupSettings,
    ) -> Result<v1::ConsumerGroupInfo, ApiError> {
        self.info(group_call::Kind::Update(v1::UpdateConsumerGroupRequest {
            name: name.to_owned(),
            settings: Some(settings),
        }))
        .await
    }

    pub(crate) async fn delete(&self, name: &str) -> Result<(), ApiError> {
        match self
            .call(group_call::Kind::Delete(v1::DeleteConsumerGroupRequest {
                name: name.to_owned(),
            }))
            .await?
        {
            group_answer::Kind::Done(_) => Ok(()),
            _ => Err(unexpected()),
        }
    }

    pub(crate) async fn get(&self, name: &str) -> Result<v1::ConsumerGroupInfo, ApiError> {
        self.info(group_call::Kind::Get(v1::GetConsumerGroupRequest {
            name: name.to_owned(),
        }))
        .await
    }

    pub(crate) async fn list(&self) -> Result<Vec<v1::ConsumerGroupInfo>, ApiError> {
        match self
            .call(group_call::Kind::List(v1::ListConsumerGroupsRequest {}))
            .await?
        {
            group_answer::Kind::List(list) => Ok(list.groups),
            _ => Err(unexpected()),
        }
    }

    pub(crate) async fn replay_parked(&self, name: &str) -> Result<u64, ApiError> {
        match self
            .call(group_call::Kind::ReplayParked(v1::ReplayParkedRequest {
                name: name.to_owned(),
            }))
            .await?
        {
            group_answer::Kind::Replayed(replayed) => Ok(replayed.replayed),
            _ => Err(unexpected()),
        }
    }

    /// Adds a member whose stream is `stream` (on this node) to group
    /// `group`, wherever the groups run.
    pub(crate) async fn join(
        self: &Arc<Self>,
        group: &str,
        member_name: String,
        stream: MemberSender,
    ) -> Result<MemberLink, ApiError> {
        super::settings::check_name("join.group", group)?;
        let inbox_subject = self.client.new_inbox();
        let inbox = self
            .client
            .subscribe(inbox_subject.clone())
            .await
            .map_err(|error| ApiError::Unavailable(format!("cannot subscribe to NATS: {error}")))?;
        let join = cluster::RemoteJoin {
            group: group.to_owned(),
            member_name,
            token: uuid::Uuid::new_v4().to_string(),
            inbox: inbox_subject,
        };
        let joined_at = match self.call_node(group_call::Kind::Join(join.clone())).await? {
            (group_answer::Kind::Done(_), node) => node,
            _ => return Err(unexpected()),
        };
        let (commands, received) = mpsc::channel(MEMBER_COMMANDS);
        tokio::spawn(
            relay::Relay {
                groups: self.clone(),
                join,
                joined_at,
                inbox,
                commands: received,
                stream,
                stopping: self.stopping.clone(),
            }
            .run(),
        );
        Ok(MemberLink::new(0, commands))
    }
}

fn unexpected() -> ApiError {
    ApiError::Unavailable(
        "an unexpected answer about consumer groups (nodes of different versions?)".into(),
    )
}
