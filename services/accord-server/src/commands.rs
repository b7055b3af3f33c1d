//! Command handling: from a checked domain command to a durable event.
//! Decides against the agreement's latest state and appends with that
//! state's version, so the store's version check makes every decision
//! race-free.

mod handler;
mod state_cache;

pub(crate) use handler::{CheckedCommand, CommandHandler};
