//! Random joins, leaves, acks, nacks, timeouts and replays against a model
//! of the guarantees, then a drain that must settle every event once.

use std::collections::{BTreeSet, HashMap};

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Step {
    Offer { agreement: u8 },
    Pass,
    Join,
    Leave { member: u8 },
    AckSome { member: u8, keep_every: u8 },
    AckUnknown { position: u64 },
    Nack { member: u8, action: u8 },
    Tick { ms: u64 },
    Dispatch,
    ReplayParked,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (0u8..6).prop_map(|agreement| Step::Offer { agreement }),
        1 => Just(Step::Pass),
        2 => Just(Step::Join),
        1 => any::<u8>().prop_map(|member| Step::Leave { member }),
        4 => (any::<u8>(), 1u8..4).prop_map(|(member, keep_every)| Step::AckSome { member, keep_every }),
        1 => (0u64..200).prop_map(|position| Step::AckUnknown { position }),
        2 => (any::<u8>(), 0u8..3).prop_map(|(member, action)| Step::Nack { member, action }),
        2 => (0u64..40).prop_map(|ms| Step::Tick { ms }),
        6 => Just(Step::Dispatch),
        1 => Just(Step::ReplayParked),
    ]
}

/// What the model knows: every event offered, settled, parked.
#[derive(Default)]
struct Model {
    agreements: HashMap<u64, u8>,
    acked: BTreeSet<u64>,
    skipped: BTreeSet<u64>,
    deliveries: HashMap<u64, u32>,
    last_checkpoint: u64,
}

fn pick(members: &[MemberId], index: u8) -> Option<MemberId> {
    (!members.is_empty()).then(|| members[usize::from(index) % members.len()])
}

fn check(group: &GroupState, model: &mut Model, settings: DispatchSettings) {
    // One holder per event, room per member.
    let mut held = BTreeSet::new();
    for (member, positions) in &group.members {
        assert!(
            positions.len() <= settings.max_in_flight as usize,
            "member {member} holds {positions:?}"
        );
        for position in positions {
            assert!(held.insert(*position), "{position} held twice");
            assert_eq!(
                group.unsettled[position].holder.map(|(holder, _)| holder),
                Some(*member)
            );
        }
    }
    // Pinned: one event per agreement in flight (its order is checked as it
    // goes out).
    if settings.strategy == ConsumerStrategy::PinnedByAgreement {
        let mut in_flight = HashMap::new();
        for position in &held {
            let agreement = model.agreements[position];
            assert!(
                in_flight.insert(agreement, *position).is_none(),
                "agreement {agreement} twice in flight"
            );
        }
    }
    // The checkpoint never goes back and nothing below it is unsettled
    // (replayed parked events aside).
    assert!(group.checkpoint() >= model.last_checkpoint);
    model.last_checkpoint = group.checkpoint();
    for (position, event) in &group.unsettled {
        assert!(
            *position > group.checkpoint() || event.replayed,
            "{position} unsettled below {}",
            group.checkpoint()
        );
    }
    for position in model.acked.iter().chain(&model.skipped) {
        assert!(!group.unsettled.contains_key(position) || group.unsettled[position].replayed);
    }
}

/// A pinned agreement's event goes out first among its unsettled events
/// (those offered, or those replayed from the parked ones: a replay may
/// come after a later event went out).
fn assert_in_order(group: &GroupState, model: &Model, position: u64) {
    let agreement = model.agreements[&position];
    let replayed = group.unsettled[&position].replayed;
    let first = model
        .agreements
        .iter()
        .filter(|(other, a)| {
            **a == agreement
                && group
                    .unsettled
                    .get(other)
                    .is_some_and(|event| event.replayed == replayed)
        })
        .map(|(other, _)| *other)
        .min();
    assert_eq!(first, Some(position), "agreement {agreement} out of order");
}

