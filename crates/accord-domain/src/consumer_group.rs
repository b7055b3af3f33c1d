//! A consumer group's dispatch rules, free of I/O: which matching events
//! wait, which are in flight with which member until when, which are
//! parked, and the checkpoint at or below which every matching event is
//! settled (acknowledged, skipped or parked). The server feeds it the
//! matching events of the log in order and the members' actions, sends what
//! [`GroupState::dispatch`] hands out, and stores the checkpoint and the
//! parked events.
//!
//! The guarantees the contract names, each checked by the property test:
//! an event is held by at most one member at a time; a member holds at most
//! `max_in_flight` events; an event not settled within the ack timeout, or
//! held by a member that leaves, goes out again with its delivery count one
//! higher and is parked once it reached `max_deliveries`; with
//! `PinnedByAgreement` an agreement has at most one event in flight, its
//! events go out in log order, and an agreement stays with one member
//! while that member is there and answers; nothing below the checkpoint is
//! unsettled.

use std::collections::{BTreeMap, BTreeSet, HashMap};

#[cfg(test)]
mod tests;

/// How a group spreads events over its members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerStrategy {
    /// Any member with room takes the next event, in turn.
    RoundRobin,
    /// One member at a time holds an agreement; its events go out in log
    /// order, the next only after the previous one is settled.
    PinnedByAgreement,
}

/// What a member asks for an event it did not process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NackAction {
    /// Deliver it again later (to any member).
    Retry,
    /// Put it aside until an operator replays the parked events.
    Park,
    /// Settle it without processing.
    Skip,
}

/// The settings of a group that dispatch depends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchSettings {
    /// How events are spread over the members.
    pub strategy: ConsumerStrategy,
    /// Most unsettled events per member.
    pub max_in_flight: u32,
    /// Milliseconds a member has to settle an event.
    pub ack_timeout_ms: u64,
    /// Deliveries after which an unsettled event is parked.
    pub max_deliveries: u32,
    /// Most parked events the group keeps: beyond it a `Park` is refused
    /// and an event out of deliveries waits to go out again (nothing is
    /// lost; the group waits for its parked events to be replayed).
    pub max_parked: usize,
}

/// A member of the group, numbered as it joined.
pub type MemberId = u64;

/// An event handed to a member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Who gets it.
    pub member: MemberId,
    /// The event's log position.
    pub position: u64,
    /// 1 for the first delivery, then one more each time.
    pub delivery_count: u32,
}

/// An event not settled yet.
#[derive(Debug, Clone)]
struct Unsettled {
    agreement_id: String,
    /// Deliveries so far.
    deliveries: u32,
    /// The member holding it and when its time runs out.
    holder: Option<(MemberId, u64)>,
    /// Taken from the parked events by a replay (below the checkpoint).
    replayed: bool,
    /// The member that held it last: it goes to another one if it can.
    last_holder: Option<MemberId>,
}

/// The dispatch state of one consumer group.
#[derive(Debug, Clone)]
pub struct GroupState {
    settings: DispatchSettings,
    /// Every matching event at or below it is settled.
    checkpoint: u64,
    /// Every matching event up to here has been offered.
    offered_through: u64,
    unsettled: BTreeMap<u64, Unsettled>,
    /// Unsettled events no member holds, in log order.
    waiting: BTreeSet<u64>,
    /// Unsettled events per agreement, in log order.
    by_agreement: HashMap<String, BTreeSet<u64>>,
    /// Parked events and their agreements.
    parked: BTreeMap<u64, String>,
    /// What each member holds.
    members: BTreeMap<MemberId, BTreeSet<u64>>,
    /// The member an agreement stays with (pinned strategy).
    pins: HashMap<String, MemberId>,
    next_member: MemberId,
    /// The member served last (round robin).
    last_served: MemberId,
    delivered_total: u64,
    redelivered_total: u64,
    /// Changes to `parked` so far: what the store holds is current while
    /// this has not moved.
    parked_changes: u64,
    /// Parks refused because `max_parked` events were parked.
    parks_refused: u64,
}

