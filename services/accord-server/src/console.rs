//! The web console (`--console-listen`): one view per question a person
//! asks (countries, agreements, log, operations), rendered on the server
//! from the read models and the log with `maud`, kept live over Server-Sent
//! Events from the log's head, everything embedded in the binary. The page
//! is a shell; each view comes as an HTML fragment fetched with the reader's
//! token (`access`), through the same queries as gRPC.

mod access;
mod actions;
mod answer;
mod feed;
mod format;
mod hosts;
mod live;
mod pages;
mod tiles;
mod tls;
mod views;

pub(crate) use hosts::KnownHosts;
pub(crate) use tls::acceptor as tls_acceptor;

use std::sync::Arc;

use accord_proto::v1;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::auth::TokenTable;
use crate::http_serve::{self, HttpLimits, HttpPort};
use crate::metrics::{Metrics, PortLabels};
use crate::queries::DEFAULT_WAIT;
use crate::service::Services;
use access::Reader;
use answer::failed;

/// Events of the log view when it opens.
const LOG_ROWS: usize = 50;
/// Most events of an agreement's timeline (its latest).
const TIMELINE: usize = 1_000;
/// Most bytes of events (encoded) an agreement's timeline shows: events may
/// be up to `--max-event-bytes` each.
const TIMELINE_BYTES: usize = 4 * 1024 * 1024;

/// What the console reads from.
pub(crate) struct ConsoleContext {
    pub(crate) tokens: Option<Arc<TokenTable>>,
    /// The application layer gRPC calls too; the live pages take stream
    /// slots from its feed like gRPC's streams (`--max-subscriptions` and
    /// the per-client limit).
    pub(crate) services: Services,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) failing: watch::Receiver<bool>,
    /// Events' frames, rendered once for every live page.
    pub(crate) frames: feed::Frames,
    /// The host names requests may name (DNS rebinding).
    pub(crate) hosts: KnownHosts,
    /// Every task of the console (live pages, TLS connections):
    /// all have ended, and let go of the log, when `serve` returns.
    pub(crate) tasks: tokio_util::task::TaskTracker,
}

type Context = State<Arc<ConsoleContext>>;

/// Serves the console on `listener` (over TLS with `tls`), at most
/// `max_connections` at a time, until `stopping` is cancelled; returns once
/// every task of the console has ended.
pub(crate) async fn serve(
    listener: TcpListener,
    context: ConsoleContext,
    tls: Option<tokio_rustls::TlsAcceptor>,
    max_connections: usize,
) {
    let stopping = context.services.feed.stopping();
    let tasks = context.tasks.clone();
    let refused = context
        .metrics
        .http_connections_refused
        .get_or_create(&PortLabels {
            port: "console".into(),
        })
        .clone();
    let port = HttpPort {
        name: "console",
        router: router(Arc::new(context)),
        limits: HttpLimits::with_connections(max_connections),
        tls,
        refused,
    };
    http_serve::serve(listener, port, stopping, tasks.clone()).await;
    tasks.close();
    tasks.wait().await;
}

fn router(context: Arc<ConsoleContext>) -> Router {
    Router::new()
        .route("/", get(shell))
        .route("/agreements", get(shell))
        .route("/agreements/{id}", get(shell))
        .route("/log", get(shell))
        .route("/operations", get(shell))
        .route("/assets/console.js", get(script))
        .route("/assets/console.css", get(style))
        .route("/api/whoami", get(whoami))
        .route("/fragment/", get(countries))
        .route("/fragment/agreements", get(agreements))
        .route("/fragment/agreements/{id}", get(agreement))
        .route("/fragment/log", get(log))
        .route("/fragment/operations", get(operations))
        .route("/live", get(live::stream))
        .route("/action/verify", post(actions::verify))
        .route("/action/rebuild", post(actions::rebuild))
        .route("/checkpoint", get(tiles::checkpoint))
        .route("/agreements/{id}/proof.json", get(tiles::proof_bundle))
        .route("/tile/{*path}", get(tiles::tile))
        .fallback(|| async { answer::not_found() })
        .layer(axum::middleware::from_fn_with_state(
            context.clone(),
            hosts::only_known_hosts,
        ))
        .layer(axum::middleware::map_response(secure))
        .with_state(context)
}

/// Headers every answer carries: no script, style or frame from elsewhere.
async fn secure(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
        ),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    // Unless the answer says it may be kept (a full tile never changes).
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn shell() -> Html<String> {
    Html(pages::shell().into_string())
}

async fn script() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("console/assets/console.js"),
    )
}

