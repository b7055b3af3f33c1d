//! What an operator does with a running server, whatever the transport:
//! the log's figures, a rebuild of the read models, a verification of the
//! log. gRPC's `Admin` and the console's operations view call these.

use std::sync::Arc;

use accord_domain::ValidationError;
use accord_projections::{PROJECTION_NAME, ReadModels, rebuild};
use accord_proto::v1;
use accord_store::{CheckpointKeys, EventLog, verify_log};

use crate::checkpoint_wire as checkpoint;
use crate::error::ApiError;
use crate::streams::{PROGRESS_BUFFER, ServerStream, spawn_stream};

/// The operations over one log and its read models.
pub(crate) struct Operations {
    log: Arc<dyn EventLog>,
    read_models: Arc<ReadModels>,
    /// The keys whose checkpoints verification accepts.
    keys: CheckpointKeys,
}

impl Operations {
    pub(crate) fn new(
        log: Arc<dyn EventLog>,
        read_models: Arc<ReadModels>,
        keys: CheckpointKeys,
    ) -> Self {
        Self {
            log,
            read_models,
            keys,
        }
    }

    /// The log.
    pub(crate) fn log(&self) -> &Arc<dyn EventLog> {
        &self.log
    }

    /// The keys whose checkpoints are accepted.
    pub(crate) fn keys(&self) -> &CheckpointKeys {
        &self.keys
    }
}

impl Operations {
    /// The log's figures and each projection's progress.
    pub(crate) async fn stats(&self) -> Result<v1::GetStatsResponse, ApiError> {
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
    pub(crate) fn rebuild(
        &self,
        names: &[String],
    ) -> Result<ServerStream<v1::RebuildProgress>, ApiError> {
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
    pub(crate) fn verify(&self) -> ServerStream<v1::VerifyProgress> {
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
}
