//! The node holding the lease runs the cluster's consumer groups: the same
//! registry and tasks as on the embedded store, over the bucket, answering
//! calls from every node (its own included) and relaying deliveries to
//! members whose streams are on any node.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::error::Code;
use accord_proto::cluster::{self, group_answer, group_call, member_report, to_member};
use accord_proto::v1;
use async_nats::jetstream::kv;
use futures_util::StreamExt;
use parking_lot::Mutex;
use prost::Message;
use tokio_util::sync::CancellationToken;

use super::kv_store::NatsGroupStore;
use super::lease::{self, Held};
use super::names::Names;
use super::refused;
use super::sealing::{NodeKey, Purpose, Unsealed};
use crate::error::ApiError;
use crate::groups::{MemberLink, Registry, nack_action};
use crate::metrics::Metrics;
use crate::streams::LogIndexes;

/// A member unheard of for this long is taken out of its group (its node
/// reports every `relay::ALIVE_EVERY`).
const MEMBER_SILENT: Duration = Duration::from_secs(5);
/// How long to wait before trying again when the groups cannot be loaded.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What a node needs to run the groups when its turn comes.
pub(crate) struct LeaderContext {
    pub(crate) client: async_nats::Client,
    pub(crate) names: Names,
    pub(crate) bucket: kv::Store,
    pub(crate) lease_bucket: kv::Store,
    pub(crate) node: String,
    pub(crate) indexes: LogIndexes,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) stopping: CancellationToken,
    pub(crate) max_parked: usize,
    /// What nodes seal their messages with.
    pub(crate) key: NodeKey,
}

/// A member whose stream is on some node, by the token its node chose.
struct Remote {
    link: MemberLink,
    last_seen: Instant,
}

type Remotes = Arc<Mutex<HashMap<String, Remote>>>;

/// Takes the lease whenever it is free and runs the groups while it holds
/// it, until the server stops.
pub(crate) async fn run(context: LeaderContext) {
    loop {
        let Some((held, revision)) =
            lease::acquire(&context.lease_bucket, &context.node, &context.stopping).await
        else {
            return;
        };
        tracing::info!(node = %context.node, epoch = held.epoch, "this node runs the consumer groups");
        context.metrics.groups_leader.set(1);
        let release = CancellationToken::new();
        let keeper = tokio::spawn(lease::keep(
            context.lease_bucket.clone(),
            context.node.clone(),
            held.clone(),
            revision,
            release.clone(),
        ));
        if let Err(error) = lead(&context, &held).await {
            tracing::error!(%error, "cannot run the consumer groups; giving up the lease");
            tokio::select! {
                () = context.stopping.cancelled() => {}
                () = tokio::time::sleep(RETRY_AFTER) => {}
            }
        }
        release.cancel();
        if let Err(error) = keeper.await {
            tracing::error!(%error, "the lease task failed");
        }
        context.metrics.groups_leader.set(0);
        tracing::info!(node = %context.node, "this node no longer runs the consumer groups");
        if context.stopping.is_cancelled() {
            return;
        }
    }
}