impl GroupState {
    /// A group whose events up to `checkpoint` are settled, with `parked`
    /// events put aside (as stored).
    pub fn new(
        settings: DispatchSettings,
        checkpoint: u64,
        parked: impl IntoIterator<Item = (u64, String)>,
    ) -> Self {
        Self {
            settings,
            checkpoint,
            offered_through: checkpoint,
            unsettled: BTreeMap::new(),
            waiting: BTreeSet::new(),
            by_agreement: HashMap::new(),
            parked: parked.into_iter().collect(),
            members: BTreeMap::new(),
            pins: HashMap::new(),
            next_member: 1,
            last_served: 0,
            delivered_total: 0,
            redelivered_total: 0,
            parked_changes: 0,
            parks_refused: 0,
        }
    }

    /// Changes the settings; what members hold stays with them.
    pub fn update(&mut self, settings: DispatchSettings) {
        self.settings = settings;
    }

    /// Offers the matching event at `position` (after every one offered
    /// before; an older position is ignored).
    pub fn offer(&mut self, position: u64, agreement_id: &str) {
        if position <= self.offered_through {
            return;
        }
        self.offered_through = position;
        self.by_agreement
            .entry(agreement_id.to_owned())
            .or_default()
            .insert(position);
        self.unsettled.insert(
            position,
            Unsettled {
                agreement_id: agreement_id.to_owned(),
                deliveries: 0,
                holder: None,
                replayed: false,
                last_holder: None,
            },
        );
        self.waiting.insert(position);
    }

    /// Records that the log up to `position` holds no other matching event.
    pub fn pass(&mut self, position: u64) {
        self.offered_through = self.offered_through.max(position);
        self.advance_checkpoint();
    }

    /// Adds a member.
    pub fn join(&mut self) -> MemberId {
        let member = self.next_member;
        self.next_member += 1;
        self.members.insert(member, BTreeSet::new());
        member
    }

    /// Removes a member: what it held goes out again.
    pub fn leave(&mut self, member: MemberId) {
        let Some(held) = self.members.remove(&member) else {
            return;
        };
        self.pins.retain(|_, holder| *holder != member);
        for position in held {
            self.release(position);
        }
    }

    /// Settles the events `member` holds among `positions`; positions it
    /// does not hold are ignored. Returns how many were settled.
    pub fn ack(&mut self, member: MemberId, positions: &[u64]) -> usize {
        positions
            .iter()
            .filter(|position| self.settle_held(member, **position))
            .count()
    }

    /// Answers events `member` holds among `positions` with `action`;
    /// others are ignored. Returns how many were answered.
    pub fn nack(&mut self, member: MemberId, positions: &[u64], action: NackAction) -> usize {
        let mut answered = 0;
        for &position in positions {
            if !self.holds(member, position) {
                continue;
            }
            answered += 1;
            match action {
                NackAction::Skip => {
                    self.settle_held(member, position);
                }
                NackAction::Park if self.park_is_full() => {
                    // Refused: it goes out again, as after a retry.
                    self.parks_refused += 1;
                    if let Some(held) = self.members.get_mut(&member) {
                        held.remove(&position);
                    }
                    if let Some(event) = self.unsettled.get_mut(&position) {
                        event.last_holder = Some(member);
                        event.holder = None;
                    }
                    self.waiting.insert(position);
                }
                NackAction::Park => self.park(position),
                NackAction::Retry => {
                    if let Some(held) = self.members.get_mut(&member) {
                        held.remove(&position);
                    }
                    self.release(position);
                }
            }
        }
        answered
    }

    /// Takes back every event whose ack timeout ran out by `now_ms`.
    pub fn expire(&mut self, now_ms: u64) {
        let expired: Vec<(u64, MemberId)> = self
            .unsettled
            .iter()
            .filter_map(|(position, event)| match event.holder {
                Some((member, deadline)) if deadline <= now_ms => Some((*position, member)),
                _ => None,
            })
            .collect();
        for (position, member) in expired {
            if let Some(held) = self.members.get_mut(&member) {
                held.remove(&position);
            }
            // A member that does not answer loses the agreement.
            if let Some(event) = self.unsettled.get(&position) {
                let agreement_id = event.agreement_id.clone();
                if self.pins.get(&agreement_id) == Some(&member) {
                    self.pins.remove(&agreement_id);
                }
            }
            self.release(position);
        }
    }

