//! Generated code for Accord's public gRPC contract (`accord.v1`) and its
//! on-disk record format (`accord.storage.v1`), plus the encoded descriptor set
//! that the server hands to gRPC reflection.

#![allow(missing_docs, unreachable_pub, clippy::all, clippy::unwrap_used)]

/// The public contract: services, commands, events, queries and streams.
pub mod v1 {
    tonic::include_proto!("accord.v1");
}

/// The on-disk body of a log record. Not part of the public API.
pub mod storage {
    tonic::include_proto!("accord.storage.v1");
}

/// The encoded `FileDescriptorSet` of every file in `proto/`, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/accord_descriptor.bin"));
