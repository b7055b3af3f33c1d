//! The console's live feed: Server-Sent Events from the log's head, the
//! same notifications that drive `Subscribe`. `append` carries each new
//! event matching the view's filter (with its log row), `head` the head
//! every few seconds and whenever the log moved; both carry the position the
//! page has seen, from which it resumes after a lost connection
//! (`?after=`).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use accord_proto::v1;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::answer::{bad_request, failed};
use super::views::log::{LogQuery, row};
use super::{ConsoleContext, access};
use crate::error::ApiError;
use crate::grpc::EventFilter;

/// Events read from the log at once.
const BATCH: usize = 500;
/// How often a quiet feed says where the head is.
const HEAD_EVERY: Duration = Duration::from_secs(2);
/// Most events scanned back to fill the log view.
const SCAN_BACK: u64 = 20_000;

/// The live feed's query: the log view's filters and where to resume.
#[derive(Debug, Default, serde::Deserialize)]
pub(crate) struct LiveQuery {
    #[serde(default)]
    after: Option<u64>,
    #[serde(flatten)]
    filter: LogQuery,
}

fn filter_of(context: &ConsoleContext, query: &LogQuery) -> Result<EventFilter, ApiError> {
    EventFilter::new(Some(query.filter()), context.countries.clone())
}

/// The latest `count` events at or below `head` that match `query`, oldest
/// first (at most `SCAN_BACK` events are looked at).
pub(crate) async fn latest(
    context: &ConsoleContext,
    query: &LogQuery,
    head: u64,
    count: usize,
) -> Result<Vec<v1::RecordedEvent>, ApiError> {
    let filter = filter_of(context, query)?;
    let mut found = Vec::new();
    let mut end = head;
    let floor = head.saturating_sub(SCAN_BACK);
    while end > floor && found.len() < count {
        let from = end.saturating_sub(BATCH as u64).max(floor) + 1;
        let events = context
            .log
            .read_log(from, (end + 1 - from) as usize)
            .await?;
        let mut matching = Vec::new();
        for event in events {
            if filter.matches(context.log.as_ref(), &event).await? {
                matching.push(accord_proto::recorded_event_to_wire(&event));
            }
        }
        matching.extend(found);
        found = matching;
        end = from - 1;
    }
    let skip = found.len().saturating_sub(count);
    Ok(found.split_off(skip))
}

fn event(name: &str, data: serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

/// `GET /live`: the feed.
pub(crate) async fn stream(
    State(context): State<Arc<ConsoleContext>>,
    headers: HeaderMap,
    Query(query): Query<LiveQuery>,
) -> Response {
    if let Err(refusal) = access::reader(context.tokens.as_deref(), &headers) {
        return refusal.into_response();
    }
    let filter = match filter_of(&context, &query.filter) {
        Ok(filter) => filter,
        Err(error) => return failed(error),
    };
    let head = context.log.head();
    let after = match query.after {
        Some(after) if after > head => {
            return bad_request("after: beyond the head of the log");
        }
        Some(after) => after,
        None => head,
    };
    let (sender, receiver) = mpsc::channel(64);
    tokio::spawn(follow(context, filter, after, sender));
    Sse::new(ReceiverStream::new(receiver))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Sends what the log appends after `after` until the page goes away or
/// the server stops.
async fn follow(
    context: Arc<ConsoleContext>,
    filter: EventFilter,
    mut after: u64,
    sender: mpsc::Sender<Result<Event, Infallible>>,
) {
    let mut head = context.log.watch_head();
    let mut tick = tokio::time::interval(HEAD_EVERY);
    let mut say_head = true;
    loop {
        let now = context.log.head();
        while after < now {
            let events = match context.log.read_log(after + 1, BATCH).await {
                Ok(events) if !events.is_empty() => events,
                // Positions that hold no event (quarantined on NATS).
                Ok(_) => {
                    after = now;
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "console feed cannot read the log");
                    return;
                }
            };
            for recorded in events {
                after = recorded.position;
                let matches = filter
                    .matches(context.log.as_ref(), &recorded)
                    .await
                    .unwrap_or(false);
                if matches {
                    let wire = accord_proto::recorded_event_to_wire(&recorded);
                    let data = serde_json::json!({
                        "position": wire.position,
                        "agreement_id": wire.agreement_id,
                        "event_type": wire.event_type,
                        "row": row(&wire).into_string(),
                    });
                    if sender.send(Ok(event("append", data))).await.is_err() {
                        return;
                    }
                }
            }
        }
        if std::mem::take(&mut say_head) {
            let data = serde_json::json!({ "head": now, "position": after });
            if sender.send(Ok(event("head", data))).await.is_err() {
                return;
            }
        }
        tokio::select! {
            () = context.stopping.cancelled() => return,
            () = sender.closed() => return,
            changed = head.changed() => if changed.is_err() { return },
            _ = tick.tick() => say_head = true,
        }
    }
}