    /// Hands waiting events to members with room, at `now_ms`.
    pub fn dispatch(&mut self, now_ms: u64) -> Vec<Delivery> {
        let mut deliveries = Vec::new();
        // Walks the waiting events in log order without copying them: a
        // call with every member full returns at once.
        let mut next = 0;
        while self.has_room() {
            let Some(&position) = self.waiting.range(next..).next() else {
                break;
            };
            next = position + 1;
            let Some(event) = self.unsettled.get(&position) else {
                continue;
            };
            let agreement_id = event.agreement_id.clone();
            let avoid = event.last_holder;
            let member = match self.settings.strategy {
                ConsumerStrategy::RoundRobin => self.next_with_room(avoid),
                ConsumerStrategy::PinnedByAgreement => {
                    if !self.next_of_agreement(&agreement_id, position) {
                        continue;
                    }
                    match self.pins.get(&agreement_id) {
                        Some(member) if self.room(*member) => Some(*member),
                        // The agreement waits for its member.
                        Some(_) => None,
                        None => self.next_with_room(avoid),
                    }
                }
            };
            let Some(member) = member else {
                continue;
            };
            if self.settings.strategy == ConsumerStrategy::PinnedByAgreement {
                self.pins.insert(agreement_id, member);
            }
            let deadline = now_ms.saturating_add(self.settings.ack_timeout_ms);
            let Some(event) = self.unsettled.get_mut(&position) else {
                continue;
            };
            event.deliveries += 1;
            event.holder = Some((member, deadline));
            if event.deliveries > 1 {
                self.redelivered_total += 1;
            }
            self.delivered_total += 1;
            self.waiting.remove(&position);
            self.last_served = member;
            if let Some(held) = self.members.get_mut(&member) {
                held.insert(position);
            }
            deliveries.push(Delivery {
                member,
                position,
                delivery_count: event.deliveries,
            });
        }
        deliveries
    }

    /// Puts every parked event back to be delivered again; returns how
    /// many. A replayed event stays listed as parked (and stored so) until
    /// it is settled, so that a restart meanwhile loses none.
    pub fn replay_parked(&mut self) -> u64 {
        let mut replayed = 0;
        let parked: Vec<(u64, String)> = self
            .parked
            .iter()
            .filter(|(position, _)| !self.unsettled.contains_key(position))
            .map(|(position, agreement_id)| (*position, agreement_id.clone()))
            .collect();
        for (position, agreement_id) in parked {
            self.by_agreement
                .entry(agreement_id.clone())
                .or_default()
                .insert(position);
            self.unsettled.insert(
                position,
                Unsettled {
                    agreement_id,
                    deliveries: 0,
                    holder: None,
                    replayed: true,
                    last_holder: None,
                },
            );
            self.waiting.insert(position);
            replayed += 1;
        }
        replayed
    }

    /// Whether the event at `position` still waits or is held.
    pub fn is_unsettled(&self, position: u64) -> bool {
        self.unsettled.contains_key(&position)
    }

    /// Every matching event at or below it is settled.
    pub fn checkpoint(&self) -> u64 {
        self.checkpoint
    }

    /// The last position offered or passed.
    pub fn offered_through(&self) -> u64 {
        self.offered_through
    }

    /// Parked events, in log order, with their agreements.
    pub fn parked(&self) -> impl Iterator<Item = (u64, &str)> {
        self.parked
            .iter()
            .map(|(position, agreement_id)| (*position, agreement_id.as_str()))
    }

    /// How many times the parked events changed (parked, or settled after
    /// a replay) since the group was loaded.
    pub fn parked_changes(&self) -> u64 {
        self.parked_changes
    }

    /// Parks refused so far because the group holds `max_parked` events.
    pub fn parks_refused(&self) -> u64 {
        self.parks_refused
    }

    /// Whether the group holds as many parked events as it may.
    pub fn park_is_full(&self) -> bool {
        self.parked.len() >= self.settings.max_parked
    }

    /// Events held by members.
    pub fn in_flight(&self) -> u64 {
        self.members.values().map(|held| held.len() as u64).sum()
    }

