//! Command handling: from a wire command to a durable event. Decides against
//! the agreement's latest state and appends with that state's version, so
//! the store's version check makes every decision race-free.

mod fingerprint;
mod handler;
mod state_cache;

pub use fingerprint::fingerprint;
pub use handler::{CommandHandler, IncomingCommand};