/// Runs the groups until the lease is lost or the server stops; their
/// tasks have stored their progress when it returns.
async fn lead(context: &LeaderContext, held: &Arc<Held>) -> Result<(), ApiError> {
    let stop = CancellationToken::new();
    let store = Arc::new(NatsGroupStore::new(context.bucket.clone(), held.clone()));
    let registry = Registry::start(
        context.indexes.clone(),
        store,
        stop.clone(),
        context.metrics.clone(),
        context.max_parked,
    )
    .await?;
    let (mut calls, mut reports) = match (
        context
            .client
            .subscribe(context.names.calls(&context.node))
            .await,
        context
            .client
            .subscribe(context.names.reports(&context.node))
            .await,
    ) {
        (Ok(calls), Ok(reports)) => (calls, reports),
        (Err(error), _) | (_, Err(error)) => {
            stop.cancel();
            registry.stopped().await;
            return Err(ApiError::Unavailable(format!(
                "cannot subscribe to the consumer groups' subjects: {error}"
            )));
        }
    };
    let remotes: Remotes = Arc::default();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            () = context.stopping.cancelled() => break,
            () = held.lost.cancelled() => break,
            call = calls.next() => match call {
                Some(call) => {
                    let answerer = Answerer {
                        client: context.client.clone(),
                        registry: registry.clone(),
                        remotes: remotes.clone(),
                        key: context.key.clone(),
                    };
                    tokio::spawn(answerer.answer(call));
                }
                None => break,
            },
            report = reports.next() => match report {
                Some(report) => take_report(&remotes, &context.key, &report.payload).await,
                None => break,
            },
            _ = tick.tick() => forget_silent(&remotes).await,
        }
    }
    drop((calls, reports));
    stop.cancel();
    registry.stopped().await;
    Ok(())
}

/// Takes out of their groups the members whose nodes stopped reporting.
async fn forget_silent(remotes: &Remotes) {
    let silent: Vec<(String, MemberLink)> = {
        let mut remotes = remotes.lock();
        let gone: Vec<String> = remotes
            .iter()
            .filter(|(_, remote)| remote.last_seen.elapsed() > MEMBER_SILENT)
            .map(|(token, _)| token.clone())
            .collect();
        gone.into_iter()
            .filter_map(|token| remotes.remove(&token).map(|remote| (token, remote.link)))
            .collect()
    };
    for (token, link) in silent {
        tracing::info!(%token, "a member's node went silent; its events go to the others");
        link.leave().await;
    }
}

/// Passes a member's acknowledgement or departure to its group.
async fn take_report(remotes: &Remotes, key: &NodeKey, payload: &[u8]) {
    let report = match key.open_message::<cluster::MemberReport>(Purpose::Report, payload) {
        Ok(report) => report,
        Err(refusal) => {
            tracing::warn!(%refusal, "a member report was refused");
            return;
        }
    };
    let link = {
        let mut remotes = remotes.lock();
        if matches!(report.kind, Some(member_report::Kind::Leave(_))) {
            remotes.remove(&report.token).map(|remote| remote.link)
        } else {
            remotes.get_mut(&report.token).map(|remote| {
                remote.last_seen = Instant::now();
                remote.link.clone()
            })
        }
    };
    let Some(link) = link else {
        return;
    };
    match report.kind {
        Some(member_report::Kind::Ack(ack)) => link.ack(ack.positions).await,
        Some(member_report::Kind::Nack(nack)) => {
            // Checked on the member's node.
            if let Ok(action) = nack_action(nack.action) {
                link.nack(nack.positions, action).await;
            }
        }
        Some(member_report::Kind::Leave(_)) => link.leave().await,
        None => {}
    }
}

/// Answers one call.
struct Answerer {
    client: async_nats::Client,
    registry: Arc<Registry>,
    remotes: Remotes,
    key: NodeKey,
}

impl Answerer {
    async fn answer(self, message: async_nats::Message) {
        let Some(reply) = message.reply.clone() else {
            return;
        };
        let call = self
            .key
            .open_message::<cluster::GroupCall>(Purpose::Call, message.payload.as_ref());
        let answer = match call {
            Ok(call) => match self.kind(call.kind).await {
                Ok(kind) => kind,
                Err(error) => group_answer::Kind::Refused(refused(&error)),
            },
            Err(Unsealed::Malformed) => group_answer::Kind::Refused(refused(
                &ApiError::InvalidArgument(Unsealed::Malformed.to_string()),
            )),
            Err(refusal) => {
                tracing::warn!(%refusal, "a consumer group call was refused");
                group_answer::Kind::Refused(refused(&ApiError::PermissionDenied(
                    refusal.to_string(),
                )))
            }
        };
        let answer = cluster::GroupAnswer { kind: Some(answer) }.encode_to_vec();
        if let Err(error) = self.client.publish(reply, answer.into()).await {
            tracing::warn!(%error, "cannot answer a consumer group call");
        }
    }

