//! Accord's storage formats (`accord.storage.v1`): log records, read-model
//! values and consumer groups as they are stored, and their conversions to
//! and from the domain. Apart from the public contract (`accord-proto`): a
//! change to the wire is not a change to the disk, and the reverse; and the
//! store needs no gRPC to read its own records.

pub mod stored;

/// Generated messages, nested as their protobuf package is.
#[allow(missing_docs, unreachable_pub, clippy::all, clippy::unwrap_used)]
pub mod accord {
    /// The storage formats. Not part of the public API.
    pub mod storage {
        /// Version 1 of the storage messages.
        pub mod v1 {
            include!(concat!(env!("OUT_DIR"), "/accord.storage.v1.rs"));
        }
    }
}

pub use accord::storage::v1 as storage;
