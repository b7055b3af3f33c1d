//! A page's live feed: Server-Sent Events from the log's head, the same
//! notifications that drive `Subscribe`. `append` carries each new event
//! matching the view's filter (with its log row), `head` where the log
//! stands every few seconds and the last position looked at, from which
//! the page resumes after a lost connection (`?after=`). Events come through
//! the shared window of recent events, framed once (`feed`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use accord_proto::v1;
use axum::body::Body;
use axum::extract::{Extension, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::ConsoleContext;
use super::access::Reader;
use super::access::refused;
use super::answer::{bad_request, failed};
use super::views::log::LogQuery;
use crate::error::ApiError;
use crate::http_serve::PeerAddr;
use crate::reads::EventFilter;
use crate::streams::Owner;

/// How often a quiet feed says where the head is.
const HEAD_EVERY: Duration = Duration::from_secs(2);
/// Most bytes of frames a page's feed gathers before it writes them: a page
/// that catches up on a long log sends it in chunks of this size as it reads
/// (the channel holds a few), so its memory does not grow with the log.
const CHUNK_BYTES: usize = 64 * 1024;
/// How long a page's feed gathers new events before it writes them.
const COALESCE: Duration = Duration::from_millis(100);

/// The live feed's query: the log view's filters and where to resume.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct LiveQuery {
    #[serde(default)]
    after: Option<u64>,
    #[serde(flatten)]
    filter: LogQuery,
}

fn filter_of(context: &ConsoleContext, query: &LogQuery) -> Result<EventFilter, ApiError> {
    context.services.feed.filter(Some(query.filter()))
}

/// The latest `count` events at or below `head` that match `query`, oldest
/// first (a bounded look back).
pub(crate) async fn latest(
    context: &ConsoleContext,
    query: &LogQuery,
    head: u64,
    count: usize,
) -> Result<Vec<v1::RecordedEvent>, ApiError> {
    let filter = filter_of(context, query)?;
    context.services.feed.latest(&filter, head, count).await
}

/// `GET /live`: the feed.
pub(crate) async fn stream(
    State(context): State<Arc<ConsoleContext>>,
    Reader(caller): Reader,
    Extension(PeerAddr(peer)): Extension<PeerAddr>,
    Query(query): Query<LiveQuery>,
) -> Response {
    let filter = match filter_of(&context, &query.filter) {
        Ok(filter) => filter,
        Err(error) => return failed(error),
    };
    let head = context.services.feed.head();
    let after = match query.after {
        Some(after) if after > head => {
            return bad_request("after: beyond the head of the log");
        }
        Some(after) => after,
        None => head,
    };
    let token = context.tokens.as_ref().map(|_| caller.name.as_str());
    let slot = match context.services.feed.take_slot(Owner::new(peer, token)) {
        Ok(slot) => slot,
        Err(refusal) => {
            return refused(
                StatusCode::TOO_MANY_REQUESTS,
                format!("too many live pages and streams are open: {refusal}; close some"),
            )
            .into_response();
        }
    };
    let (sender, receiver) = mpsc::channel(4);
    let tasks = context.tasks.clone();
    tasks.spawn(async move {
        let pages = context.metrics.console_live_pages.clone();
        pages.inc();
        follow(context, filter, after, sender).await;
        pages.dec();
        drop(slot);
    });
    (
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(ReceiverStream::new(receiver)),
    )
        .into_response()
}

/// What a page's feed writes: a chunk of frames.
type Chunks = mpsc::Sender<Result<Bytes, Infallible>>;

/// The `head` frame: where the log stands, and the last position looked at.
fn head_frame(head: u64, after: u64) -> Bytes {
    Bytes::from(format!(
        "event: head\ndata: {{\"head\":{head},\"position\":{after}}}\n\n"
    ))
}

/// Sends what the log appends after `after` until the page goes away or
/// the server stops, read through a cursor (the shared window of recent
/// events, the log for what it no longer holds); what comes within
/// `COALESCE` goes out in one write: a person does not see 100 ms, the
/// server saves a wake-up and a write per page per event.
async fn follow(context: Arc<ConsoleContext>, filter: EventFilter, after: u64, chunks: Chunks) {
    let feed = context.services.feed.clone();
    let stopping = feed.stopping();
    let mut cursor = feed.cursor_after(after);
    let mut say_head = true;
    let mut tick = tokio::time::interval(HEAD_EVERY);
    tick.reset();
    loop {
        let mut chunk = Vec::new();
        loop {
            if chunks.is_closed() || stopping.is_cancelled() {
                return;
            }
            let event = match cursor.next().await {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(error) => {
                    tracing::warn!(%error, "console feed cannot read the log");
                    return;
                }
            };
            if feed.matches(&filter, &event).await.unwrap_or(false) {
                chunk.extend_from_slice(&context.frames.of(&event));
            }
            if chunk.len() >= CHUNK_BYTES {
                // Waits while the page reads (HTTP flow control): a page
                // that does not read holds one chunk and the channel's few.
                if chunks
                    .send(Ok(Bytes::from(std::mem::take(&mut chunk))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
        if !chunk.is_empty() && chunks.send(Ok(Bytes::from(chunk))).await.is_err() {
            return;
        }
        if std::mem::take(&mut say_head)
            && chunks
                .send(Ok(head_frame(cursor.head(), cursor.position())))
                .await
                .is_err()
        {
            return;
        }
        tokio::select! {
            () = stopping.cancelled() => return,
            () = chunks.closed() => return,
            _ = tick.tick() => say_head = true,
            more = cursor.wait_for_more() => {
                if more.is_err() {
                    return;
                }
                tokio::select! {
                    () = stopping.cancelled() => return,
                    () = tokio::time::sleep(COALESCE) => {}
                }
            }
        }
    }
}
