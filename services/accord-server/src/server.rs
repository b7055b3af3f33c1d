//! Wires the store, the command handler and the gRPC services together, and
//! stops them in order: health NOT_SERVING, stop accepting, drain the
//! writer, flush.

use std::net::SocketAddr;
use std::sync::Arc;

use accord_projections::{Projector, ReadModels};
use accord_proto::v1::admin_server::AdminServer;
use accord_proto::v1::agreement_service_server::AgreementServiceServer;
use accord_proto::v1::event_log_server::EventLogServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::{CancellationToken, DropGuard};
use tonic_health::ServingStatus;

use crate::auth::{AuthLayer, TokenTable};
use crate::commands::CommandHandler;
use crate::config::Config;
use crate::connections::Connections;
use crate::grpc::{AdminApi, AgreementApi, EventLogApi, WatchContext};
use crate::metrics::{Metrics, RpcLayer, StoreObserver, serve_metrics};
pub use crate::server_error::ServerError;
use crate::streams::{RecentEvents, SubscriptionSlots};

/// A started server.
pub struct RunningServer {
    grpc_addr: SocketAddr,
    metrics_addr: SocketAddr,
    storage_failing: watch::Receiver<bool>,
    /// Cancelled by `shutdown`, or when the server is dropped.
    stop: DropGuard,
    task: JoinHandle<Result<(), ServerError>>,
}

impl RunningServer {
    /// The address gRPC is served on.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The address `/metrics` is served on.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
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
        self.task
            .await
            .map_err(|error| ServerError::Io(std::io::Error::other(error)))?
    }
}

