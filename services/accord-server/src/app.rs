//! The server wired in two steps, as linkerd2-proxy's `app` does:
//! [`App::build`] turns a configuration into parts (checks it, opens the
//! storage, binds both ports) and starts nothing; [`App::spawn`] starts every
//! task with one cancellation token and returns the handle that drains them.

use std::sync::Arc;

use accord_projections::Projector;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;

use crate::auth::TokenTable;
use crate::commands::{CommandHandler, Executor};
use crate::config::Config;
use crate::connections::Connections;
use crate::console::ConsoleContext;
use crate::groups::{ClusterGroups, Registry};
use crate::http_serve::{HttpLimits, HttpPort};
use crate::metrics::{Metrics, PortLabels, metrics_router};
use crate::operations::Operations;
use crate::queries::Queries;
use crate::router::{ServiceParts, grpc_router};
use crate::serve::{Followers, serve_until_stopped, set_health, watch_store_health};
use crate::server::RunningServer;
use crate::server_error::ServerError;
use crate::service::{GroupService, Services};
use crate::store::GroupsSetup;
use crate::store::Storage;
use crate::streams::LogIndexes;
use crate::streams::{LiveFeed, RecentEvents, StreamLimits, SubscriptionSlots};
use crate::tls::tls_config;
use crate::transparency::{Cosigned, Transparency};

/// A configured server, not yet running.
pub(crate) struct App {
    config: Config,
    tokens: Option<Arc<TokenTable>>,
    tls: Option<tonic::transport::ServerTlsConfig>,
    metrics: Arc<Metrics>,
    storage: Storage,
    grpc_listener: TcpListener,
    metrics_listener: TcpListener,
    console_listener: Option<TcpListener>,
    caps: crate::descriptors::ConnectionCaps,
}

impl App {
    /// Checks the configuration, opens the storage and binds both ports.
    pub(crate) async fn build(config: Config) -> Result<Self, ServerError> {
        let (missing, extra) = crate::methods::mismatches();
        if !missing.is_empty() || !extra.is_empty() {
            return Err(ServerError::Config(format!(
                "the method table does not match the contract: no access rule for {missing:?}, rules for unknown methods {extra:?}"
            )));
        }
        let tokens = match &config.token_file {
            Some(path) => Some(Arc::new(TokenTable::load(path)?)),
            None => None,
        };
        let open_files = crate::descriptors::raise_open_files_limit();
        let caps = crate::descriptors::caps(&config, open_files)?;
        let tls = tls_config(&config)?;
        crate::exposure::check(&config, tokens.is_some(), tls.is_some())?;
        if let Some(origin) = &config.log_origin {
            crate::transparency::check_origin(origin).map_err(ServerError::Config)?;
        }
        let metrics = Metrics::new();
        let node_key = tokens.as_ref().map(|tokens| tokens.node_key());
        let storage = Storage::open(&config, &metrics, node_key).await?;
        let grpc_listener = TcpListener::bind(config.listen).await?;
        let metrics_listener = TcpListener::bind(config.metrics_listen).await?;
        let console_listener = match config.console_listen.0 {
            Some(address) => Some(TcpListener::bind(address).await.map_err(|error| {
                ServerError::Config(format!(
                    "--console-listen {address}: {error} (give another address, or '' for no console)"
                ))
            })?),
            None => None,
        };
        Ok(Self {
            config,
            tokens,
            tls,
            metrics,
            storage,
            grpc_listener,
            metrics_listener,
            console_listener,
            caps,
        })
    }