    async fn kind(&self, call: Option<group_call::Kind>) -> Result<group_answer::Kind, ApiError> {
        use group_answer::Kind as Answer;
        let registry = &self.registry;
        Ok(match call {
            Some(group_call::Kind::Create(request)) => Answer::Info(
                registry
                    .create(&request.name, &request.settings.unwrap_or_default())
                    .await?,
            ),
            Some(group_call::Kind::Update(request)) => Answer::Info(
                registry
                    .update(&request.name, &request.settings.unwrap_or_default())
                    .await?,
            ),
            Some(group_call::Kind::Delete(request)) => {
                registry.delete(&request.name).await?;
                Answer::Done(cluster::Done {})
            }
            Some(group_call::Kind::Get(request)) => {
                Answer::Info(registry.info(&request.name).await?)
            }
            Some(group_call::Kind::List(_)) => Answer::List(v1::ListConsumerGroupsResponse {
                groups: registry.list().await?,
            }),
            Some(group_call::Kind::ReplayParked(request)) => {
                Answer::Replayed(v1::ReplayParkedResponse {
                    replayed: registry.replay_parked(&request.name).await?,
                })
            }
            Some(group_call::Kind::Join(join)) => {
                self.join(join).await?;
                Answer::Done(cluster::Done {})
            }
            Some(group_call::Kind::Alive(alive)) => {
                let mut remotes = self.remotes.lock();
                let remote = remotes.get_mut(&alive.token);
                let known = remote.is_some();
                if let Some(remote) = remote {
                    remote.last_seen = Instant::now();
                }
                Answer::Known(known)
            }
            None => {
                return Err(ApiError::InvalidArgument(
                    "an empty consumer group call".into(),
                ));
            }
        })
    }

    /// Adds a member whose stream is on some node; its deliveries go to its
    /// inbox.
    async fn join(&self, join: cluster::RemoteJoin) -> Result<(), ApiError> {
        let (sender, receiver) = crate::groups::member_queue();
        let link = self
            .registry
            .join(&join.group, join.member_name, sender)
            .await?;
        let previous = self.remotes.lock().insert(
            join.token.clone(),
            Remote {
                link: link.clone(),
                last_seen: Instant::now(),
            },
        );
        if let Some(previous) = previous {
            previous.link.leave().await;
        }
        tokio::spawn(forward(
            self.client.clone(),
            self.key.clone(),
            receiver,
            join.inbox,
            join.token,
            link,
            self.remotes.clone(),
        ));
        Ok(())
    }
}

/// Publishes what the group's task sends a member to the member's inbox,
/// until the task lets the member go.
async fn forward(
    client: async_nats::Client,
    key: NodeKey,
    mut receiver: crate::groups::member_queue::MemberReceiver,
    inbox: String,
    token: String,
    link: MemberLink,
    remotes: Remotes,
) {
    while let Some(message) = receiver.recv().await {
        let kind = match message {
            Ok(response) => to_member::Kind::Response(response),
            // The group was deleted, or the member was let go (it fell
            // behind, or a park was refused): the member's stream ends
            // with the status that says why.
            Err(error) if matches!(error.code(), Code::NotFound | Code::ResourceExhausted) => {
                to_member::Kind::End(refused(&error))
            }
            // This node stops running the groups: the member's node joins
            // again wherever they run next.
            Err(_) => continue,
        };
        let message = key.seal_message(Purpose::ToMember, &cluster::ToMember { kind: Some(kind) });
        if let Err(error) = client.publish(inbox.clone(), message).await {
            tracing::warn!(%error, "cannot send to a member on another node");
        }
    }
    let mut remotes = remotes.lock();
    if remotes
        .get(&token)
        .is_some_and(|remote| remote.link.member == link.member)
    {
        remotes.remove(&token);
    }
}
