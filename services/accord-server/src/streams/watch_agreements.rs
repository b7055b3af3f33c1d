//! `AgreementService.WatchAgreements`: the agreement view after each change.
//!
//! The stream follows the log for events of the watched agreements; for each
//! one it waits until the read models have applied it and sends the view.
//! A view may already include later events (the stream lagged behind the
//! projector); those later events are then not sent again, so views never go
//! backwards and the last one is always the current one.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use accord_domain::{Agreement, ValidationError, validate_country};
use accord_projections::{AgreementFilter, ReadModels};
use accord_proto::{agreement_to_wire, v1};
use accord_store::EventLog;
use tokio_util::sync::CancellationToken;

use super::cursor::LogCursor;
use super::slots::Slot;
use super::subscribe::Wake;
use super::{LIVE_STREAM_BUFFER, ServerStream, StreamSender, stream_channel};
use crate::error::ApiError;

/// Which agreements a watch follows.
enum Watched {
    Ids(HashSet<String>),
    BuyerCountry(String),
    All,
}

impl Watched {
    /// False when an event of `agreement_id` cannot concern the watch, so
    /// that its view is not even read.
    fn may_include(&self, agreement_id: &str) -> bool {
        match self {
            Watched::Ids(ids) => ids.contains(agreement_id),
            Watched::BuyerCountry(_) | Watched::All => true,
        }
    }

    fn includes(&self, agreement: &Agreement) -> bool {
        match self {
            Watched::Ids(ids) => ids.contains(&agreement.agreement_id),
            Watched::BuyerCountry(country) => agreement.buyer.country == *country,
            Watched::All => true,
        }
    }
}

/// Longest wait for the read models to reach the head before a watch starts.
const INITIAL_VIEWS_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// Checks the request and starts the stream's task.
pub(crate) fn start_watch(
    log: Arc<dyn EventLog>,
    recent: Arc<super::recent::RecentEvents>,
    read_models: Arc<ReadModels>,
    stopping: CancellationToken,
    slot: Slot,
    request: v1::WatchAgreementsRequest,
) -> Result<ServerStream<v1::AgreementUpdate>, ApiError> {
    accord_domain::validate_list_len("agreement_ids", request.agreement_ids.len())?;
    for (index, agreement_id) in request.agreement_ids.iter().enumerate() {
        accord_domain::validate_agreement_id(agreement_id).map_err(|error| {
            ValidationError::new(format!("agreement_ids[{index}]"), error.reason)
        })?;
    }
    let watched = match (
        request.agreement_ids.is_empty(),
        request.buyer_country.is_empty(),
    ) {
        (false, false) => {
            return Err(ValidationError::new(
                "buyer_country",
                "give agreement_ids or buyer_country, not both",
            )
            .into());
        }
        (false, true) => Watched::Ids(request.agreement_ids.into_iter().collect()),
        (true, false) => {
            validate_country("buyer_country", &request.buyer_country)?;
            Watched::BuyerCountry(request.buyer_country)
        }
        (true, true) => Watched::All,
    };
    let (out, stream) = stream_channel(LIVE_STREAM_BUFFER);
    let out = out.live(stopping.clone());
    let include_initial = request.include_initial;
    // Every event acknowledged before the watch began is in its initial
    // views or among its changes (read-your-writes).
    let started_at = log.head();
    tokio::spawn(async move {
        let _slot = slot;
        // Initial views from read models at the head of the request, or as
        // far as they got after a short wait; changes from there on (views
        // read ahead of the cursor are not sent twice, see `send`).
        let _ = read_models.wait_for(started_at, INITIAL_VIEWS_WAIT).await;
        let start = read_models.checkpoint().min(started_at);
        let watch = Watch {
            cursor: LogCursor::after(log, recent, start),
            read_models,
            watched,
            stopping,
            out,
            ahead: HashMap::new(),
        };
        watch.run(include_initial).await;
    });
    Ok(stream)
}