    /// Events held by `member`, in log order.
    pub fn held_by(&self, member: MemberId) -> Vec<u64> {
        self.members
            .get(&member)
            .map(|held| held.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Members present.
    pub fn members(&self) -> u32 {
        u32::try_from(self.members.len()).unwrap_or(u32::MAX)
    }

    /// Deliveries so far, first ones and repeats.
    pub fn delivered_total(&self) -> u64 {
        self.delivered_total
    }

    /// Deliveries of an event that had gone out before.
    pub fn redelivered_total(&self) -> u64 {
        self.redelivered_total
    }

    /// Unsettled events, held or waiting.
    pub fn unsettled(&self) -> usize {
        self.unsettled.len()
    }

    fn holds(&self, member: MemberId, position: u64) -> bool {
        self.members
            .get(&member)
            .is_some_and(|held| held.contains(&position))
    }

    /// Settles an event `member` holds; false if it does not hold it.
    fn settle_held(&mut self, member: MemberId, position: u64) -> bool {
        let Some(held) = self.members.get_mut(&member) else {
            return false;
        };
        if !held.remove(&position) {
            return false;
        }
        if let Some(event) = self.unsettled.remove(&position) {
            self.forget_agreement_position(&event.agreement_id, position);
            if event.replayed && self.parked.remove(&position).is_some() {
                self.parked_changes += 1;
            }
        }
        self.advance_checkpoint();
        true
    }

    /// Puts an event aside: settled for the checkpoint, kept for a replay.
    fn park(&mut self, position: u64) {
        self.waiting.remove(&position);
        if let Some(event) = self.unsettled.remove(&position) {
            if let Some(held) = event
                .holder
                .and_then(|(member, _)| self.members.get_mut(&member))
            {
                held.remove(&position);
            }
            self.forget_agreement_position(&event.agreement_id, position);
            self.parked.insert(position, event.agreement_id);
            self.parked_changes += 1;
        }
        self.advance_checkpoint();
    }

    /// An event no member holds any more: waiting again, or parked once it
    /// went out `max_deliveries` times.
    fn release(&mut self, position: u64) {
        let Some(event) = self.unsettled.get_mut(&position) else {
            return;
        };
        event.last_holder = event.holder.map(|(member, _)| member);
        event.holder = None;
        if event.deliveries >= self.settings.max_deliveries.max(1) && !self.park_is_full() {
            self.park(position);
        } else {
            self.waiting.insert(position);
        }
    }

    fn forget_agreement_position(&mut self, agreement_id: &str, position: u64) {
        if let Some(positions) = self.by_agreement.get_mut(agreement_id) {
            positions.remove(&position);
            if positions.is_empty() {
                self.by_agreement.remove(agreement_id);
            }
        }
    }

    /// True if `position` is the agreement's first unsettled event and
    /// none of its events is in flight (a replayed parked event may come
    /// before one already out: it waits until that one is settled).
    fn next_of_agreement(&self, agreement_id: &str, position: u64) -> bool {
        let Some(positions) = self.by_agreement.get(agreement_id) else {
            return false;
        };
        positions.first() == Some(&position)
            && positions.iter().all(|other| {
                self.unsettled
                    .get(other)
                    .is_none_or(|event| event.holder.is_none())
            })
    }

    fn advance_checkpoint(&mut self) {
        let first_unsettled = self
            .unsettled
            .iter()
            .find(|(_, event)| !event.replayed)
            .map(|(position, _)| *position);
        let settled_through = first_unsettled.map_or(self.offered_through, |first| first - 1);
        self.checkpoint = self.checkpoint.max(settled_through);
    }

    fn room(&self, member: MemberId) -> bool {
        self.members
            .get(&member)
            .is_some_and(|held| held.len() < self.settings.max_in_flight as usize)
    }

    fn has_room(&self) -> bool {
        self.members.keys().any(|member| self.room(*member))
    }

    /// The next member after the one served last that has room, other
    /// than `avoid` (the last holder of an event that comes back) unless
    /// it is the only one with room.
    fn next_with_room(&self, avoid: Option<MemberId>) -> Option<MemberId> {
        let after = self.members.range(self.last_served + 1..);
        let before = self.members.range(..=self.last_served);
        let mut fallback = None;
        for member in after.chain(before).map(|(member, _)| *member) {
            if !self.room(member) {
                continue;
            }
            if Some(member) != avoid {
                return Some(member);
            }
            fallback = Some(member);
        }
        fallback
    }
}
