//! The server's consumer groups by name: created, updated and deleted
//! through the store first, each run by its own task (`runner`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use accord_domain::{DispatchSettings, MemberId, NackAction};
use accord_proto::v1;
use accord_storage::storage::StoredConsumerGroup;
use accord_store::StoreError;
use tokio::sync::{Mutex, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::member_queue::MemberSender;
use super::runner::{GroupCommand, GroupSnapshot, Queued, Runner, RunnerContext};
use super::settings;
use super::storage::GroupStorage;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::reads::EventFilter;
use crate::streams::LogIndexes;

/// Commands queued for one group's task before callers wait.
const COMMAND_QUEUE: usize = 4_096;
/// Positions of acknowledgements queued for one group's task before its
/// members wait (8 bytes each: 8 MiB), so that a flood of large
/// acknowledgements holds a bounded amount of memory.
const QUEUED_POSITIONS: usize = 1 << 20;
/// Most groups a server keeps (each is a task reading the log).
pub(crate) const MAX_GROUPS: usize = 1_000;

struct Group {
    definition: StoredConsumerGroup,
    commands: mpsc::Sender<GroupCommand>,
    /// What its members' queued acknowledgements may hold.
    budget: Arc<Semaphore>,
}

/// Every consumer group of this server.
pub(crate) struct Registry {
    context: RunnerContext,
    groups: Mutex<BTreeMap<String, Group>>,
    /// Groups being deleted: their names cannot be created again until the
    /// store has forgotten them.
    deleting: parking_lot::Mutex<BTreeSet<String>>,
    /// Every group's task, awaited when the server stops.
    tasks: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

/// A member's way to its group's task.
#[derive(Clone)]
pub(crate) struct MemberLink {
    pub(crate) member: MemberId,
    commands: mpsc::Sender<GroupCommand>,
    budget: Arc<Semaphore>,
}

impl MemberLink {
    /// A member known as `member` whose acknowledgements go to `commands`.
    pub(crate) fn new(member: MemberId, commands: mpsc::Sender<GroupCommand>) -> Self {
        Self {
            member,
            commands,
            budget: Arc::new(Semaphore::new(QUEUED_POSITIONS)),
        }
    }

    /// Room for `positions` in the group's queue, waited for; None for a
    /// message over the limit (refused where it came in; from elsewhere,
    /// dropped).
    async fn queued(&self, positions: &[u64]) -> Option<Queued> {
        if positions.len() > settings::MAX_ACK_POSITIONS {
            tracing::warn!(
                positions = positions.len(),
                max = settings::MAX_ACK_POSITIONS,
                "an acknowledgement over the limit is dropped"
            );
            return None;
        }
        let count = u32::try_from(positions.len()).ok()?;
        let permit = self.budget.clone().acquire_many_owned(count).await.ok()?;
        Some(Queued { _permit: permit })
    }

    pub(crate) async fn ack(&self, positions: Vec<u64>) {
        let Some(queued) = self.queued(&positions).await else {
            return;
        };
        let _ = self
            .commands
            .send(GroupCommand::Ack(self.member, positions, queued))
            .await;
    }

    pub(crate) async fn nack(&self, positions: Vec<u64>, action: NackAction) {
        let Some(queued) = self.queued(&positions).await else {
            return;
        };
        let _ = self
            .commands
            .send(GroupCommand::Nack(self.member, positions, action, queued))
            .await;
    }

    pub(crate) async fn leave(&self) {
        let _ = self.commands.send(GroupCommand::Leave(self.member)).await;
    }
}

fn gone(name: &str) -> ApiError {
    ApiError::GroupNotFound(name.to_owned())
}

/// Asks group `name`'s task and waits for its answer.
async fn ask<T>(
    commands: &mpsc::Sender<GroupCommand>,
    name: &str,
    command: impl FnOnce(oneshot::Sender<T>) -> GroupCommand,
) -> Result<T, ApiError> {
    let (reply, answer) = oneshot::channel();
    commands
        .send(command(reply))
        .await
        .map_err(|_| gone(name))?;
    answer.await.map_err(|_| gone(name))
}

/// What a group's task runs with, checked: the dispatch settings and the
/// filter of `definition`.
fn runner_settings(
    context: &RunnerContext,
    definition: &StoredConsumerGroup,
) -> Result<(DispatchSettings, EventFilter), ApiError> {
    let filter = EventFilter::new(
        Some(settings::filter_of(definition)),
        context.indexes.buyer_countries().clone(),
    )?;
    let dispatch = DispatchSettings {
        max_parked: context.max_parked,
        ..settings::dispatch(definition)
    };
    Ok((dispatch, filter))
}

/// Starts the task of group `name`.
fn spawn(
    context: &RunnerContext,
    tasks: &parking_lot::Mutex<Vec<JoinHandle<()>>>,
    name: String,
    (definition, checked): (StoredConsumerGroup, (DispatchSettings, EventFilter)),
    checkpoint: u64,
    parked: Vec<(u64, String)>,
) -> Group {
    let (commands, received) = mpsc::channel(COMMAND_QUEUE);
    let runner = Runner::new(name, checked, checkpoint, parked, context.clone(), received);
    tasks.lock().push(tokio::spawn(runner.run()));
    Group {
        definition,
        commands,
        budget: Arc::new(Semaphore::new(QUEUED_POSITIONS)),
    }
}

impl Registry {
    /// Starts a task for every stored group.
    pub(crate) async fn start(
        indexes: LogIndexes,
        store: Arc<dyn GroupStorage>,
        stopping: CancellationToken,
        metrics: Arc<Metrics>,
        max_parked: usize,
    ) -> Result<Arc<Self>, StoreError> {
        let context = RunnerContext {
            log: indexes.log().clone(),
            indexes,
            store,
            stopping,
            metrics,
            max_parked,
        };
        let tasks = parking_lot::Mutex::new(Vec::new());
        let mut groups = BTreeMap::new();
        for stored in context.store.load().await? {
            let checked = runner_settings(&context, &stored.definition).map_err(|error| {
                StoreError::Corrupt(format!(
                    "consumer group {:?} as stored: {error}",
                    stored.name
                ))
            })?;
            let group = spawn(
                &context,
                &tasks,
                stored.name.clone(),
                (stored.definition, checked),
                stored.checkpoint,
                stored.parked,
            );
            groups.insert(stored.name, group);
        }
        Ok(Arc::new(Self {
            context,
            groups: Mutex::new(groups),
            deleting: parking_lot::Mutex::new(BTreeSet::new()),
            tasks,
        }))
    }

    /// The stopping token the registry started with.
    pub(crate) fn stopping(&self) -> CancellationToken {
        self.context.stopping.clone()
    }

    /// Waits until every group's task has stored its progress and ended
    /// (they end when the server's stopping token is cancelled).
    pub(crate) async fn stopped(&self) {
        let tasks = std::mem::take(&mut *self.tasks.lock());
        for task in tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "consumer group task failed");
            }
        }
    }

    /// Creates a group.
    pub(crate) async fn create(
        &self,
        name: &str,
        settings: &v1::ConsumerGroupSettings,
    ) -> Result<v1::ConsumerGroupInfo, ApiError> {
        settings::check_name("name", name)?;
        let definition = settings::stored(settings, self.context.log.head())?;
        let checked = runner_settings(&self.context, &definition)?;
        let mut groups = self.groups.lock().await;
        if groups.contains_key(name) {
            return Err(ApiError::GroupExists(name.to_owned()));
        }
        if self.deleting.lock().contains(name) {
            return Err(ApiError::Unavailable(format!(
                "consumer group {name:?} is being deleted; create it again in a moment"
            )));
        }
        if groups.len() >= MAX_GROUPS {
            return Err(ApiError::LimitExceeded(format!(
                "this server keeps at most {MAX_GROUPS} consumer groups; delete one first"
            )));
        }
        self.context.store.create(name, &definition).await?;
        let start = definition.start;
        let group = spawn(
            &self.context,
            &self.tasks,
            name.to_owned(),
            (definition, checked),
            start,
            Vec::new(),
        );
        groups.insert(name.to_owned(), group);
        drop(groups);
        tracing::info!(group = name, start, "consumer group created");
        self.info(name).await
    }

    /// Changes a group's settings (not its start).
    pub(crate) async fn update(
        &self,
        name: &str,
        settings: &v1::ConsumerGroupSettings,
    ) -> Result<v1::ConsumerGroupInfo, ApiError> {
        settings::check_name("name", name)?;
        let mut groups = self.groups.lock().await;
        let group = groups.get_mut(name).ok_or_else(|| gone(name))?;
        let definition = StoredConsumerGroup {
            start: group.definition.start,
            ..settings::stored(settings, self.context.log.head())?
        };
        let (dispatch, filter) = runner_settings(&self.context, &definition)?;
        self.context.store.update(name, &definition).await?;
        ask(&group.commands, name, |reply| {
            GroupCommand::Update(dispatch, Box::new(filter), reply)
        })
        .await?;
        group.definition = definition;
        drop(groups);
        self.info(name).await
    }

    /// Deletes a group; its members' streams end. Its task ends first, so
    /// that no write of its progress can follow the store's delete; no lock
    /// is held while it waits for the task (behind the task's queue).
    pub(crate) async fn delete(&self, name: &str) -> Result<(), ApiError> {
        settings::check_name("name", name)?;
        let group = {
            let mut groups = self.groups.lock().await;
            let group = groups.remove(name).ok_or_else(|| gone(name))?;
            self.deleting.lock().insert(name.to_owned());
            group
        };
        // A task already gone has nothing left to end.
        let _ = ask(&group.commands, name, GroupCommand::Delete).await;
        let deleted = self.context.store.delete(name).await;
        self.deleting.lock().remove(name);
        deleted?;
        tracing::info!(group = name, "consumer group deleted");
        Ok(())
    }

    async fn commands(
        &self,
        name: &str,
    ) -> Result<(StoredConsumerGroup, mpsc::Sender<GroupCommand>), ApiError> {
        let groups = self.groups.lock().await;
        let group = groups.get(name).ok_or_else(|| gone(name))?;
        Ok((group.definition.clone(), group.commands.clone()))
    }

    /// A group's settings and figures.
    pub(crate) async fn info(&self, name: &str) -> Result<v1::ConsumerGroupInfo, ApiError> {
        settings::check_name("name", name)?;
        let (definition, commands) = self.commands(name).await?;
        let snapshot: GroupSnapshot = ask(&commands, name, GroupCommand::Snapshot).await?;
        let head = self.context.log.head();
        Ok(v1::ConsumerGroupInfo {
            name: name.to_owned(),
            settings: Some(settings::wire(&definition)),
            checkpoint: snapshot.checkpoint,
            head_position: head,
            lag: head.saturating_sub(snapshot.checkpoint),
            members: snapshot.members,
            in_flight: snapshot.in_flight,
            parked: snapshot.parked,
            delivered_total: snapshot.delivered_total,
            redelivered_total: snapshot.redelivered_total,
        })
    }

    /// Every group, by name.
    pub(crate) async fn list(&self) -> Result<Vec<v1::ConsumerGroupInfo>, ApiError> {
        let names: Vec<String> = self.groups.lock().await.keys().cloned().collect();
        let mut infos = Vec::with_capacity(names.len());
        for name in names {
            match self.info(&name).await {
                Ok(info) => infos.push(info),
                // Deleted meanwhile.
                Err(ApiError::GroupNotFound(_)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(infos)
    }

    /// Delivers the group's parked events again.
    pub(crate) async fn replay_parked(&self, name: &str) -> Result<u64, ApiError> {
        settings::check_name("name", name)?;
        let (_, commands) = self.commands(name).await?;
        ask(&commands, name, GroupCommand::ReplayParked).await
    }

    /// Adds a member whose stream is `sender`.
    pub(crate) async fn join(
        &self,
        group: &str,
        member_name: String,
        sender: MemberSender,
    ) -> Result<MemberLink, ApiError> {
        settings::check_name("join.group", group)?;
        let (commands, budget) = {
            let groups = self.groups.lock().await;
            let found = groups.get(group).ok_or_else(|| gone(group))?;
            (found.commands.clone(), found.budget.clone())
        };
        let member = ask(&commands, group, |reply| GroupCommand::Join {
            name: member_name,
            sender,
            reply,
        })
        .await?;
        Ok(MemberLink {
            member,
            commands,
            budget,
        })
    }
}