struct Watch {
    cursor: LogCursor,
    read_models: Arc<ReadModels>,
    watched: Watched,
    stopping: CancellationToken,
    out: StreamSender<v1::AgreementUpdate>,
    /// Agreements whose last view sent is ahead of the cursor: id -> view position.
    ahead: HashMap<String, u64>,
}

impl Watch {
    async fn run(mut self, include_initial: bool) {
        if include_initial && let Err(error) = self.send_initial().await {
            return self.out.fail(error).await;
        }
        loop {
            if self.stopping.is_cancelled() {
                return self.end_for_shutdown().await;
            }
            let event = match self.cursor.next().await {
                Ok(Some(event)) => event,
                Ok(None) => {
                    let wake = tokio::select! {
                        more = self.cursor.wait_for_more() => Wake::More(more),
                        _ = self.stopping.cancelled() => Wake::Stop,
                        () = self.out.closed() => Wake::ClientGone,
                    };
                    match wake {
                        Wake::More(Ok(())) | Wake::Heartbeat => continue,
                        Wake::More(Err(error)) => return self.out.fail(error.into()).await,
                        Wake::Stop => return self.end_for_shutdown().await,
                        Wake::ClientGone => return,
                    }
                }
                Err(error) => return self.out.fail(error.into()).await,
            };
            if !self.watched.may_include(&event.agreement_id) {
                continue;
            }
            if let Some(view_position) = self.ahead.get(&event.agreement_id).copied() {
                if event.position >= view_position {
                    self.ahead.remove(&event.agreement_id);
                }
                continue;
            }
            match self.update_for(&event.agreement_id, event.position).await {
                Ok(Some(agreement)) => {
                    if !self.watched.includes(&agreement) {
                        continue;
                    }
                    if !self.send(agreement).await {
                        return;
                    }
                }
                Ok(None) => {}
                Err(error) => return self.out.fail(error).await,
            }
        }
    }

    /// Sends the current view of every watched agreement.
    async fn send_initial(&mut self) -> Result<(), ApiError> {
        let filter = match &self.watched {
            Watched::Ids(ids) => {
                let mut ids: Vec<String> = ids.iter().cloned().collect();
                ids.sort();
                for agreement_id in ids {
                    if let Some(agreement) = self.read_models.agreement(&agreement_id)?
                        && !self.send(agreement).await
                    {
                        return Ok(());
                    }
                }
                return Ok(());
            }
            Watched::BuyerCountry(country) => AgreementFilter {
                buyer_country: Some(country.clone()),
                ..AgreementFilter::default()
            },
            Watched::All => AgreementFilter::default(),
        };
        let mut after: Option<String> = None;
        loop {
            let page = self
                .read_models
                .list_agreements(&filter, 500, after.as_deref())?;
            for agreement in page.agreements {
                if !self.send(agreement).await {
                    return Ok(());
                }
            }
            match page.last_id {
                Some(last) => after = Some(last),
                None => return Ok(()),
            }
        }
    }

    /// Waits until the read models have applied `position` and returns the view.
    async fn update_for(
        &mut self,
        agreement_id: &str,
        position: u64,
    ) -> Result<Option<Agreement>, ApiError> {
        let mut checkpoint = self.read_models.watch_checkpoint();
        tokio::select! {
            reached = checkpoint.wait_for(|checkpoint| *checkpoint >= position) => {
                if reached.is_err() {
                    return Err(ApiError::Unavailable("read models stopped".into()));
                }
            }
            _ = self.stopping.cancelled() => return Ok(None),
        }
        self.read_models
            .agreement(agreement_id)
            .map_err(ApiError::from)
    }

    async fn send(&mut self, agreement: Agreement) -> bool {
        if agreement.position > self.cursor.position() {
            self.ahead
                .insert(agreement.agreement_id.clone(), agreement.position);
        }
        let update = v1::AgreementUpdate {
            position: agreement.position,
            agreement: Some(agreement_to_wire(&agreement)),
        };
        self.out.send(update).await
    }

    async fn end_for_shutdown(self) {
        let status = ApiError::Unavailable(format!(
            "server is shutting down; watch again (views up to position {} were sent)",
            self.cursor.position()
        ));
        self.out.end_with(status).await;
    }
}
