//! Consumer groups (`accord.v1.ConsumerGroups`): server-side subscriptions
//! whose members share the work, with acknowledgements, redelivery and
//! parking. The dispatch rules are the domain's (`accord_domain::GroupState`);
//! here they meet the log, the members' streams and the store: a sled
//! database beside the embedded log, or a bucket of the NATS cluster whose
//! groups every node shares (`cluster`).

mod backend;
mod cluster;
mod held_events;
mod member_queue;
mod registry;
mod runner;
mod service;
mod settings;
mod sled_store;
mod storage;

pub(crate) use cluster::{ClusterGroups, ClusterSetup, NodeKey};
pub(crate) use member_queue::{MemberSender, member_queue};
pub(crate) use registry::{MemberLink, Registry};
pub(crate) use service::GroupService;
pub(crate) use settings::{MAX_ACK_POSITIONS, nack_action};
pub(crate) use sled_store::SledGroupStore;
