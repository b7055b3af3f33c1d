//! One consumer group at work: a task that reads the log after the group's
//! position, keeps the matching events in its dispatch state
//! (`accord_domain::GroupState`), hands them to the members' streams, takes
//! their acknowledgements, and stores the checkpoint and the parked events.
//!
//! The writer never waits for a group: the task reads the log like any
//! reader, and stops reading ahead once `READ_AHEAD` events or
//! `READ_AHEAD_BYTES` of them are unsettled.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use accord_domain::{DispatchSettings, GroupState, MemberId, NackAction};
use accord_proto::recorded_event_to_wire;
use accord_proto::v1;
use accord_proto::v1::consume_response::Kind;
use accord_store::EventLog;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::held_events::HeldEvents;
use super::member_queue::{MEMBER_BYTES, MEMBER_MESSAGES, MemberSender, Refused};
use super::storage::{GroupStorage, ParkedNow, Progress};
use crate::error::ApiError;
use crate::metrics::{GroupLabels, Metrics};
use crate::reads::EventFilter;
use crate::streams::LogIndexes;

/// Unsettled events the task keeps before it stops reading ahead.
const READ_AHEAD: usize = 10_000;
/// Bytes of unsettled events the task keeps before it stops reading ahead
/// (an event may be up to `--max-event-bytes`: 10,000 of them would be
/// gigabytes).
pub(crate) const READ_AHEAD_BYTES: usize = 8 * 1024 * 1024;
/// Events read from the log at once.
const READ_BATCH: usize = 1_000;
/// How often ack timeouts are checked.
const TICK: Duration = Duration::from_millis(100);
/// How often a member hears from a quiet group.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// Least time between two writes of the checkpoint.
const PERSIST_EVERY: Duration = Duration::from_millis(50);
/// Pause after a failed read or write before the next try.
const RETRY_AFTER: Duration = Duration::from_millis(200);

/// Why a member's stream ends when it leaves its deliveries unread.
pub(crate) fn fell_behind(member: &str, group: &str) -> ApiError {
    ApiError::LimitExceeded(format!(
        "member {member:?} of consumer group {group:?} fell behind: {MEMBER_MESSAGES} messages or {} MiB unread; it left the group (its events go to other members); read the stream and join again",
        MEMBER_BYTES >> 20
    ))
}

/// What a group's figures are now.
pub(crate) struct GroupSnapshot {
    pub(crate) checkpoint: u64,
    pub(crate) members: u32,
    pub(crate) in_flight: u64,
    pub(crate) parked: u64,
    pub(crate) delivered_total: u64,
    pub(crate) redelivered_total: u64,
}

/// The room an acknowledgement takes in its group's queue, given back when
/// the task has taken it.
pub(crate) struct Queued {
    pub(crate) _permit: tokio::sync::OwnedSemaphorePermit,
}

/// What a group's task is asked.
pub(crate) enum GroupCommand {
    Join {
        name: String,
        sender: MemberSender,
        reply: oneshot::Sender<MemberId>,
    },
    Leave(MemberId),
    Ack(MemberId, Vec<u64>, Queued),
    Nack(MemberId, Vec<u64>, NackAction, Queued),
    Snapshot(oneshot::Sender<GroupSnapshot>),
    /// New settings and the filter built from them (the start stays).
    Update(DispatchSettings, Box<EventFilter>, oneshot::Sender<()>),
    ReplayParked(oneshot::Sender<u64>),
    /// Ends every member's stream: the group was deleted.
    Delete(oneshot::Sender<()>),
}

struct Member {
    name: String,
    sender: MemberSender,
}

/// What every group's task shares.
#[derive(Clone)]
pub(crate) struct RunnerContext {
    pub(crate) log: Arc<dyn EventLog>,
    /// The log's indexes, for reads while the group is behind.
    pub(crate) indexes: LogIndexes,
    pub(crate) store: Arc<dyn GroupStorage>,
    pub(crate) stopping: CancellationToken,
    pub(crate) metrics: Arc<Metrics>,
    /// Most parked events per group.
    pub(crate) max_parked: usize,
}

pub(crate) struct Runner {
    name: String,
    context: RunnerContext,
    filter: EventFilter,
    state: GroupState,
    /// The unsettled events read from the log, as they go out.
    events: HeldEvents,
    members: HashMap<MemberId, Member>,
    commands: mpsc::Receiver<GroupCommand>,
    started: Instant,
    /// What the store holds: the checkpoint, the parked events, and
    /// `GroupState::parked_changes` when they were stored.
    stored_checkpoint: u64,
    stored_parked: BTreeSet<u64>,
    stored_parked_changes: u64,
    last_persist: Instant,
    last_heartbeat: Instant,
    /// Deliveries and redeliveries already counted in the metrics.
    reported: (u64, u64),
    /// Whether `Metrics::groups_parked_full` counts this group.
    counted_full: bool,
}

