//! Filtered reads from indexes instead of a scan of the log: a filter on
//! event types or buyer countries reads the positions the read models'
//! position index lists; a filter on agreements reads their streams. Both
//! `ReadLog`, a subscription's catch-up and consumer groups use it while
//! an index reaches their position, and scan the log from there on.

use std::sync::Arc;

use accord_domain::RecordedEvent;
use accord_projections::ReadModels;
use accord_store::{EventLog, StoreError};

use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::reads::{BuyerCountries, EventFilter};

/// The events that match a filter from a position on, and the last
/// position they cover: no other event up to `through` matches.
pub(crate) struct Matched {
    pub(crate) events: Vec<RecordedEvent>,
    pub(crate) through: u64,
}

/// The log and its indexes, for filtered reads.
#[derive(Clone)]
pub(crate) struct LogIndexes {
    log: Arc<dyn EventLog>,
    read_models: Arc<ReadModels>,
    metrics: Arc<Metrics>,
    /// The buyer country of recently filtered agreements: one cache for
    /// every filter of the server (gRPC streams, consumer groups, the
    /// console), bounded in bytes.
    countries: Arc<BuyerCountries>,
}

impl LogIndexes {
    pub(crate) fn new(
        log: Arc<dyn EventLog>,
        read_models: Arc<ReadModels>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            log,
            read_models,
            metrics,
            countries: Arc::new(BuyerCountries::default()),
        }
    }

    /// The server's one cache of agreements' buyer countries, for filters.
    pub(crate) fn buyer_countries(&self) -> &Arc<BuyerCountries> {
        &self.countries
    }

    /// The log.
    pub(crate) fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// Up to `max` events matching `filter` from `from` on (none past the
    /// head), read from an index; `None` when no index reaches `from` (the
    /// filter narrows nothing, or the projector has not indexed it yet):
    /// scan the log from there.
    pub(crate) async fn read(
        &self,
        filter: &EventFilter,
        from: u64,
        max: usize,
    ) -> Result<Option<Matched>, ApiError> {
        let from = from.max(1);
        let agreements = filter.agreement_ids();
        let matched = if agreements.is_empty() {
            self.read_positions(filter, from, max).await?
        } else {
            self.read_streams(filter, &agreements, from, max).await?
        };
        if let Some(matched) = &matched {
            let read = matched.events.len() as u64;
            let covered = (matched.through + 1).saturating_sub(from);
            self.metrics.indexed_read_events.inc_by(read);
            self.metrics
                .indexed_read_skipped_positions
                .inc_by(covered.saturating_sub(read));
        }
        Ok(matched)
    }

    /// The events at the positions the position index lists.
    async fn read_positions(
        &self,
        filter: &EventFilter,
        from: u64,
        max: usize,
    ) -> Result<Option<Matched>, ApiError> {
        let query = filter.position_query();
        if !query.narrows() || from > self.read_models.checkpoint() {
            return Ok(None);
        }
        let read_models = self.read_models.clone();
        let indexed =
            tokio::task::spawn_blocking(move || read_models.indexed_positions(&query, from, max))
                .await
                .map_err(|error| StoreError::failed("a read of the position index", error))??;
        if indexed.through < from {
            return Ok(None);
        }
        self.read_listed(&indexed.positions, indexed.through).await
    }

    /// The events at `positions` (ascending, none past `through`), which
    /// list every match up to `through`. A read stops short at its byte
    /// budget: it then covers what it read. `None` when nothing could be
    /// read (the log moved under the index): scan instead.
    async fn read_listed(
        &self,
        positions: &[u64],
        through: u64,
    ) -> Result<Option<Matched>, ApiError> {
        if positions.is_empty() {
            return Ok(Some(Matched {
                events: Vec::new(),
                through,
            }));
        }
        let events = self.log.read_positions(positions).await?;
        let through = match events.last() {
            Some(last) if events.len() < positions.len() => last.position,
            Some(_) => through,
            None => return Ok(None),
        };
        Ok(Some(Matched { events, through }))
    }

    /// The events of the named agreements from `from` on, through the head
    /// as it was when the read began, in log order; `None` within one batch
    /// of the head, where a scan reads less than a search of every named
    /// stream. Each stream lists its share of `max` positions, so that a
    /// step lists about `max` whatever the number of agreements
    /// (`LIST_MAX_ENTRIES` at most), and the events are read as any listed
    /// positions are: no more than `READ_BYTES` of them.
    async fn read_streams(
        &self,
        filter: &EventFilter,
        agreements: &[String],
        from: u64,
        max: usize,
    ) -> Result<Option<Matched>, ApiError> {
        let head = self.log.head();
        let max = max.max(1);
        if head.saturating_sub(from) < max as u64 {
            return Ok(None);
        }
        let share = (max / agreements.len().max(1)).max(1);
        let mut through = head;
        let mut positions = Vec::new();
        for agreement_id in agreements {
            let Some(version) = first_version_from(self.log.as_ref(), agreement_id, from).await?
            else {
                continue;
            };
            let listed = self
                .log
                .stream_positions(agreement_id, version, share)
                .await?;
            if listed.len() >= share
                && let Some(&last) = listed.last()
            {
                through = through.min(last);
            }
            positions.extend(listed);
        }
        positions.retain(|position| *position <= through);
        positions.sort_unstable();
        if positions.len() > max {
            positions.truncate(max);
            through = positions[max - 1];
        }
        let Some(matched) = self.read_listed(&positions, through).await? else {
            return Ok(None);
        };
        let mut events = Vec::with_capacity(matched.events.len());
        for event in matched.events {
            if filter.matches(self.log.as_ref(), &event).await? {
                events.push(event);
            }
        }
        Ok(Some(Matched {
            events,
            through: matched.through,
        }))
    }
}

/// The first version of `agreement_id` at or after position `from` (one
/// past its last version when none is), by a search of its stream index;
/// `None` when the agreement has no stream.
async fn first_version_from(
    log: &dyn EventLog,
    agreement_id: &str,
    from: u64,
) -> Result<Option<u64>, ApiError> {
    let at_or_after = |position: Option<u64>| position.is_none_or(|position| position >= from);
    match log.locate(agreement_id, 1).await? {
        None => return Ok(None),
        Some(first) if first >= from => return Ok(Some(1)),
        Some(_) => {}
    }
    // Versions before `low` sit before `from`; `high` is at or after it.
    let mut low = 1;
    let mut high = 2;
    while !at_or_after(log.locate(agreement_id, high).await?) {
        low = high;
        high = high.saturating_mul(2);
    }
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        if at_or_after(log.locate(agreement_id, middle).await?) {
            high = middle;
        } else {
            low = middle;
        }
    }
    Ok(Some(high))
}
