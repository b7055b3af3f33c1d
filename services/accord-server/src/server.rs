//! A running server's handle: its addresses, whether the store failed, and
//! the graceful shutdown (`crate::app::start` makes one).

use std::net::SocketAddr;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::{CancellationToken, DropGuard};

pub use crate::server_error::ServerError;

/// A started server.
pub struct RunningServer {
    grpc_addr: SocketAddr,
    metrics_addr: SocketAddr,
    console_addr: Option<SocketAddr>,
    storage_failing: watch::Receiver<bool>,
    /// Cancelled by `shutdown`, or when the server is dropped.
    stop: DropGuard,
    task: JoinHandle<Result<(), ServerError>>,
}

impl RunningServer {
    pub(crate) fn new(
        grpc_addr: SocketAddr,
        metrics_addr: SocketAddr,
        console_addr: Option<SocketAddr>,
        storage_failing: watch::Receiver<bool>,
        stopping: CancellationToken,
        task: JoinHandle<Result<(), ServerError>>,
    ) -> Self {
        Self {
            grpc_addr,
            metrics_addr,
            console_addr,
            storage_failing,
            stop: stopping.drop_guard(),
            task,
        }
    }

    /// The address gRPC is served on.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The address `/metrics` is served on.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
    }

    /// The web console's address, if it is served.
    pub fn console_addr(&self) -> Option<SocketAddr> {
        self.console_addr
    }

    /// Resolves when the store has failed (and keeps failing until
    /// reopened); never, for a store that does not report failures (NATS
    /// reconnects by itself).
    pub async fn storage_failed(&self) {
        let mut failing = self.storage_failing.clone();
        if failing.wait_for(|failing| *failing).await.is_err() {
            std::future::pending::<()>().await;
        }
    }

    /// Stops gracefully and waits until the log is flushed.
    pub async fn shutdown(self) -> Result<(), ServerError> {
        drop(self.stop);
        self.task.await?
    }
}
