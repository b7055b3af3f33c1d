//! Accepting connections without spinning or giving up: an error that
//! concerns one connection (it was reset before it was accepted) is skipped,
//! and an error of the process (out of file descriptors, out of memory)
//! pauses the accept loop for a moment, while the connections already open
//! keep being served.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

/// Pause after the process could not accept (EMFILE, ENFILE, ENOMEM, ...).
const PAUSE: Duration = Duration::from_millis(100);
/// Least time between two warnings of the same listener.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// A listener's accept loop.
pub(crate) struct Acceptor {
    listener: TcpListener,
    /// When the last warning was logged, and errors since then.
    warned: Option<Instant>,
    unwarned: u64,
    port: &'static str,
}

impl Acceptor {
    /// Accepts on `listener` (`port` names it in the log).
    pub(crate) fn new(listener: TcpListener, port: &'static str) -> Self {
        Self {
            listener,
            warned: None,
            unwarned: 0,
            port,
        }
    }

    /// The next connection and its peer's address.
    pub(crate) async fn next(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok(accepted) => return accepted,
                Err(error) if of_one_connection(&error) => {}
                Err(error) => {
                    self.unwarned += 1;
                    if self.warned.is_none_or(|at| at.elapsed() >= WARN_EVERY) {
                        tracing::warn!(port = self.port, %error, errors = self.unwarned, "cannot accept connections now; pausing (connections already open are served)");
                        self.warned = Some(Instant::now());
                        self.unwarned = 0;
                    }
                    tokio::time::sleep(PAUSE).await;
                }
            }
        }
    }
}

/// Errors that end only the connection being accepted.
fn of_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