async fn style() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("console/assets/console.css"),
    )
}

async fn whoami(State(context): Context, headers: HeaderMap) -> Response {
    match access::caller(context.tokens.as_deref(), &headers) {
        Ok(caller) => (
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::json!({
                "name": caller.name,
                "reader": caller.reader,
                "operator": caller.operator,
            })
            .to_string(),
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

fn fragment(markup: maud::Markup) -> Response {
    Html(markup.into_string()).into_response()
}

async fn countries(State(context): Context, _: Reader) -> Response {
    let head = context.services.feed.head();
    match context
        .services
        .queries
        .country_portfolios(v1::ListCountryPortfoliosRequest::default(), DEFAULT_WAIT)
        .await
    {
        Ok(list) => fragment(views::countries::render(&list.portfolios, head)),
        Err(error) => failed(error),
    }
}

async fn agreements(
    State(context): Context,
    _: Reader,
    Query(query): Query<views::agreements::ListQuery>,
) -> Response {
    match context
        .services
        .queries
        .list_agreements(query.request(), DEFAULT_WAIT)
        .await
    {
        Ok(page) => fragment(views::agreements::list(&query, &page)),
        Err(error) => failed(error),
    }
}

#[derive(serde::Deserialize)]
struct AsOf {
    #[serde(default)]
    as_of: String,
}

async fn agreement(
    State(context): Context,
    _: Reader,
    Path(id): Path<String>,
    Query(as_of): Query<AsOf>,
) -> Response {
    let Ok(as_of) = (match as_of.as_of.trim() {
        "" => Ok(0),
        text => text.parse::<u64>(),
    }) else {
        return answer::bad_request("as_of: a log position (a whole number) or nothing");
    };
    let request = v1::GetAgreementRequest {
        agreement_id: id.clone(),
        min_position: 0,
        as_of_position: as_of,
    };
    let agreement = match context
        .services
        .queries
        .get_agreement(request, DEFAULT_WAIT)
        .await
    {
        Ok(agreement) => agreement,
        Err(error) => return failed(error),
    };
    // The timeline shows the agreement's last `TIMELINE` events (as of the
    // position asked), at most `TIMELINE_BYTES` of them, and says how many
    // earlier ones it leaves out.
    let timeline = context
        .services
        .queries
        .timeline(&id, agreement.version, as_of, TIMELINE, TIMELINE_BYTES)
        .await;
    let (events, earlier) = match timeline {
        Ok(timeline) => timeline,
        Err(error) => return failed(error),
    };
    // The transparency checkpoint its records are in: size, cosignatures.
    let included = checkpoint_summary(&context)
        .await
        .filter(|(size, _)| *size >= agreement.position);
    fragment(views::agreements::detail(
        &agreement, &events, as_of, earlier, included,
    ))
}

/// The latest transparency checkpoint's size and its witness cosignatures.
async fn checkpoint_summary(context: &ConsoleContext) -> Option<(u64, usize)> {
    let note = context.services.transparency.checkpoint().await.ok()?.note;
    let note = accord_tlog::SignedNote::parse(&note).ok()?;
    let size = accord_tlog::Checkpoint::parse(&note.body).ok()?.size;
    Some((size, note.signatures.len().saturating_sub(1)))
}

async fn log(
    State(context): Context,
    _: Reader,
    Query(query): Query<views::log::LogQuery>,
) -> Response {
    let head = context.services.feed.head();
    match live::latest(&context, &query, head, LOG_ROWS).await {
        Ok(events) => fragment(views::log::render(&query, &events, head)),
        Err(error) => failed(error),
    }
}

async fn operations(State(context): Context, Reader(caller): Reader) -> Response {
    let head = context.services.feed.head();
    // GetStats is the operator's over gRPC: the console shows no more.
    let stats = if caller.operator {
        match context.services.operations.stats().await {
            Ok(stats) => Some(stats),
            Err(error) => return failed(error),
        }
    } else {
        None
    };
    // The transparency checkpoint: its size and witness cosignatures.
    let witnessed = checkpoint_summary(&context)
        .await
        .map(|(size, cosignatures)| (size, cosignatures, context.metrics.witness_quorum.get()));
    let operations = views::operations::Operations {
        head: stats.as_ref().map_or(head, |stats| stats.head_position),
        stats,
        subscriptions: context.metrics.subscriptions_active.get(),
        groups: context
            .services
            .groups
            .list()
            .await
            .map_err(|error| error.to_string()),
        healthy: !*context.failing.borrow(),
        operator: caller.operator,
        witnessed,
    };
    fragment(views::operations::render(&operations))
}
