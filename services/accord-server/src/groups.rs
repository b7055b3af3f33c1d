//! Consumer groups (`accord.v1.ConsumerGroups`): server-side subscriptions
//! whose members share the work, with acknowledgements, redelivery and
//! parking. The dispatch rules are the domain's (`accord_domain::GroupState`);
//! here they meet the log, the members' streams and the disk.

mod registry;
mod runner;
mod settings;
mod store;

pub(crate) use registry::{MemberLink, Registry};
pub(crate) use runner::MEMBER_BUFFER;
pub(crate) use settings::nack_action;
pub(crate) use store::GroupStore;
