//! Accepted connections, tracked so that shutdown can close the ones still
//! open after the grace period: a client holding a call open (a health
//! `Watch`, say) must not keep the server, and its store, alive.

use std::collections::HashMap;
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tonic::transport::server::{Connected, TcpConnectInfo};

use crate::metrics::Metrics;

/// The connections open now, at most `max` of them.
pub(crate) struct Connections {
    open: Mutex<HashMap<u64, RawFd>>,
    next_id: AtomicU64,
    max: usize,
    metrics: Arc<Metrics>,
}

impl Connections {
    /// Tracks at most `max` connections at a time.
    pub(crate) fn new(max: usize, metrics: Arc<Metrics>) -> Self {
        Self {
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            max,
            metrics,
        }
    }

    /// Tracks an accepted connection until it is dropped; None (and the
    /// connection closed) when `max` are open already.
    pub(crate) fn track(self: &Arc<Self>, stream: TcpStream) -> Option<TrackedStream> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        {
            let mut open = self.lock();
            if open.len() >= self.max {
                drop(open);
                self.metrics.connections_refused.inc();
                tracing::debug!(max = self.max, "connection refused: too many open");
                return None;
            }
            open.insert(id, stream.as_raw_fd());
            self.metrics.connections_open.set(open.len() as i64);
        }
        Some(TrackedStream {
            inner: stream,
            id,
            connections: self.clone(),
        })
    }

    /// Shuts down every connection still open; their tasks then end.
    pub(crate) fn close_all(&self) {
        // The lock is held while shutting down, and a stream leaves the map
        // under it before its descriptor closes: no descriptor is reused meanwhile.
        let open = self.lock();
        for fd in open.values() {
            // SAFETY: `fd` is an open socket owned by a live TrackedStream (see above).
            unsafe { libc::shutdown(*fd, libc::SHUT_RDWR) };
        }
        if !open.is_empty() {
            tracing::warn!(
                connections = open.len(),
                "closed connections still open after the grace period"
            );
        }
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, HashMap<u64, RawFd>> {
        self.open.lock()
    }
}

/// A TCP connection that leaves [`Connections`] when dropped.
pub(crate) struct TrackedStream {
    inner: TcpStream,
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for TrackedStream {
    fn drop(&mut self) {
        // Runs before `inner` closes its descriptor.
        let mut open = self.connections.lock();
        open.remove(&self.id);
        self.connections
            .metrics
            .connections_open
            .set(open.len() as i64);
    }
}

impl Connected for TrackedStream {
    type ConnectInfo = TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

impl AsyncRead for TrackedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(context, buffer)
    }
}

impl AsyncWrite for TrackedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(context, buffer)
    }

    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(context, buffers)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
