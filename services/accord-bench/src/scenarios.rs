//! The scenarios, each against a fresh server.

pub(crate) mod append;
pub(crate) mod append_stream;
pub(crate) mod batch;
mod closed_loop;
pub(crate) mod console;
pub(crate) mod consume;
pub(crate) mod filtered_read;
pub(crate) mod peer;
pub(crate) mod proofs;
pub(crate) mod read_your_writes;
pub(crate) mod rebuild;
pub(crate) mod soak;
pub(crate) mod subscribe;
pub(crate) mod umadb_peer;