impl Runner {
    /// A task for group `name` with `settings` and `filter`, at
    /// `checkpoint` with `parked` (as stored).
    pub(crate) fn new(
        name: String,
        (settings, filter): (DispatchSettings, EventFilter),
        checkpoint: u64,
        parked: Vec<(u64, String)>,
        context: RunnerContext,
        commands: mpsc::Receiver<GroupCommand>,
    ) -> Self {
        let stored_parked = parked.iter().map(|(position, _)| *position).collect();
        Self {
            name,
            context,
            filter,
            state: GroupState::new(settings, checkpoint, parked),
            events: HeldEvents::default(),
            members: HashMap::new(),
            commands,
            started: Instant::now(),
            stored_checkpoint: checkpoint,
            stored_parked,
            stored_parked_changes: 0,
            last_persist: Instant::now(),
            last_heartbeat: Instant::now(),
            reported: (0, 0),
            counted_full: false,
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    pub(crate) async fn run(mut self) {
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut head = self.context.log.watch_head();
        let stopping = self.context.stopping.clone();
        loop {
            let read_more = self.state.unsettled() < READ_AHEAD
                && self.events.bytes() < READ_AHEAD_BYTES
                && self.context.log.head() > self.state.offered_through();
            tokio::select! {
                biased;
                () = stopping.cancelled() => break,
                command = self.commands.recv() => match command {
                    Some(command) => {
                        if !self.handle(command) {
                            return;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    self.state.expire(self.now_ms());
                    self.heartbeat();
                    self.report();
                }
                changed = head.changed(), if !read_more => {
                    if changed.is_err() {
                        break;
                    }
                }
                () = std::future::ready(()), if read_more => {
                    if let Err(error) = self.read().await {
                        tracing::warn!(group = %self.name, %error, "consumer group cannot read the log; trying again");
                        tokio::time::sleep(RETRY_AFTER).await;
                    }
                }
            }
            self.deliver().await;
            if self.last_persist.elapsed() >= PERSIST_EVERY {
                self.persist().await;
            }
        }
        self.persist().await;
        self.count_parked_full(false);
        for (_, member) in self.members.drain() {
            member.sender.end(ApiError::Unavailable(
                "the server is shutting down; join again (unsettled events go out again)".into(),
            ));
        }
    }

    /// Answers a command; false once the group is gone.
    fn handle(&mut self, command: GroupCommand) -> bool {
        match command {
            GroupCommand::Join {
                name,
                sender,
                reply,
            } => {
                let member = self.state.join();
                let joined = v1::ConsumeResponse {
                    kind: Some(Kind::Joined(v1::Joined {
                        member_id: format!("{}/{member}", self.name),
                    })),
                };
                if sender.send(joined).is_ok() {
                    tracing::info!(group = %self.name, member, member_name = %name, "member joined");
                    self.members.insert(member, Member { name, sender });
                    let _ = reply.send(member);
                } else {
                    self.state.leave(member);
                }
            }
            GroupCommand::Leave(member) => self.leave(member),
            GroupCommand::Ack(member, positions, _queued) => {
                self.state.ack(member, &positions);
                self.forget_settled(&positions);
            }
            GroupCommand::Nack(member, positions, action, _queued) => {
                let refused = self.state.parks_refused();
                self.state.nack(member, &positions, action);
                self.forget_settled(&positions);
                if self.state.parks_refused() > refused {
                    self.refuse_park(member);
                }
            }
            GroupCommand::Snapshot(reply) => {
                let _ = reply.send(GroupSnapshot {
                    checkpoint: self.state.checkpoint(),
                    members: self.state.members(),
                    in_flight: self.state.in_flight(),
                    parked: self.state.parked().count() as u64,
                    delivered_total: self.state.delivered_total(),
                    redelivered_total: self.state.redelivered_total(),
                });
            }
            GroupCommand::Update(settings, filter, reply) => {
                self.state.update(settings);
                self.filter = *filter;
                let _ = reply.send(());
            }
            GroupCommand::ReplayParked(reply) => {
                let _ = reply.send(self.state.replay_parked());
            }
            GroupCommand::Delete(reply) => {
                for (_, member) in self.members.drain() {
                    member.sender.end(ApiError::NotFound(format!(
                        "consumer group {:?} was deleted",
                        self.name
                    )));
                }
                self.unreport();
                let _ = reply.send(());
                return false;
            }
        }
        true
    }

    /// Ends `member`'s stream: it asked to park an event while the group
    /// holds as many parked events as it may (the event goes out again).
    fn refuse_park(&mut self, member: MemberId) {
        let parked = self.state.parked().count();
        tracing::warn!(group = %self.name, parked, "a park was refused: the group's parked events are at their limit");
        if let Some(gone) = self.members.get(&member) {
            gone.sender.end(ApiError::LimitExceeded(format!(
                "consumer group {:?} holds {parked} parked events, the most it keeps (--max-parked-per-group): the event was not parked and goes out again; replay the parked events (ReplayParked) and settle them, then join again",
                self.name
            )));
        }
        self.leave(member);
    }

    fn leave(&mut self, member: MemberId) {
        if let Some(gone) = self.members.remove(&member) {
            tracing::info!(group = %self.name, member, member_name = %gone.name, "member left");
        }
        self.state.leave(member);
    }

    /// Drops the bodies of events no longer unsettled.
    fn forget_settled(&mut self, positions: &[u64]) {
        for position in positions {
            if !self.state.is_unsettled(*position) {
                self.events.remove(*position);
            }
        }
    }

    /// Reads the next events of the log and offers the matching ones.
    async fn read(&mut self) -> Result<(), ApiError> {
        let from = self.state.offered_through() + 1;
        if let Some(matched) = self
            .context
            .indexes
            .read(&self.filter, from, READ_BATCH)
            .await?
        {
            for event in matched.events {
                self.state.offer(event.position, &event.agreement_id);
                self.events
                    .insert(event.position, recorded_event_to_wire(&event));
            }
            self.state.pass(matched.through);
            return Ok(());
        }
        let head = self.context.log.head();
        let events = self.context.log.read_log(from, READ_BATCH).await?;
        if events.is_empty() {
            // Positions that hold no event (quarantined on NATS).
            self.state.pass(head);
            return Ok(());
        }
        for event in events {
            if self
                .filter
                .matches(self.context.log.as_ref(), &event)
                .await?
            {
                self.state.offer(event.position, &event.agreement_id);
                self.events
                    .insert(event.position, recorded_event_to_wire(&event));
            } else {
                self.state.pass(event.position);
            }
        }
        Ok(())
    }

    /// Sends what the dispatch state hands out.
    async fn deliver(&mut self) {
        loop {
            let deliveries = self.state.dispatch(self.now_ms());
            if deliveries.is_empty() {
                return;
            }
            for delivery in deliveries {
                let event = match self.events.get(delivery.position) {
                    Some(event) => Some(event.clone()),
                    // A parked event replayed (its body was dropped when it was parked).
                    None => self
                        .context
                        .log
                        .read_log(delivery.position, 1)
                        .await
                        .ok()
                        .and_then(|events| events.into_iter().next())
                        .filter(|event| event.position == delivery.position)
                        .map(|event| recorded_event_to_wire(&event)),
                };
                let Some(event) = event else {
                    tracing::error!(group = %self.name, position = delivery.position, "cannot read an event to deliver; it goes out again later");
                    self.state
                        .nack(delivery.member, &[delivery.position], NackAction::Retry);
                    return;
                };
                let response = v1::ConsumeResponse {
                    kind: Some(Kind::Delivery(v1::ConsumerDelivery {
                        event: Some(event),
                        delivery_count: delivery.delivery_count,
                    })),
                };
                if !self.send_to(delivery.member, response) {
                    // Its stream is gone or full: what it held goes to the others.
                    self.leave(delivery.member);
                }
            }
        }
    }

    /// Sets the group's metrics.
    fn report(&mut self) {
        let labels = GroupLabels {
            group: self.name.clone(),
        };
        let metrics = &self.context.metrics;
        let gauge = |value: u64| i64::try_from(value).unwrap_or(i64::MAX);
        metrics.group_lag.get_or_create(&labels).set(gauge(
            self.context
                .log
                .head()
                .saturating_sub(self.state.checkpoint()),
        ));
        metrics
            .group_in_flight
            .get_or_create(&labels)
            .set(gauge(self.state.in_flight()));
        metrics
            .group_parked
            .get_or_create(&labels)
            .set(gauge(self.state.parked().count() as u64));
        metrics
            .group_members
            .get_or_create(&labels)
            .set(i64::from(self.state.members()));
        let full = self.state.park_is_full();
        metrics
            .group_parked_full
            .get_or_create(&labels)
            .set(i64::from(full));
        let (delivered, redelivered) =
            (self.state.delivered_total(), self.state.redelivered_total());
        metrics
            .group_deliveries
            .get_or_create(&labels)
            .inc_by(delivered.saturating_sub(self.reported.0));
        metrics
            .group_redeliveries
            .get_or_create(&labels)
            .inc_by(redelivered.saturating_sub(self.reported.1));
        self.reported = (delivered, redelivered);
        self.count_parked_full(full);
    }

    /// Counts this group among those whose parked list is full (health's
    /// alarm) while it is, and no longer once it is not.
    fn count_parked_full(&mut self, full: bool) {
        if full != self.counted_full {
            let change = if full { 1 } else { -1 };
            self.context.metrics.groups_parked_full.inc_by(change);
            self.counted_full = full;
        }
    }

    /// Takes the group's series out of the metrics (it was deleted).
    fn unreport(&mut self) {
        self.count_parked_full(false);
        let labels = GroupLabels {
            group: self.name.clone(),
        };
        self.context.metrics.group_lag.remove(&labels);
        self.context.metrics.group_in_flight.remove(&labels);
        self.context.metrics.group_parked.remove(&labels);
        self.context.metrics.group_members.remove(&labels);
        self.context.metrics.group_parked_full.remove(&labels);
        self.context.metrics.group_deliveries.remove(&labels);
        self.context.metrics.group_redeliveries.remove(&labels);
    }

    fn heartbeat(&mut self) {
        if self.last_heartbeat.elapsed() < HEARTBEAT {
            return;
        }
        self.last_heartbeat = Instant::now();
        let heartbeat = v1::Heartbeat {
            head_position: self.context.log.head(),
            last_position: self.state.offered_through(),
        };
        let members: Vec<MemberId> = self.members.keys().copied().collect();
        for member in members {
            let heartbeat = v1::ConsumeResponse {
                kind: Some(Kind::Heartbeat(heartbeat)),
            };
            if !self.send_to(member, heartbeat) {
                self.leave(member);
            }
        }
    }

    /// Sends `response` to `member`; false when its stream is gone, or has
    /// so much unread that it is ended (what it had not read is dropped and
    /// its stream ends with a status that says why, so it does not stay
    /// open and silent).
    fn send_to(&self, member: MemberId, response: v1::ConsumeResponse) -> bool {
        let Some(member) = self.members.get(&member) else {
            return false;
        };
        match member.sender.send(response) {
            Ok(()) => true,
            Err(Refused::Gone) => false,
            Err(Refused::Full) => {
                tracing::warn!(group = %self.name, member_name = %member.name, "member ended: it does not read its stream");
                member.sender.end(fell_behind(&member.name, &self.name));
                false
            }
        }
    }

    /// Stores the checkpoint and the parked events if they changed.
    async fn persist(&mut self) {
        let checkpoint = self.state.checkpoint();
        let parked_changes = self.state.parked_changes();
        let parked_changed = parked_changes != self.stored_parked_changes;
        if checkpoint == self.stored_checkpoint && !parked_changed {
            return;
        }
        // The parked positions now, once: for the store's diff, and as what
        // it holds once written.
        let mut parked_now = None;
        let parked = parked_changed.then(|| {
            // Only the positions are gathered (an agreement id is copied
            // only for what was parked since the last write).
            let now: BTreeSet<u64> = self.state.parked().map(|(position, _)| position).collect();
            // A parked event goes out again only on replay, read from the
            // log then: its body need not stay in memory.
            for position in &now {
                self.events.remove(*position);
            }
            let parked = ParkedNow {
                added: self
                    .state
                    .parked()
                    .filter(|(position, _)| !self.stored_parked.contains(position))
                    .map(|(position, agreement)| (position, agreement.to_owned()))
                    .collect(),
                removed: self.stored_parked.difference(&now).copied().collect(),
            };
            parked_now = Some(now);
            parked
        });
        self.last_persist = Instant::now();
        let written = self
            .context
            .store
            .progress(&self.name, Progress { checkpoint, parked })
            .await;
        match written {
            Ok(()) => {
                self.stored_checkpoint = checkpoint;
                if let Some(parked_now) = parked_now {
                    self.stored_parked = parked_now;
                    self.stored_parked_changes = parked_changes;
                }
            }
            Err(error) => {
                tracing::error!(group = %self.name, %error, "cannot store the consumer group's checkpoint");
            }
        }
    }
}
