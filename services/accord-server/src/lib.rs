//! The Accord server: gRPC commands, queries and streams over an event log,
//! with health, reflection, Prometheus metrics and graceful shutdown.

pub mod auth;
pub mod commands;
pub mod config;
pub mod error;
pub mod grpc;
pub mod metrics;
pub mod server;
pub mod shutdown;
pub mod streams;
pub mod telemetry;

use std::process::ExitCode;

use clap::Parser;

pub use config::{Config, LogFormat};
pub use server::{RunningServer, ServerError, start};

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

async fn run(config: Config) -> Result<(), ServerError> {
    let server = start(config).await?;
    let signal = shutdown::termination_signal().await;
    tracing::info!(signal, "shutting down");
    server.shutdown().await
}
