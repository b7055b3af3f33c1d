//! The log as a transparency log, whatever the transport: its latest
//! checkpoint signed as a C2SP note, and RFC 9162 inclusion and consistency
//! proofs from the Merkle tree the store keeps (`accord_store`'s tiles).
//! gRPC's `Transparency` calls it.

mod service;

use std::sync::Arc;

use accord_domain::ValidationError;
use accord_proto::v1;
use accord_store::{CheckpointKeys, EventLog};
use parking_lot::Mutex;

use crate::error::ApiError;
pub(crate) use service::TransparencyService;

/// The transparency log over one event log.
pub(crate) struct Transparency {
    log: Arc<dyn EventLog>,
    keys: CheckpointKeys,
    /// The log's name: the checkpoint's origin line and its key name.
    origin: String,
    /// The last checkpoint signed, by tree size: a head that has not moved
    /// is not signed again, however often it is asked for.
    signed: Mutex<Option<(u64, String)>>,
}

impl Transparency {
    pub(crate) fn new(log: Arc<dyn EventLog>, keys: CheckpointKeys, origin: String) -> Self {
        Self {
            log,
            keys,
            origin,
            signed: Mutex::new(None),
        }
    }

    /// `asked`, or the latest checkpoint's size when 0; refused beyond it.
    fn tree_size(&self, field: &str, asked: u64) -> Result<u64, ApiError> {
        let head = self.log.head();
        match asked {
            0 => Ok(head),
            size if size > head => Err(ValidationError::new(
                field,
                format!("{size} is beyond the latest checkpoint's tree size, {head}"),
            )
            .into()),
            size => Ok(size),
        }
    }
}

/// The log's name when `--log-origin` gives none: `accord/<host name>`.
pub(crate) fn default_origin() -> String {
    let host = rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned();
    format!(
        "accord/{}",
        if host.is_empty() { "localhost" } else { &host }
    )
}

/// Checks a log origin: one line, no space, no `+` (a signed note's key
/// name).
pub(crate) fn check_origin(origin: &str) -> Result<(), String> {
    if origin.is_empty()
        || origin.len() > 256
        || origin
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '+')
    {
        return Err(format!(
            "--log-origin {origin:?}: a log origin is 1 to 256 characters with no space, control character or '+', like accord/example.org"
        ));
    }
    Ok(())
}

#[async_trait::async_trait]
impl TransparencyService for Transparency {
    async fn checkpoint(&self) -> Result<v1::Checkpoint, ApiError> {
        let size = self.log.head();
        if let Some((signed_size, note)) = self.signed.lock().as_ref()
            && *signed_size == size
        {
            return Ok(v1::Checkpoint { note: note.clone() });
        }
        let root = self.log.tree_root(size).await?;
        let note = self.keys.sign_tree_head(
            &accord_tlog::Checkpoint {
                origin: self.origin.clone(),
                size,
                root,
            },
            &self.origin,
        );
        let mut signed = self.signed.lock();
        if signed.as_ref().is_none_or(|(at, _)| *at < size) {
            *signed = Some((size, note.clone()));
        }
        Ok(v1::Checkpoint { note })
    }

    async fn inclusion_proof(
        &self,
        request: v1::GetInclusionProofRequest,
    ) -> Result<v1::InclusionProof, ApiError> {
        let size = self.tree_size("tree_size", request.tree_size)?;
        let position = request.position;
        if position == 0 || position > size {
            return Err(ValidationError::new(
                "position",
                format!("{position} is not a position of the tree of size {size} (1 to {size})"),
            )
            .into());
        }
        let record = self
            .log
            .read_raw(position, 1)
            .await?
            .into_iter()
            .next()
            .filter(|record| record.position == position)
            .ok_or_else(|| {
                ApiError::FailedPrecondition(format!(
                    "position {position} holds no record (a quarantined stream message): its leaf is the message as received, which this server does not serve"
                ))
            })?;
        let hashes = self.log.inclusion_proof(position - 1, size).await?;
        Ok(v1::InclusionProof {
            leaf_index: position - 1,
            tree_size: size,
            leaf: record.bytes.to_vec(),
            hashes: hashes.iter().map(|hash| hash.to_vec()).collect(),
        })
    }

    async fn consistency_proof(
        &self,
        request: v1::GetConsistencyProofRequest,
    ) -> Result<v1::ConsistencyProof, ApiError> {
        let second = self.tree_size("second_size", request.second_size)?;
        let first = request.first_size;
        if first > second {
            return Err(ValidationError::new(
                "first_size",
                format!("{first} is beyond second_size {second}: a tree is consistent only with a larger one"),
            )
            .into());
        }
        let hashes = self.log.consistency_proof(first, second).await?;
        Ok(v1::ConsistencyProof {
            first_size: first,
            second_size: second,
            hashes: hashes.iter().map(|hash| hash.to_vec()).collect(),
        })
    }
}