    /// Starts every task: the projector, the window of recent events, the
    /// store-failure watch, `/metrics`, and gRPC, which drains the others
    /// when the returned server is shut down (or dropped).
    pub(crate) async fn spawn(self) -> Result<RunningServer, ServerError> {
        let Self {
            config,
            tokens,
            tls,
            metrics,
            storage,
            grpc_listener,
            metrics_listener,
            console_listener,
            caps,
        } = self;
        let grpc_addr = grpc_listener.local_addr()?;
        let metrics_addr = metrics_listener.local_addr()?;
        let console_addr = console_listener
            .as_ref()
            .map(TcpListener::local_addr)
            .transpose()?;
        let stopping = CancellationToken::new();
        let log = storage.log;
        let projector = Projector::spawn(log.clone(), storage.read_models.clone());
        let (recent, recent_task) = RecentEvents::follow(log.clone(), stopping.clone());
        let indexes = LogIndexes::new(log.clone(), storage.read_models.clone(), metrics.clone());
        let groups: Arc<dyn GroupService> = match storage.groups {
            GroupsSetup::Sled(store) => {
                metrics.groups_leader.set(1);
                Registry::start(
                    indexes.clone(),
                    store,
                    stopping.clone(),
                    metrics.clone(),
                    config.max_parked_per_group,
                )
                .await?
            }
            GroupsSetup::Cluster(setup) => Arc::new(
                ClusterGroups::start(*setup, indexes.clone(), metrics.clone(), stopping.clone())
                    .await?,
            ),
        };
        let (health, health_service) = tonic_health::server::health_reporter();
        let slots = SubscriptionSlots::new(
            StreamLimits {
                total: config.max_subscriptions,
                per_connection: config.max_subscriptions_per_connection,
                per_client: config.max_subscriptions_per_client,
            },
            metrics.clone(),
        );
        let origin = config
            .log_origin
            .clone()
            .unwrap_or_else(crate::transparency::default_origin);
        let witnesses = config
            .witnesses
            .iter()
            .map(|text| crate::transparency::parse_witness(text))
            .collect::<Result<Vec<_>, _>>()
            .map_err(ServerError::Config)?;
        let quorum = config.witness_quorum.unwrap_or(witnesses.len());
        if quorum > witnesses.len() {
            return Err(ServerError::Config(format!(
                "--witness-quorum {quorum}: only {} witnesses are given",
                witnesses.len()
            )));
        }
        metrics
            .witness_quorum
            .set(i64::try_from(quorum).unwrap_or(i64::MAX));
        let cosigned = (!witnesses.is_empty()).then(Arc::<Cosigned>::default);
        let transparency = Arc::new(Transparency::new(
            log.clone(),
            storage.keys.clone(),
            origin,
            cosigned.clone(),
        ));
        if let Some(cosigned) = cosigned {
            let signer = transparency.clone();
            crate::transparency::spawn_witnessing(
                log.clone(),
                witnesses,
                cosigned,
                metrics.clone(),
                stopping.clone(),
                move || {
                    let signer = signer.clone();
                    async move { signer.signed_note().await.ok() }
                },
            );
        }
        // The application layer, one service per area, which gRPC and
        // the console both call.
        let services = Services {
            commands: Arc::new(Executor::new(
                Arc::new(CommandHandler::new(log.clone())),
                config.max_execute_commands,
                config.max_event_bytes,
            )),
            queries: Arc::new(Queries::new(log.clone(), storage.read_models.clone())),
            operations: Arc::new(Operations::new(
                log.clone(),
                storage.read_models.clone(),
                storage.keys,
                config.data_dir.clone(),
            )),
            feed: Arc::new(LiveFeed::new(
                indexes,
                recent,
                storage.read_models.clone(),
                slots,
                metrics.clone(),
                stopping.clone(),
            )),
            groups: groups.clone(),
            transparency: transparency.clone(),
        };
        let console_tls = crate::console::tls_acceptor(&config)?;
        let console = console_listener.map(|listener| {
            let tasks = tokio_util::task::TaskTracker::new();
            tokio::spawn(crate::console::serve(
                listener,
                ConsoleContext {
                    tokens: tokens.clone(),
                    services: services.clone(),
                    metrics: metrics.clone(),
                    failing: storage.failing.clone(),
                    frames: Default::default(),
                    hosts: crate::console::KnownHosts::new(&config.console_hosts),
                    tasks,
                },
                console_tls,
                caps.console,
            ))
        });
        let router = grpc_router(
            &config,
            ServiceParts {
                health: health_service,
                services,
                metrics: metrics.clone(),
                tokens,
                tls,
            },
        )?;
        watch_store_health(
            log.clone(),
            storage.failing.clone(),
            health.clone(),
            metrics.clone(),
            stopping.clone(),
        );
        set_health(&health, ServingStatus::Serving).await;
        let connections = Arc::new(Connections::new(caps.grpc, metrics.clone()));
        metrics
            .open_files_limit
            .set(i64::try_from(caps.open_files).unwrap_or(i64::MAX));
        tracing::info!(
            open_files = caps.open_files,
            reserve = crate::descriptors::RESERVE,
            grpc = caps.grpc,
            console = caps.console,
            metrics = caps.metrics,
            "connection caps from the descriptor budget"
        );
        let metrics_port = HttpPort {
            name: "metrics",
            router: metrics_router(metrics.clone()),
            limits: HttpLimits::with_connections(caps.metrics),
            tls: None,
            refused: metrics
                .http_connections_refused
                .get_or_create(&PortLabels {
                    port: "metrics".into(),
                })
                .clone(),
        };
        let metrics_task = tokio::spawn(crate::http_serve::serve(
            metrics_listener,
            metrics_port,
            stopping.clone(),
            tokio_util::task::TaskTracker::new(),
        ));
        let task = tokio::spawn(serve_until_stopped(
            router,
            grpc_listener,
            connections,
            health,
            stopping.clone(),
            Followers {
                projector,
                recent: recent_task,
                log,
                metrics: metrics_task,
                console,
                groups,
            },
        ));
        let console_addr_text =
            console_addr.map_or_else(|| "off".to_owned(), |addr| addr.to_string());
        tracing::info!(%grpc_addr, %metrics_addr, console_addr = %console_addr_text, data_dir = %config.data_dir.display(), "accord-server listening");
        Ok(RunningServer::new(
            grpc_addr,
            metrics_addr,
            console_addr,
            storage.failing,
            stopping,
            task,
        ))
    }
}

/// Opens the store, binds both ports and starts serving.
pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
    App::build(config).await?.spawn().await
}