fn run(steps: Vec<Step>, strategy: ConsumerStrategy) {
    let settings = DispatchSettings {
        strategy,
        max_in_flight: 3,
        ack_timeout_ms: 50,
        max_deliveries: 3,
        max_parked: usize::MAX,
    };
    let mut group = GroupState::new(settings, 0, []);
    let mut model = Model::default();
    let mut members: Vec<MemberId> = Vec::new();
    let mut now = 0;
    let mut position = 0;
    for step in steps {
        match step {
            Step::Offer { agreement } => {
                position += 1;
                model.agreements.insert(position, agreement);
                group.offer(position, &format!("a{agreement}"));
            }
            Step::Pass => {
                position += 1;
                group.pass(position);
            }
            Step::Join => members.push(group.join()),
            Step::Leave { member } => {
                if let Some(member) = pick(&members, member) {
                    members.retain(|m| *m != member);
                    group.leave(member);
                }
            }
            Step::AckSome { member, keep_every } => {
                if let Some(member) = pick(&members, member) {
                    let acks: Vec<u64> = group
                        .held_by(member)
                        .into_iter()
                        .enumerate()
                        .filter(|(index, _)| index % usize::from(keep_every) == 0)
                        .map(|(_, position)| position)
                        .collect();
                    assert_eq!(group.ack(member, &acks), acks.len());
                    for position in acks {
                        assert!(
                            model.acked.insert(position),
                            "{position} acknowledged twice"
                        );
                    }
                }
            }
            Step::AckUnknown { position } => {
                // Not held by this member: ignored.
                let before = group.unsettled();
                if let Some(member) = members.first()
                    && !group.held_by(*member).contains(&position)
                {
                    assert_eq!(group.ack(*member, &[position]), 0);
                    assert_eq!(group.unsettled(), before);
                }
            }
            Step::Nack { member, action } => {
                if let Some(member) = pick(&members, member) {
                    let held = group.held_by(member);
                    let action = [NackAction::Retry, NackAction::Park, NackAction::Skip]
                        [usize::from(action)];
                    assert_eq!(group.nack(member, &held, action), held.len());
                    if action == NackAction::Skip {
                        model.skipped.extend(held);
                    }
                }
            }
            Step::Tick { ms } => {
                now += ms;
                group.expire(now);
            }
            Step::Dispatch => {
                for delivery in group.dispatch(now) {
                    if strategy == ConsumerStrategy::PinnedByAgreement {
                        assert_in_order(&group, &model, delivery.position);
                    }
                    let count = model.deliveries.entry(delivery.position).or_default();
                    *count += 1;
                    assert!(members.contains(&delivery.member));
                    assert!(delivery.delivery_count <= settings.max_deliveries);
                }
            }
            Step::ReplayParked => {
                group.replay_parked();
            }
        }
        check(&group, &mut model, settings);
    }
    // Drain: the members left go, one that acknowledges everything joins.
    for member in members {
        group.leave(member);
    }
    let member = group.join();
    for _ in 0..10_000 {
        if group.unsettled() == 0 {
            break;
        }
        now += 100;
        group.expire(now);
        for delivery in group.dispatch(now) {
            assert_eq!(delivery.member, member);
            assert_eq!(group.ack(member, &[delivery.position]), 1);
            assert!(model.acked.insert(delivery.position), "acknowledged twice");
        }
        check(&group, &mut model, settings);
    }
    assert_eq!(group.unsettled(), 0, "events left unsettled");
    assert_eq!(group.checkpoint(), group.offered_through());
    // Every event offered is acknowledged, skipped or parked: none lost.
    let parked: BTreeSet<u64> = group.parked().map(|(position, _)| position).collect();
    for offered in model.agreements.keys() {
        assert!(
            model.acked.contains(offered)
                || model.skipped.contains(offered)
                || parked.contains(offered),
            "event {offered} lost"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn round_robin_keeps_its_promises(steps in proptest::collection::vec(step(), 1..150)) {
        run(steps, ConsumerStrategy::RoundRobin);
    }

    #[test]
    fn pinned_by_agreement_keeps_its_promises(steps in proptest::collection::vec(step(), 1..150)) {
        run(steps, ConsumerStrategy::PinnedByAgreement);
    }
}

#[test]
fn an_event_not_acknowledged_goes_to_another_member_and_is_parked_after_max_deliveries() {
    let settings = DispatchSettings {
        strategy: ConsumerStrategy::RoundRobin,
        max_in_flight: 10,
        ack_timeout_ms: 1_000,
        max_deliveries: 2,
        max_parked: usize::MAX,
    };
    let mut group = GroupState::new(settings, 0, []);
    let slow = group.join();
    let other = group.join();
    group.offer(1, "kz-locomotives");
    let first = group.dispatch(0);
    assert_eq!(
        first,
        vec![Delivery {
            member: slow,
            position: 1,
            delivery_count: 1
        }]
    );
    // Not acknowledged in time: the next member gets it.
    group.expire(999);
    assert!(group.dispatch(999).is_empty());
    group.expire(1_000);
    let second = group.dispatch(1_000);
    assert_eq!(
        second,
        vec![Delivery {
            member: other,
            position: 1,
            delivery_count: 2
        }]
    );
    // The slow member's late acknowledgement is ignored.
    assert_eq!(group.ack(slow, &[1]), 0);
    assert_eq!(group.checkpoint(), 0);
    // Its second holder goes away: delivered twice, so it is parked.
    group.leave(other);
    assert_eq!(
        group.parked().collect::<Vec<_>>(),
        vec![(1, "kz-locomotives")]
    );
    assert_eq!(group.checkpoint(), 1);
    assert_eq!(group.replay_parked(), 1);
    // Listed as parked until settled; a second replay takes nothing twice.
    assert_eq!(group.parked().count(), 1);
    assert_eq!(group.replay_parked(), 0);
    let replayed = group.dispatch(2_000);
    assert_eq!(
        replayed,
        vec![Delivery {
            member: slow,
            position: 1,
            delivery_count: 1
        }]
    );
    assert_eq!(group.ack(slow, &[1]), 1);
    assert_eq!(group.parked().count(), 0);
    assert_eq!((group.delivered_total(), group.redelivered_total()), (3, 1));
}

#[test]
fn a_pinned_agreement_goes_out_in_order_and_moves_when_its_member_leaves() {
    let settings = DispatchSettings {
        strategy: ConsumerStrategy::PinnedByAgreement,
        max_in_flight: 10,
        ack_timeout_ms: 1_000,
        max_deliveries: 5,
        max_parked: usize::MAX,
    };
    let mut group = GroupState::new(settings, 0, []);
    let first = group.join();
    let second = group.join();
    group.offer(1, "uz-787");
    group.offer(2, "kz-locomotives");
    group.offer(3, "uz-787");
    let out = group.dispatch(0);
    assert_eq!(out.len(), 2, "{out:?}");
    let uz = out
        .iter()
        .find(|d| d.position == 1)
        .expect("uz first")
        .member;
    // Version 2 of uz-787 waits until version 1 is settled.
    assert!(group.dispatch(0).is_empty());
    group.ack(uz, &[1]);
    assert_eq!(
        group.dispatch(0),
        vec![Delivery {
            member: uz,
            position: 3,
            delivery_count: 1
        }]
    );
    // Its member leaves: the agreement moves to the other one.
    group.leave(uz);
    let other = if uz == first { second } else { first };
    assert_eq!(
        group.dispatch(0),
        vec![Delivery {
            member: other,
            position: 3,
            delivery_count: 2
        }]
    );
}

#[test]
fn a_full_parked_list_refuses_to_park_and_loses_nothing() {
    let settings = DispatchSettings {
        strategy: ConsumerStrategy::RoundRobin,
        max_in_flight: 10,
        ack_timeout_ms: 1_000,
        max_deliveries: 1,
        max_parked: 2,
    };
    let mut group = GroupState::new(settings, 0, []);
    let member = group.join();
    for position in 1..=4 {
        group.offer(position, "kz-locomotives");
    }
    assert_eq!(group.dispatch(0).len(), 4);
    assert_eq!(group.nack(member, &[1, 2, 3], NackAction::Park), 3);
    // Two parked; the third park is refused and the event goes out again.
    assert_eq!(group.parked().count(), 2);
    assert!(group.park_is_full());
    assert_eq!(group.parks_refused(), 1);
    assert_eq!(group.checkpoint(), 2);
    let again = group.dispatch(1);
    assert_eq!(
        again.iter().map(|d| d.position).collect::<Vec<_>>(),
        vec![3]
    );
    // Out of deliveries while the list is full: it waits, not parked, not lost.
    group.leave(member);
    assert_eq!(group.parked().count(), 2);
    let other = group.join();
    let waiting: Vec<u64> = group.dispatch(2).iter().map(|d| d.position).collect();
    assert_eq!(waiting, vec![3, 4]);
    // A replay settles the parked ones; room again.
    assert_eq!(group.ack(other, &[3, 4]), 2);
    assert_eq!(group.replay_parked(), 2);
    let replayed: Vec<u64> = group.dispatch(3).iter().map(|d| d.position).collect();
    assert_eq!(group.ack(other, &replayed), 2);
    assert!(!group.park_is_full());
    assert_eq!(group.checkpoint(), 4);
}
