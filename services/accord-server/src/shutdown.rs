//! SIGTERM and SIGINT, listened for from the moment the process starts: a
//! signal that arrives while the server is still starting is kept and
//! answered with a graceful shutdown, never the default action (which ends
//! the process with nothing drained).

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The termination signals, registered when this is made.
pub(crate) struct Termination {
    terminate: Option<Signal>,
    interrupt: Option<Signal>,
}

impl Termination {
    /// Listens for SIGTERM and SIGINT from now on.
    pub(crate) fn listen() -> Self {
        let register = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(stream) => Some(stream),
            Err(error) => {
                tracing::error!(%error, signal = name, "cannot listen for the signal");
                None
            }
        };
        Self {
            terminate: register(SignalKind::terminate(), "SIGTERM"),
            interrupt: register(SignalKind::interrupt(), "SIGINT"),
        }
    }

    /// Resolves with the name of the first termination signal received.
    pub(crate) async fn received(&mut self) -> &'static str {
        let terminate = async {
            match &mut self.terminate {
                Some(stream) => stream.recv().await,
                None => std::future::pending().await,
            }
        };
        let interrupt = async {
            match &mut self.interrupt {
                Some(stream) => stream.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = terminate => "SIGTERM",
            _ = interrupt => "SIGINT",
        }
    }
}
