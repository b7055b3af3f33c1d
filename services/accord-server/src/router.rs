//! The gRPC services behind the server's layers: health, reflection (v1 and
//! v1alpha), `AgreementService`, `EventLog`, `Admin`, `ConsumerGroups` and
//! `Transparency`, each message limited
//! to the configured size, every call counted and authorized.

use std::sync::Arc;
use std::time::Duration;

use accord_proto::event_log_frames::event_log_server::EventLogServer;
use accord_proto::v1::admin_server::AdminServer;
use accord_proto::v1::agreement_service_server::AgreementServiceServer;
use accord_proto::v1::consumer_groups_server::ConsumerGroupsServer;
use accord_proto::v1::transparency_server::TransparencyServer;
use tonic_health::pb::health_server::{Health, HealthServer};
use tower::layer::util::{Identity, Stack};

use crate::auth::{AuthLayer, TokenTable};
use crate::config::Config;
use crate::grpc::{AdminApi, AgreementApi, ConsumerGroupsApi, EventLogApi, TransparencyApi};
use crate::metrics::{Metrics, RpcLayer};
use crate::server_error::ServerError;
use crate::service::Services;

/// Streams a client may reset before the server has answered them, per
/// connection, before it is sent GOAWAY (h2's default).
const MAX_PENDING_ACCEPT_RESETS: usize = 20;
/// Streams the server may reset for a client's protocol errors, per
/// connection, before it is sent GOAWAY (hyper's default).
const MAX_LOCAL_ERROR_RESETS: usize = 1_024;
/// How long a keepalive ping may go unanswered.
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Bytes a client may send on one stream before the server reads them.
const STREAM_WINDOW: u32 = 64 * 1024;
/// Bytes a client may send on one connection before the server reads them
/// (hyper's default; h2's budget for small frames is half of it).
const CONNECTION_WINDOW: u32 = 1024 * 1024;

/// Everything the services are built from.
pub(crate) struct ServiceParts<H: Health> {
    pub(crate) health: HealthServer<H>,
    /// The application layer, shared with the console.
    pub(crate) services: Services,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) tokens: Option<Arc<TokenTable>>,
    pub(crate) tls: Option<tonic::transport::ServerTlsConfig>,
}

/// The router with its layers: metrics outermost, then auth.
pub(crate) type GrpcRouter =
    tonic::transport::server::Router<Stack<AuthLayer, Stack<RpcLayer, Identity>>>;

/// The router of every gRPC service, with the metrics and auth layers.
pub(crate) fn grpc_router<H: Health>(
    config: &Config,
    parts: ServiceParts<H>,
) -> Result<GrpcRouter, ServerError> {
    let max_message_bytes = config.max_message_bytes;
    let services = &parts.services;
    let event_log = EventLogServer::new(EventLogApi::new(services.feed.clone()))
        .max_decoding_message_size(max_message_bytes);
    let admin = AdminServer::new(AdminApi::new(
        services.operations.clone(),
        services.feed.clone(),
    ))
    .max_decoding_message_size(max_message_bytes);
    let agreements = AgreementServiceServer::new(AgreementApi::new(services))
        .max_decoding_message_size(max_message_bytes);
    let consumer_groups = ConsumerGroupsServer::new(ConsumerGroupsApi::new(
        services.groups.clone(),
        services.feed.clone(),
    ))
    .max_decoding_message_size(max_message_bytes);
    let transparency = TransparencyServer::new(TransparencyApi::new(services.transparency.clone()))
        .max_decoding_message_size(max_message_bytes);
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(accord_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(accord_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()?;

    let mut builder = tonic::transport::Server::builder()
        .max_concurrent_streams(config.max_concurrent_streams)
        // hyper's guards against reset floods (CVE-2023-44487 and
        // RUSTSEC-2024-0003), which tonic leaves off unless set.
        .http2_max_pending_accept_reset_streams(Some(MAX_PENDING_ACCEPT_RESETS))
        .http2_max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
        .http2_keepalive_interval(Some(Duration::from_secs(config.keepalive_secs.max(1))))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
        // What a client may send ahead of what the server has read. h2
        // closes a connection whose unread DATA frames are many and small
        // (its guard against framing floods: a budget of half the
        // connection window), so a stream the server holds back, such as
        // an `ExecuteStream` whose producer runs ahead, must not be able to
        // buffer more small frames than that: a small stream window under a
        // larger connection window.
        .initial_stream_window_size(Some(STREAM_WINDOW))
        .initial_connection_window_size(Some(CONNECTION_WINDOW));
    if let Some(tls) = parts.tls {
        builder = builder
            .tls_config(tls.timeout(Duration::from_secs(
                config.tls_handshake_timeout_secs.max(1),
            )))
            .map_err(|error| ServerError::Config(format!("TLS: {error}")))?;
    }
    Ok(builder
        .layer(RpcLayer::new(parts.metrics))
        .layer(AuthLayer::new(parts.tokens))
        .add_service(parts.health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(agreements)
        .add_service(event_log)
        .add_service(admin)
        .add_service(consumer_groups)
        .add_service(transparency))
}
