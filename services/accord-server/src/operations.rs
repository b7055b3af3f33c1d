//! What an operator does with a running server, whatever the transport:
//! the log's figures, a rebuild of the read models, a verification of the
//! log, an export of its records and an import of one. gRPC's `Admin`
//! and the console's operations view call these.

mod import_spool;
mod service;

use std::path::PathBuf;
use std::sync::Arc;

use accord_domain::ValidationError;
use accord_projections::{PROJECTION_NAME, ReadModels, rebuild};
use accord_proto::recorded_event_to_wire;
use accord_proto::v1;
use accord_store::{
    CheckpointKeys, EventLog, ImportVerifier, RawRecord, StoreError, decode_record, record_hash,
    verify_log,
};
use tokio_stream::StreamExt;

use crate::checkpoint_wire as checkpoint;
use crate::error::ApiError;
use crate::streams::{
    EXPORT_BATCH, PROGRESS_BUFFER, READ_STREAM_BUFFER, ServerStream, Slot, spawn_stream,
};
use import_spool::Spool;
pub(crate) use service::{ImportRecords, OperationsService};

/// The operations over one log and its read models.
pub(crate) struct Operations {
    log: Arc<dyn EventLog>,
    read_models: Arc<ReadModels>,
    /// The keys whose checkpoints verification accepts.
    keys: CheckpointKeys,
    /// Where imports are spooled before they are written (the data
    /// directory).
    spool_dir: PathBuf,
}

/// Records handed to the log per import step.
const IMPORT_CHUNK: usize = 10_000;

impl Operations {
    pub(crate) fn new(
        log: Arc<dyn EventLog>,
        read_models: Arc<ReadModels>,
        keys: CheckpointKeys,
        spool_dir: PathBuf,
    ) -> Self {
        Self {
            log,
            read_models,
            keys,
            spool_dir,
        }
    }
}

#[async_trait::async_trait]
impl OperationsService for Operations {
    /// The log's figures and each projection's progress.
    async fn stats(&self) -> Result<v1::GetStatsResponse, ApiError> {
        let checkpoint = self.read_models.checkpoint();
        let signed = self.log.checkpoint();
        let stats = self.log.stats().await?;
        Ok(v1::GetStatsResponse {
            head_position: stats.head_position,
            event_count: stats.event_count,
            agreement_count: stats.agreement_count,
            disk_bytes: stats.disk_bytes + self.read_models.disk_bytes(),
            projections: vec![v1::ProjectionStatus {
                name: PROJECTION_NAME.to_owned(),
                checkpoint,
                lag: stats.head_position.saturating_sub(checkpoint),
            }],
            checkpoint: signed.as_ref().map(checkpoint::to_wire),
        })
    }

    /// Rebuilds the projections named (every one when none is) from the
    /// log while the server keeps serving; progress as it goes.
    fn rebuild(&self, names: &[String]) -> Result<ServerStream<v1::RebuildProgress>, ApiError> {
        for (index, name) in names.iter().enumerate() {
            if name != PROJECTION_NAME {
                return Err(ApiError::from(ValidationError::new(
                    format!("names[{index}]"),
                    format!(
                        "unknown projection {}; known: {PROJECTION_NAME}",
                        accord_domain::quoted(name)
                    ),
                )));
            }
        }
        let Some(claim) = self.read_models.claim_rebuild() else {
            return Err(ApiError::FailedPrecondition(
                "a rebuild is already running".into(),
            ));
        };
        let log = self.log.clone();
        let read_models = self.read_models.clone();
        let stream = spawn_stream(PROGRESS_BUFFER, move |out| async move {
            let _claim = claim;
            let progress = out.clone();
            let status = rebuild(log, read_models, move |status| {
                progress.offer(v1::RebuildProgress {
                    name: PROJECTION_NAME.to_owned(),
                    position: status.position,
                    head_position: status.head_position,
                    events_per_second: status.events_per_second,
                    done: status.done,
                });
            })
            .await
            .inspect_err(|error| tracing::error!(%error, "rebuild failed"))?;
            tracing::info!(
                position = status.position,
                events_per_second = status.events_per_second,
                "read models rebuilt"
            );
            Ok(())
        });
        Ok(stream)
    }

    /// Verifies every record, the chain, the indexes and the signed
    /// checkpoint; progress as it goes.
    fn verify(&self) -> ServerStream<v1::VerifyProgress> {
        let log = self.log.clone();
        let keys = self.keys.clone();
        spawn_stream(PROGRESS_BUFFER, move |out| async move {
            let progress = out.clone();
            let report = verify_log(
                log.as_ref(),
                &keys,
                move |checked, head_position, problems| {
                    progress.offer(v1::VerifyProgress {
                        checked,
                        head_position,
                        problems: problems.to_vec(),
                        done: false,
                    });
                },
            )
            .await?;
            out.send(v1::VerifyProgress {
                checked: report.checked,
                head_position: report.head_position,
                problems: report.problems,
                done: true,
            })
            .await;
            Ok(())
        })
    }

