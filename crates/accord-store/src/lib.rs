//! Accord's event log: the [`EventLog`] trait that every backend implements,
//! the framed, checksummed and hash-chained record format, and the embedded
//! sled backend with its group-committing writer.

mod chain;
mod checkpoint;
mod clearing_map;
mod durable;
mod error;
mod event_log;
pub mod hex;
mod import_check;
mod import_gate;
mod nats;
mod published_head;
mod record;
mod sled;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
mod tree;
mod verify;

pub use chain::{ChainBreak, ChainHead};
pub use checkpoint::{CheckpointError, CheckpointKeys, SignedCheckpoint};
pub use clearing_map::ClearingMap;
pub use durable::{ContainedDrop, SyncedDb};
pub use error::{Cause, StoreError};
pub use event_log::{
    AppendItem, AppendOutcome, CommandRecord, EventLog, Fingerprint, ImportChunks, ImportSource,
    LogStats, Quarantined, RawRecord, TreeHash,
};
pub use import_check::ImportVerifier;
pub use nats::{NatsLog, NatsOptions, NatsSecurity, redacted_nats_servers};
pub use record::{
    DecodedRecord, RECORD_SCHEMA_VERSION, RecordHash, decode_for_replay, decode_record,
    encode_record, record_hash,
};
pub use sled::{CommitObserver, DEFAULT_CACHE_BYTES, DEFAULT_WINDOW_RECORDS, SledLog, SledOptions};
pub use tree::digest::{DigestKeys, IndexDigest};
pub use tree::open::UnsignedLog;
pub use tree::reader::READ_BYTES;
pub use verify::{VerifyReport, verify_log};
