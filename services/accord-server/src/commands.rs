//! Command handling: from a checked domain command to a durable event.
//! Decides against the agreement's latest state and appends with that
//! state's version, so the store's version check makes every decision
//! race-free.

mod executor;
mod fingerprint;
mod handler;
mod input;
mod service;
mod state_cache;

pub(crate) use executor::Executor;
pub(crate) use handler::{CheckedCommand, CommandHandler};
pub(crate) use service::CommandService;