    /// The log's records from `from` (0 or 1: the start) to its last signed
    /// head, with their hashes, the last one carrying the signed checkpoint;
    /// a record that does not hash to the checkpoint ends it `DATA_LOSS`.
    /// The stream holds `slot` (one of the stream limits) until it ends.
    fn export(&self, from: u64, slot: Slot) -> ServerStream<v1::ExportedRecord> {
        let from = from.max(1);
        let log = self.log.clone();
        // The export ends at the last signed head, which it carries: records
        // appended meanwhile are left to the next export.
        let Some(checkpoint) = log.checkpoint() else {
            return spawn_stream(1, |_| async { Ok(()) });
        };
        let head = checkpoint.position;
        spawn_stream(READ_STREAM_BUFFER, move |out| async move {
            let _slot = slot;
            let mut next = from;
            while next <= head {
                let records = log.read_raw(next, EXPORT_BATCH).await?;
                if records.is_empty() {
                    return Ok(());
                }
                for record in records {
                    if record.position > head {
                        return Ok(());
                    }
                    next = record.position + 1;
                    let decoded = decode_record(&record.bytes)?;
                    let hash = record_hash(&record.bytes);
                    let last = record.position == head;
                    if last && hash != checkpoint.hash {
                        return Err(StoreError::Tampered(format!(
                            "the record at position {head} does not hash to the log's signed checkpoint"
                        ))
                        .into());
                    }
                    let exported = v1::ExportedRecord {
                        position: record.position,
                        hash: hash.to_vec(),
                        prev_hash: decoded.prev_hash.to_vec(),
                        event: Some(recorded_event_to_wire(&decoded.event)),
                        record: record.bytes.to_vec(),
                        checkpoint: last.then(|| checkpoint::to_wire(&checkpoint)),
                    };
                    if !out.send(exported).await {
                        return Ok(());
                    }
                }
            }
            Ok(())
        })
    }

    /// Imports an export into this empty log: every record is checked as
    /// it arrives (chain, record against its event, the signed checkpoint
    /// on the last one, by a trusted key unless `allow_unsigned`) and
    /// spooled to disk; only then does the log take them, all or nothing.
    async fn import(
        &self,
        mut records: ImportRecords,
        allow_unsigned: bool,
    ) -> Result<v1::ImportLogResponse, ApiError> {
        let head = self.log.head();
        if head != 0 {
            return Err(ApiError::FailedPrecondition(format!(
                "imports go into an empty log; this one has {head} events"
            )));
        }
        // Phase 1: the whole export is checked and spooled; nothing is written.
        let mut spool =
            Spool::create(&self.spool_dir).map_err(spool_failed("creating the import spool"))?;
        let mut verifier = ImportVerifier::default();
        let mut signed = None;
        while let Some(exported) = records.next().await {
            let exported = exported?;
            let position = exported.position;
            if let Some(at) = signed.as_ref().map(|(at, _)| *at) {
                return Err(ValidationError::new(
                    format!("records[{}].checkpoint", at - 1),
                    "a checkpoint comes only on the last record of an export",
                )
                .into());
            }
            let refuse = |why: String| -> ApiError {
                ValidationError::new(format!("records[{}]", position.saturating_sub(1)), why).into()
            };
            let record = RawRecord {
                position,
                bytes: exported.record.into(),
            };
            let decoded = verifier
                .accept(&record)
                .map_err(|error| refuse(error.to_string()))?;
            if exported.hash != record_hash(&record.bytes)
                || exported.prev_hash != decoded.prev_hash
            {
                return Err(refuse(format!("hash chain broken at position {position}")));
            }
            if exported.event.as_ref() != Some(&recorded_event_to_wire(&decoded.event)) {
                return Err(refuse(format!(
                    "the event at position {position} differs from its record"
                )));
            }
            if let Some(wire) = &exported.checkpoint {
                let checkpoint = checkpoint::from_wire(wire).map_err(refuse)?;
                signed = Some((position.max(1), checkpoint));
            }
            spool
                .push(&record)
                .map_err(spool_failed("spooling the import"))?;
        }
        verifier.finish(
            signed.as_ref().map(|(_, checkpoint)| checkpoint),
            &self.keys,
            allow_unsigned,
        )?;
        // Phase 2: the log takes it all or nothing.
        let spooled = spool.records();
        let source = spool
            .into_source(IMPORT_CHUNK)
            .map_err(spool_failed("reading the import spool"))?;
        let imported = self.log.import(Box::new(source)).await?;
        debug_assert_eq!(imported, spooled);
        Ok(v1::ImportLogResponse {
            imported,
            head_position: self.log.head(),
        })
    }
}

/// The error of a failed spool operation, `what` it was.
fn spool_failed(what: &'static str) -> impl FnOnce(std::io::Error) -> ApiError {
    move |error| ApiError::from(StoreError::failed(what, error))
}
