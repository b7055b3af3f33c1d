//! Generated code for Accord's public gRPC contract (`accord.v1`) and what
//! nodes of a NATS cluster say to each other (`accord.cluster.v1`), the
//! encoded descriptor set of the public contract that the server hands to
//! gRPC reflection, and the conversions of the domain's types to and from
//! the wire. The storage formats are `accord-storage`'s.

mod convert;
mod frame;

pub use convert::{
    WireError, agreement_to_wire, command_from_wire, event_to_wire, expected_version_from_wire,
    localization_entry_to_wire, portfolio_to_wire, recorded_event_to_wire, stage_from_wire,
    stage_to_wire, timestamp_from_domain, timestamp_to_domain,
};

/// Generated modules, nested as their protobuf packages are.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::unwrap_used)]
pub mod accord {
    /// The public contract: services, commands, events, queries and streams.
    pub mod v1 {
        tonic::include_proto!("accord.v1");
    }
    /// What nodes sharing a NATS cluster say to each other about consumer
    /// groups, and how the cluster stores a group's progress. Not part of
    /// the public API.
    pub mod cluster {
        /// Version 1 of the cluster messages.
        pub mod v1 {
            tonic::include_proto!("accord.cluster.v1");
        }
    }
}

pub use frame::SubscribeFrame;

/// The server side of `accord.v1.EventLog` whose `Subscribe` streams
/// [`SubscribeFrame`]s, encoded once for every subscriber.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::unwrap_used)]
pub mod event_log_frames {
    include!(concat!(env!("OUT_DIR"), "/frames/accord.v1.rs"));
}

pub use accord::cluster::v1 as cluster;
pub use accord::v1;

/// The encoded `FileDescriptorSet` of the public contract (`accord.v1` and
/// what it imports), for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/accord_descriptor.bin"));
