//! The local tree format the embedded log and each NATS node's replica
//! share: how records, their blocks and the stream and command indexes are
//! keyed in one sled tree (`keys`, `blocks`, `stream_index`), how a group of
//! appends is written to it (`batch`), read back up to a head (`reader`),
//! digested for verification (`digest`), and recovered at open (`open`);
//! the indexes are written off the group commit (`index`).
//! The backends (`sled`, `nats`) depend on it; it depends on neither.

pub(crate) mod batch;
pub(crate) mod blocks;
pub(crate) mod digest;
pub(crate) mod index;
pub(crate) mod keys;
pub(crate) mod merkle;
pub(crate) mod open;
pub(crate) mod reader;
pub(crate) mod stream_index;
