//! The Accord server: gRPC commands, queries and streams over an event log,
//! with health, reflection, Prometheus metrics and graceful shutdown.

mod accept;
mod app;
pub mod auth;
mod checkpoint_wire;
mod commands;
mod config;
mod connections;
mod console;
mod descriptors;
mod error;
mod exposure;
mod groups;
mod grpc;
mod http_serve;
pub use accord_store::hex;
mod methods;
mod metrics;
mod operations;
mod queries;
mod reads;
mod role;
mod router;
mod serve;
mod server;
mod server_error;
mod service;
mod shutdown;
pub mod signing_key;
mod store;
mod streams;
mod telemetry;
mod tls;
mod transparency;

use std::process::ExitCode;

/// Cases per property of the fuzz tests: 512 by default, `ACCORD_FUZZ_CASES`
/// for a longer run.
#[cfg(test)]
pub(crate) fn fuzz_cases() -> u32 {
    std::env::var("ACCORD_FUZZ_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(512)
}

use clap::Parser;

pub use app::start;
pub use config::{Config, LogFormat};
pub use grpc::ALLOW_UNSIGNED_METADATA;
pub use server::{RunningServer, ServerError};

/// Runs the server from the command line until SIGTERM or SIGINT.
pub fn main_entry() -> ExitCode {
    let config = Config::parse();
    telemetry::init_logging(config.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            tracing::error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(%error, "accord-server failed");
            ExitCode::FAILURE
        }
    }
}

/// Serves until SIGTERM or SIGINT. When the store fails (a full disk, say),
/// the store stays failed until it is reopened, so the server restarts
/// itself in process on the same ports, retrying until the store opens and
/// writes again: it recovers by itself once space returns.
async fn run(mut config: Config) -> Result<(), ServerError> {
    // Before anything else, so that a signal during the start is not the
    // default action (an exit with nothing drained).
    let mut termination = shutdown::Termination::listen();
    let mut server = start(config.clone()).await?;
    // Restarts keep the ports clients know, even when the first bind chose them.
    config.listen = server.grpc_addr();
    config.metrics_listen = server.metrics_addr();
    loop {
        tokio::select! {
            signal = termination.received() => {
                tracing::info!(signal, "shutting down");
                return server.shutdown().await;
            }
            () = server.storage_failed() => {
                tracing::error!("the store failed; restarting it in process");
                if let Err(error) = server.shutdown().await {
                    tracing::warn!(%error, "stopping the failed store");
                }
                match restart(&config, &mut termination).await? {
                    Some(restarted) => server = restarted,
                    None => return Ok(()),
                }
            }
        }
    }
}

/// Starts the server again, retrying with a growing pause until it starts;
/// None when a termination signal comes first.
async fn restart(
    config: &Config,
    termination: &mut shutdown::Termination,
) -> Result<Option<RunningServer>, ServerError> {
    let mut pause = std::time::Duration::from_millis(200);
    loop {
        match start(config.clone()).await {
            Ok(server) => {
                tracing::info!("store reopened; serving again");
                return Ok(Some(server));
            }
            Err(error) => {
                tracing::warn!(%error, retry_in_ms = pause.as_millis() as u64, "cannot restart yet")
            }
        }
        tokio::select! {
            signal = termination.received() => {
                tracing::info!(signal, "shutting down while the store is down");
                return Ok(None);
            }
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(std::time::Duration::from_secs(5));
    }
}
