//! The server's consumer groups by name: created, updated and deleted
//! through the store first, each run by its own task (`runner`).

use std::collections::BTreeMap;
use std::sync::Arc;

use accord_domain::{MemberId, NackAction};
use accord_proto::storage::StoredConsumerGroup;
use accord_proto::v1;
use accord_store::{EventLog, StoreError};
use tokio::sync::{Mutex, mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::runner::{GroupCommand, GroupSnapshot, MemberSender, Runner, RunnerContext};
use super::settings;
use super::store::GroupStore;
use crate::error::ApiError;
use crate::grpc::{BuyerCountries, EventFilter};
use crate::metrics::Metrics;

/// Commands queued for one group's task before callers wait.
const COMMAND_QUEUE: usize = 4_096;
/// Most groups a server keeps (each is a task reading the log).
pub(crate) const MAX_GROUPS: usize = 1_000;

struct Group {
    definition: StoredConsumerGroup,
    commands: mpsc::Sender<GroupCommand>,
}

/// Every consumer group of this server.
pub(crate) struct Registry {
    log: Arc<dyn EventLog>,
    store: Arc<GroupStore>,
    countries: Arc<BuyerCountries>,
    stopping: CancellationToken,
    metrics: Arc<Metrics>,
    groups: Mutex<BTreeMap<String, Group>>,
    /// Every group's task, awaited when the server stops.
    tasks: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

/// A member's way to its group's task.
#[derive(Clone)]
pub(crate) struct MemberLink {
    pub(crate) member: MemberId,
    commands: mpsc::Sender<GroupCommand>,
}

impl MemberLink {
    pub(crate) async fn ack(&self, positions: Vec<u64>) {
        let _ = self
            .commands
            .send(GroupCommand::Ack(self.member, positions))
            .await;
    }

    pub(crate) async fn nack(&self, positions: Vec<u64>, action: NackAction) {
        let _ = self
            .commands
            .send(GroupCommand::Nack(self.member, positions, action))
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

impl Registry {
    /// Starts a task for every stored group.
    pub(crate) fn start(
        log: Arc<dyn EventLog>,
        store: Arc<GroupStore>,
        stopping: CancellationToken,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Self>, StoreError> {
        let registry = Self {
            log,
            store,
            countries: Arc::new(BuyerCountries::default()),
            stopping,
            metrics,
            groups: Mutex::new(BTreeMap::new()),
            tasks: parking_lot::Mutex::new(Vec::new()),
        };
        let mut groups = BTreeMap::new();
        for stored in registry.store.load()? {
            let group = registry
                .spawn(
                    stored.name.clone(),
                    stored.definition,
                    stored.checkpoint,
                    stored.parked,
                )
                .map_err(|error| {
                    StoreError::Corrupt(format!(
                        "consumer group {:?} as stored: {error}",
                        stored.name
                    ))
                })?;
            groups.insert(stored.name, group);
        }
        registry
            .groups
            .try_lock()
            .expect("not shared yet")
            .extend(groups);
        Ok(Arc::new(registry))
    }

    fn spawn(
        &self,
        name: String,
        definition: StoredConsumerGroup,
        checkpoint: u64,
        parked: Vec<(u64, String)>,
    ) -> Result<Group, ApiError> {
        let (commands, received) = mpsc::channel(COMMAND_QUEUE);
        let context = RunnerContext {
            log: self.log.clone(),
            store: self.store.clone(),
            countries: self.countries.clone(),
            stopping: self.stopping.clone(),
            metrics: self.metrics.clone(),
        };
        let runner = Runner::new(name, &definition, (checkpoint, parked), context, received)?;
        self.tasks.lock().push(tokio::spawn(runner.run()));
        Ok(Group {
            definition,
            commands,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&GroupStore) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|error| ApiError::Unavailable(format!("consumer group store task: {error}")))?
            .map_err(ApiError::from)
    }

    /// The stopping token the registry started with.
    pub(crate) fn stopping(&self) -> CancellationToken {
        self.stopping.clone()
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
        EventFilter::new(settings.filter.clone(), self.countries.clone())?;
        let definition = settings::stored(settings, self.log.head())?;
        let mut groups = self.groups.lock().await;
        if groups.contains_key(name) {
            return Err(ApiError::GroupExists(name.to_owned()));
        }
        if groups.len() >= MAX_GROUPS {
            return Err(ApiError::LimitExceeded(format!(
                "this server keeps at most {MAX_GROUPS} consumer groups; delete one first"
            )));
        }
        let (owned, stored) = (name.to_owned(), definition.clone());
        self.blocking(move |store| store.put(&owned, &stored))
            .await?;
        let start = definition.start;
        let group = self.spawn(name.to_owned(), definition, start, Vec::new())?;
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
        EventFilter::new(settings.filter.clone(), self.countries.clone())?;
        let mut groups = self.groups.lock().await;
        let group = groups.get_mut(name).ok_or_else(|| gone(name))?;
        let definition = StoredConsumerGroup {
            start: group.definition.start,
            ..settings::stored(settings, self.log.head())?
        };
        let (owned, stored) = (name.to_owned(), definition.clone());
        self.blocking(move |store| store.put(&owned, &stored))
            .await?;
        let changed = Box::new(definition.clone());
        ask(&group.commands, name, |reply| {
            GroupCommand::Update(changed, reply)
        })
        .await?;
        group.definition = definition;
        drop(groups);
        self.info(name).await
    }

    /// Deletes a group; its members' streams end.
    pub(crate) async fn delete(&self, name: &str) -> Result<(), ApiError> {
        settings::check_name("name", name)?;
        let mut groups = self.groups.lock().await;
        if !groups.contains_key(name) {
            return Err(gone(name));
        }
        let owned = name.to_owned();
        self.blocking(move |store| store.delete(&owned)).await?;
        if let Some(group) = groups.remove(name) {
            // A task already gone has nothing left to end.
            let _ = ask(&group.commands, name, GroupCommand::Delete).await;
        }
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
        let head = self.log.head();
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
        let (_, commands) = self.commands(group).await?;
        let member = ask(&commands, group, |reply| GroupCommand::Join {
            name: member_name,
            sender,
            reply,
        })
        .await?;
        Ok(MemberLink { member, commands })
    }
}
