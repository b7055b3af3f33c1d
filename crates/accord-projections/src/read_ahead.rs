//! Reads the log ahead of a fold, on a task of its own, for the projector
//! and for rebuilds; a rebuild also decodes ahead of its fold.

use std::sync::Arc;

use accord_domain::RecordedEvent;
use accord_store::{EventLog, RawRecord, StoreError, decode_for_replay};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Most events read from the log at once.
pub(crate) const READ_EVENTS: usize = 16_384;
/// Log batches read ahead of the fold.
pub(crate) const READ_AHEAD: usize = 4;

/// Sends the log's records from `next` onwards in batches; each time it
/// finds nothing more to read it sends an empty batch (the reader is at the
/// head), then waits for new records.
pub(crate) async fn read_ahead(
    log: Arc<dyn EventLog>,
    mut next: u64,
    batches: mpsc::Sender<Result<Vec<RawRecord>, StoreError>>,
) {
    let mut head = log.watch_head();
    loop {
        let events = match log.read_raw(next, READ_EVENTS).await {
            Ok(events) => events,
            Err(error) => {
                let _ = batches.send(Err(error)).await;
                return;
            }
        };
        let Some(last) = events.last() else {
            if batches.send(Ok(Vec::new())).await.is_err() {
                return;
            }
            let after = next - 1;
            if head.wait_for(|head| *head > after).await.is_err() {
                return;
            }
            continue;
        };
        next = last.position + 1;
        if batches.send(Ok(events)).await.is_err() {
            return;
        }
    }
}

/// Decoded events, or why the log could not be read or decoded.
pub(crate) type DecodedBatch = Result<Vec<RecordedEvent>, StoreError>;

/// Decodes the batches [`read_ahead`] sends, each on a blocking thread, and
/// sends them on in order (an empty batch: the reader is at the head). A
/// rebuild's fold then runs on one core while the next batch is decoded on
/// the other.
pub(crate) async fn decode_ahead(
    mut raw: mpsc::Receiver<Result<Vec<RawRecord>, StoreError>>,
    decoded: mpsc::Sender<DecodedBatch>,
) {
    while let Some(batch) = raw.recv().await {
        let batch = match batch {
            Ok(records) => tokio::task::spawn_blocking(move || decode_batch(&records))
                .await
                .unwrap_or_else(|error| Err(StoreError::failed("decoding ahead", error))),
            Err(error) => Err(error),
        };
        let failed = batch.is_err();
        if decoded.send(batch).await.is_err() || failed {
            return;
        }
    }
}

/// The events of `records`, decoded for a fold (see `decode_for_replay`).
pub(crate) fn decode_batch(records: &[RawRecord]) -> DecodedBatch {
    records
        .iter()
        .map(|record| decode_for_replay(&record.bytes))
        .collect()
}

/// Stops a task when its owner goes away.
pub(crate) struct AbortOnDrop(pub(crate) JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
