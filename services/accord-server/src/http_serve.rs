//! Serving HTTP (the console, `/metrics`) within bounds: at most so many
//! connections (more are closed as they are accepted), a client that does
//! not finish its request headers in time or leaves its connection idle is
//! cut off, and the accept loop pauses instead of spinning when the process
//! is out of descriptors. Each request knows its peer's address
//! ([`PeerAddr`]).

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use crate::accept::Acceptor;

/// The address a request came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PeerAddr(pub(crate) SocketAddr);

/// The bounds of an HTTP port.
#[derive(Debug, Clone, Copy)]
pub(crate) struct HttpLimits {
    /// Connections open at once.
    pub(crate) max_connections: usize,
    /// Time a client has for its TLS handshake and then for each request's
    /// headers (HTTP/1: also the longest wait for the next request).
    pub(crate) header_timeout: Duration,
    /// Time a connection may pass without reading or writing a byte.
    pub(crate) idle_timeout: Duration,
}

impl HttpLimits {
    /// The bounds of a port with `max_connections`.
    pub(crate) fn with_connections(max_connections: usize) -> Self {
        Self {
            max_connections,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// What a port serves.
pub(crate) struct HttpPort {
    pub(crate) name: &'static str,
    pub(crate) router: Router,
    pub(crate) limits: HttpLimits,
    pub(crate) tls: Option<tokio_rustls::TlsAcceptor>,
    /// Counts connections refused for the cap.
    pub(crate) refused: prometheus_client::metrics::counter::Counter,
}

/// Serves `port` on `listener` until `stopping` is cancelled; every
/// connection's task is spawned on `tasks` and ends when `stopping` is.
pub(crate) async fn serve(
    listener: TcpListener,
    port: HttpPort,
    stopping: CancellationToken,
    tasks: TaskTracker,
) {
    let mut acceptor = Acceptor::new(listener, port.name);
    let slots = Arc::new(Semaphore::new(port.limits.max_connections));
    let port = Arc::new(port);
    loop {
        let (tcp, peer) = tokio::select! {
            () = stopping.cancelled() => return,
            accepted = acceptor.next() => accepted,
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            port.refused.inc();
            tracing::debug!(
                port = port.name,
                max = port.limits.max_connections,
                "connection refused: too many open"
            );
            continue;
        };
        let (port, stopping) = (port.clone(), stopping.clone());
        tasks.spawn(async move {
            tokio::select! {
                () = connection(tcp, peer, &port) => {}
                () = stopping.cancelled() => {}
            }
            drop(slot);
        });
    }
}

/// Serves one connection until it closes, idles too long, or fails.
async fn connection(tcp: TcpStream, peer: SocketAddr, port: &HttpPort) {
    let _ = tcp.set_nodelay(true);
    let activity = Activity::new();
    let io = Watched {
        inner: tcp,
        activity: activity.clone(),
    };
    let limits = port.limits;
    let router = port.router.clone();
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(PeerAddr(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
    let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(100);
    let served = async {
        match &port.tls {
            None => {
                let _ = builder.serve_connection(TokioIo::new(io), service).await;
            }
            Some(tls) => {
                let Ok(Ok(stream)) =
                    tokio::time::timeout(limits.header_timeout, tls.accept(io)).await
                else {
                    return;
                };
                let _ = builder
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            }
        }
    };
    let watchdog = async {
        // Until a byte comes, hyper cannot tell HTTP/1 from HTTP/2 and its
        // header timeout does not run: a silent client gets as long as a
        // slow one would for its headers.
        tokio::time::sleep(limits.header_timeout).await;
        if !activity.has_read() {
            return;
        }
        activity.idle_for(limits.idle_timeout).await;
    };
    tokio::select! {
        () = served => {}
        () = watchdog => {
            tracing::debug!(port = port.name, %peer, "connection silent or idle too long; closed");
        }
    }
}

/// When a connection last read or wrote, in milliseconds since it opened,
/// and whether it ever read a byte.
#[derive(Clone)]
struct Activity(Arc<Seen>);

struct Seen {
    opened: Instant,
    last_ms: AtomicU64,
    read: std::sync::atomic::AtomicBool,
}

impl Activity {
    fn new() -> Self {
        Self(Arc::new(Seen {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
            read: std::sync::atomic::AtomicBool::new(false),
        }))
    }

    fn has_read(&self) -> bool {
        self.0.read.load(Ordering::Relaxed)
    }

    /// Notes a read or write (`read`: bytes came in).
    fn touch(&self, read: bool) {
        if read {
            self.0.read.store(true, Ordering::Relaxed);
        }
        let now = u64::try_from(self.0.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.last_ms.store(now, Ordering::Relaxed);
    }

    /// Returns once nothing was read or written for `idle`.
    async fn idle_for(&self, idle: Duration) {
        loop {
            let last =
                self.0.opened + Duration::from_millis(self.0.last_ms.load(Ordering::Relaxed));
            let until = last + idle;
            if Instant::now() >= until {
                return;
            }
            tokio::time::sleep_until(until.into()).await;
        }
    }
}

/// A connection whose reads and writes are noted in its [`Activity`].
struct Watched {
    inner: TcpStream,
    activity: Activity,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let filled = buffer.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(context, buffer);
        if polled.is_ready() {
            self.activity.touch(buffer.filled().len() > filled);
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(context, buffer);
        if polled.is_ready() {
            self.activity.touch(false);
        }
        polled
    }

    fn poll_flush(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }

    fn poll_shutdown(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(context)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffers: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(context, buffers);
        if polled.is_ready() {
            self.activity.touch(false);
        }
        polled
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