/// Opens the store, binds both ports and starts serving.
pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
    let tokens = match &config.token_file {
        Some(path) => Some(Arc::new(
            TokenTable::load(path).map_err(ServerError::Config)?,
        )),
        None => None,
    };
    let tls = tls_config(&config)?;
    if tokens.is_none() && !config.listen.ip().is_loopback() && !config.insecure {
        return Err(ServerError::Config(format!(
            "refusing to serve {} without tokens: give --token-file, or --insecure to serve it open",
            config.listen
        )));
    }
    std::fs::create_dir_all(&config.data_dir)?;
    // A data directory created here survives a power cut with its entry.
    accord_store::sync_dir(&parent_dir(&config.data_dir))?;
    let metrics = Metrics::new();
    let (failing, mut storage_failing) = watch::channel(false);
    let log = crate::store::open(
        &config,
        StoreObserver {
            metrics: metrics.clone(),
            failing,
        },
    )
    .await?;
    let read_models_dir = config.data_dir.join("read-models");
    let read_models = tokio::task::spawn_blocking(move || ReadModels::open(&read_models_dir))
        .await
        .map_err(|error| ServerError::Io(std::io::Error::other(error)))??;
    let read_models = Arc::new(read_models);
    accord_projections::reconcile(&read_models, log.as_ref()).await?;
    let projector = Projector::spawn(log.clone(), read_models.clone());

    let grpc_listener = TcpListener::bind(config.listen).await?;
    let metrics_listener = TcpListener::bind(config.metrics_listen).await?;
    let grpc_addr = grpc_listener.local_addr()?;
    let metrics_addr = metrics_listener.local_addr()?;

    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(accord_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(accord_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let handler = Arc::new(CommandHandler::new(log.clone()));
    let max_message_bytes = config.max_message_bytes;
    let slots = SubscriptionSlots::new(
        config.max_subscriptions,
        config.max_subscriptions_per_connection,
        metrics.clone(),
    );
    let stopped = CancellationToken::new();
    // A store that failed stays failed until it is reopened (`run` restarts
    // the server for that): meanwhile, say so to load balancers.
    let failure_health = health.clone();
    let storage_failing_for_server = storage_failing.clone();
    let failure_stopped = stopped.clone();
    tokio::spawn(async move {
        let failed = tokio::select! {
            failed = async { storage_failing.wait_for(|failing| *failing).await.is_ok() } => failed,
            () = failure_stopped.cancelled() => false,
        };
        if failed {
            tracing::error!("the store failed; health is NOT_SERVING until it is reopened");
            for service in SERVICE_NAMES {
                failure_health
                    .set_service_status(service, ServingStatus::NotServing)
                    .await;
            }
        }
    });
    let (recent, recent_task) = RecentEvents::follow(log.clone(), stopped.clone());
    let agreements = AgreementServiceServer::new(AgreementApi::new(
        handler,
        WatchContext {
            log: log.clone(),
            recent: recent.clone(),
            read_models: read_models.clone(),
            slots: slots.clone(),
            stopping: stopped.clone(),
        },
        config.max_execute_commands,
    ))
    .max_decoding_message_size(max_message_bytes);
    let event_log = EventLogServer::new(EventLogApi::new(
        log.clone(),
        recent,
        metrics.clone(),
        slots.clone(),
        stopped.clone(),
    ))
    .max_decoding_message_size(max_message_bytes);
    let admin = AdminServer::new(AdminApi::new(log.clone(), read_models))
        .max_decoding_message_size(max_message_bytes);

    for service in SERVICE_NAMES {
        health
            .set_service_status(service, ServingStatus::Serving)
            .await;
    }

    let metrics_task = tokio::spawn(serve_metrics(
        metrics_listener,
        metrics.clone(),
        stopped.clone().cancelled_owned(),
    ));

    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder
            .tls_config(tls)
            .map_err(|error| ServerError::Config(format!("TLS: {error}")))?;
    }
    let router = builder
        .layer(RpcLayer::new(metrics))
        .layer(AuthLayer::new(tokens))
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(agreements)
        .add_service(event_log)
        .add_service(admin);

    let stop = stopped.clone().drop_guard();
    let task = tokio::spawn(async move {
        let grace_stopped = stopped.clone();
        let signal = async move {
            stopped.cancelled().await;
            for service in SERVICE_NAMES {
                health
                    .set_service_status(service, ServingStatus::NotServing)
                    .await;
            }
            tracing::info!("health is NOT_SERVING; no new connections accepted");
        };
        let connections = Arc::new(Connections::default());
        let tracked = connections.clone();
        let incoming = TcpListenerStream::new(grpc_listener).map(move |accepted| {
            accepted.map(|stream| {
                // Without TCP_NODELAY, a response written in two segments
                // waits for the client's delayed ACK (40 ms on Linux).
                if let Err(error) = stream.set_nodelay(true) {
                    tracing::warn!(%error, "cannot set TCP_NODELAY on a connection");
                }
                tracked.track(stream)
            })
        });
        let serve = router.serve_with_incoming_shutdown(incoming, signal);
        // Calls that outlive the grace period (a health Watch, a client that
        // stopped reading) are cut off rather than holding the shutdown.
        let grace_over = async move {
            grace_stopped.cancelled().await;
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        };
        tokio::pin!(serve);
        let served = tokio::select! {
            served = &mut serve => served,
            () = grace_over => {
                tracing::warn!(grace_ms = SHUTDOWN_GRACE.as_millis() as u64, "calls still open after the grace period; closing them");
                connections.close_all();
                // The closed connections end; the server then finishes its shutdown.
                match tokio::time::timeout(SHUTDOWN_GRACE, &mut serve).await {
                    Ok(served) => served,
                    Err(_) => Ok(()),
                }
            }
        };
        tracing::info!("grpc stopped; stopping the projector and draining the log writer");
        projector.stop().await;
        let _ = recent_task.await;
        let closed = log.close().await;
        let _ = metrics_task.await;
        served?;
        closed?;
        tracing::info!("log flushed; stopped");
        Ok(())
    });

    tracing::info!(%grpc_addr, %metrics_addr, data_dir = %config.data_dir.display(), "accord-server listening");
    Ok(RunningServer {
        grpc_addr,
        metrics_addr,
        storage_failing: storage_failing_for_server,
        stop,
        task,
    })
}

/// The TLS settings from the configuration, if TLS is asked for.
fn tls_config(config: &Config) -> Result<Option<tonic::transport::ServerTlsConfig>, ServerError> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        if config.tls_cert.is_some() || config.tls_key.is_some() || config.tls_client_ca.is_some() {
            return Err(ServerError::Config(
                "TLS needs both --tls-cert and --tls-key".into(),
            ));
        }
        return Ok(None);
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|error| {
            ServerError::Config(format!("cannot read {}: {error}", path.display()))
        })
    };
    let identity = tonic::transport::Identity::from_pem(read(cert)?, read(key)?);
    let mut tls = tonic::transport::ServerTlsConfig::new().identity(identity);
    if let Some(client_ca) = &config.tls_client_ca {
        tls = tls.client_ca_root(tonic::transport::Certificate::from_pem(read(client_ca)?));
    }
    Ok(Some(tls))
}

/// How long in-flight calls may take to finish once shutdown begins.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(5);

/// The overall status ("") and each service's, as health checks ask for them.
const SERVICE_NAMES: [&str; 4] = [
    "",
    "accord.v1.AgreementService",
    "accord.v1.EventLog",
    "accord.v1.Admin",
];

/// The directory that holds `path` (`.` for a bare name).
fn parent_dir(path: &std::path::Path) -> std::path::PathBuf {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    }
}
