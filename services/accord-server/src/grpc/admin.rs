//! `accord.v1.Admin`: figures, rebuild, verification, export and import.

use std::path::PathBuf;
use std::sync::Arc;

use accord_domain::ValidationError;
use accord_proto::recorded_event_to_wire;
use accord_proto::v1::{self, admin_server::Admin};
use accord_store::{ImportVerifier, RawRecord, StoreError, record_hash};
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status, Streaming};

use super::RpcResult;
use super::import_spool::Spool;
use crate::checkpoint_wire as checkpoint;
use crate::error::ApiError;
use crate::operations::Operations;

/// Records handed to the log per import step.
const IMPORT_CHUNK: usize = 10_000;

/// Serves `Admin`: figures, rebuild and verification from `Operations`
/// (which the console calls too), export and import here.
pub(crate) struct AdminApi {
    operations: Arc<Operations>,
    /// Where imports are spooled before they are written.
    spool_dir: PathBuf,
}

/// The metadata with which `ImportLog` accepts an export without a signed
/// checkpoint.
pub const ALLOW_UNSIGNED_METADATA: &str = "accord-allow-unsigned";

impl AdminApi {
    /// Returns the service over `operations`; imports are spooled in
    /// `spool_dir` (the data directory).
    pub(crate) fn new(operations: Arc<Operations>, spool_dir: PathBuf) -> Self {
        Self {
            operations,
            spool_dir,
        }
    }
}

#[tonic::async_trait]
impl Admin for AdminApi {
    async fn get_stats(
        &self,
        _request: Request<v1::GetStatsRequest>,
    ) -> RpcResult<v1::GetStatsResponse> {
        Ok(Response::new(self.operations.stats().await?))
    }

    type RebuildProjectionsStream = super::GrpcStream<v1::RebuildProgress>;

    async fn rebuild_projections(
        &self,
        request: Request<v1::RebuildProjectionsRequest>,
    ) -> RpcResult<Self::RebuildProjectionsStream> {
        Ok(Response::new(super::grpc_stream(
            self.operations.rebuild(&request.into_inner().names)?,
        )))
    }

    type VerifyLogStream = super::GrpcStream<v1::VerifyProgress>;

    async fn verify_log(
        &self,
        _request: Request<v1::VerifyLogRequest>,
    ) -> RpcResult<Self::VerifyLogStream> {
        Ok(Response::new(super::grpc_stream(self.operations.verify())))
    }

    type ExportLogStream = super::GrpcStream<v1::ExportedRecord>;

    async fn export_log(
        &self,
        request: Request<v1::ExportLogRequest>,
    ) -> RpcResult<Self::ExportLogStream> {
        let from = request.into_inner().from_position;
        Ok(Response::new(super::grpc_stream(
            self.operations.export(from),
        )))
    }

    async fn import_log(
        &self,
        request: Request<Streaming<v1::ExportedRecord>>,
    ) -> RpcResult<v1::ImportLogResponse> {
        let head = self.operations.log().head();
        if head != 0 {
            return Err(ApiError::FailedPrecondition(format!(
                "imports go into an empty log; this one has {head} events"
            ))
            .into());
        }
        let allow_unsigned = request
            .metadata()
            .get(ALLOW_UNSIGNED_METADATA)
            .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"true"));
        // Phase 1: the whole export is checked and spooled; nothing is written.
        let mut spool =
            Spool::create(&self.spool_dir).map_err(spool_failed("creating the import spool"))?;
        let mut verifier = ImportVerifier::default();
        let mut signed = None;
        let mut stream = request.into_inner();
        while let Some(exported) = stream.next().await {
            let exported = exported?;
            let position = exported.position;
            if let Some(at) = signed.as_ref().map(|(at, _)| *at) {
                return Err(ApiError::from(ValidationError::new(
                    format!("records[{}].checkpoint", at - 1),
                    "a checkpoint comes only on the last record of an export",
                ))
                .into());
            }
            let refuse = |why: String| -> Status {
                ApiError::from(ValidationError::new(
                    format!("records[{}]", position.saturating_sub(1)),
                    why,
                ))
                .into()
            };
            let record = RawRecord {
                position,
                bytes: exported.record,
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
        verifier
            .finish(
                signed.as_ref().map(|(_, checkpoint)| checkpoint),
                self.operations.keys(),
                allow_unsigned,
            )
            .map_err(ApiError::from)?;
        // Phase 2: the log takes it all or nothing.
        let records = spool.records();
        let source = spool
            .into_source(IMPORT_CHUNK)
            .map_err(spool_failed("reading the import spool"))?;
        let imported = self
            .operations
            .log()
            .import(Box::new(source))
            .await
            .map_err(ApiError::from)?;
        debug_assert_eq!(imported, records);
        Ok(Response::new(v1::ImportLogResponse {
            imported,
            head_position: self.operations.log().head(),
        }))
    }
}

/// The error of a failed spool operation, `what` it was.
fn spool_failed(what: &'static str) -> impl FnOnce(std::io::Error) -> ApiError {
    move |error| ApiError::from(StoreError::failed(what, error))
}
