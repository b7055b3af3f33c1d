//! The log as a transparency log, whatever the transport: its latest
//! checkpoint signed as a C2SP note, and RFC 9162 inclusion and consistency
//! proofs from the Merkle tree the store keeps (`accord_store`'s tiles).
//! gRPC's `Transparency` calls it.

mod service;
mod witnessing;

use std::sync::Arc;

use accord_domain::ValidationError;
use accord_proto::v1;
use accord_store::{CheckpointKeys, EventLog};
use parking_lot::Mutex;

use crate::error::ApiError;
use crate::streams::{ServerStream, Slot, spawn_stream};
pub(crate) use service::TransparencyService;
pub(crate) use witnessing::{Cosigned, parse_witness, spawn as spawn_witnessing};

/// Most records in a proof bundle (versions 1 to this): about 1.6 KB each
/// with its proof.
pub(crate) const MAX_BUNDLE_EVENTS: usize = 1_000;
/// Most bytes of records in a proof bundle (at least one record): records
/// may be up to `--max-event-bytes` each.
pub(crate) const MAX_BUNDLE_BYTES: usize = 4 * 1024 * 1024;

/// Chunks of an entry bundle buffered ahead of its client (each at most
/// about one read of the log, 1 MiB).
const ENTRY_CHUNKS: usize = 2;

/// The transparency log over one event log.
pub(crate) struct Transparency {
    log: Arc<dyn EventLog>,
    keys: CheckpointKeys,
    /// The log's name: the checkpoint's origin line and its key name.
    origin: String,
    /// The last checkpoint signed, by tree size: a head that has not moved
    /// is not signed again, however often it is asked for.
    signed: Mutex<Option<(u64, String)>>,
    /// With witnesses: the latest checkpoint submitted, with their
    /// cosignatures (served instead of the bare one once there is one).
    cosigned: Option<Arc<Cosigned>>,
}

impl Transparency {
    pub(crate) fn new(
        log: Arc<dyn EventLog>,
        keys: CheckpointKeys,
        origin: String,
        cosigned: Option<Arc<Cosigned>>,
    ) -> Self {
        Self {
            log,
            keys,
            origin,
            signed: Mutex::new(None),
            cosigned,
        }
    }

    /// The head's checkpoint, signed (once per head).
    pub(crate) async fn signed_note(&self) -> Result<String, ApiError> {
        let size = self.log.head();
        if let Some((signed_size, note)) = self.signed.lock().as_ref()
            && *signed_size == size
        {
            return Ok(note.clone());
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
        Ok(note)
    }

    /// The width a tile of `level` has in the tree of the head's positions,
    /// if it has `index` (checked against `width` when a partial tile is
    /// asked for); `NotFound` otherwise.
    fn tile_width(&self, level: u8, index: u64, width: Option<usize>) -> Result<usize, ApiError> {
        if level > 63 {
            return Err(ApiError::NotFound(format!(
                "tile level {level}: levels go up to 63"
            )));
        }
        let nodes = self.log.head() >> (accord_tlog::TILE_HEIGHT * u32::from(level)).min(63);
        let have = nodes
            .saturating_sub(index.saturating_mul(accord_tlog::TILE_WIDTH as u64))
            .min(accord_tlog::TILE_WIDTH as u64) as usize;
        let wanted = width.unwrap_or(accord_tlog::TILE_WIDTH);
        if wanted == 0 || wanted > accord_tlog::TILE_WIDTH || have < wanted {
            return Err(ApiError::NotFound(format!(
                "tile {level}/{index} of width {wanted}: the tree has {have} of its hashes"
            )));
        }
        Ok(wanted)
    }

    /// The record at `position`, the leaf of its index.
    async fn leaf(&self, position: u64) -> Result<accord_store::RawRecord, ApiError> {
        self.log
            .read_raw(position, 1)
            .await?
            .into_iter()
            .next()
            .filter(|record| record.position == position)
            .ok_or_else(|| {
                ApiError::FailedPrecondition(format!(
                    "position {position} holds no record (a quarantined stream message): its leaf is the message as received, which this server does not serve"
                ))
            })
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
        if let Some((_, note)) = self
            .cosigned
            .as_ref()
            .and_then(|cosigned| cosigned.latest())
        {
            return Ok(v1::Checkpoint { note });
        }
        Ok(v1::Checkpoint {
            note: self.signed_note().await?,
        })
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
        let record = self.leaf(position).await?;
        let hashes = self.log.inclusion_proof(position - 1, size).await?;
        Ok(v1::InclusionProof {
            leaf_index: position - 1,
            tree_size: size,
            leaf: record.bytes.to_vec(),
            hashes: hashes.iter().map(|hash| hash.to_vec()).collect(),
        })
    }

    async fn bundle(&self, agreement_id: &str) -> Result<String, ApiError> {
        use base64::Engine as _;
        use base64::engine::general_purpose::STANDARD;
        accord_domain::validate_agreement_id(agreement_id)?;
        let note = self.checkpoint().await?.note;
        let size = accord_tlog::SignedNote::parse(&note)
            .ok()
            .and_then(|parsed| accord_tlog::Checkpoint::parse(&parsed.body).ok())
            .map(|checkpoint| checkpoint.size)
            .ok_or_else(|| {
                ApiError::Internal("the server's own checkpoint does not parse".into())
            })?;
        let positions = self
            .log
            .stream_positions(agreement_id, 1, MAX_BUNDLE_EVENTS)
            .await?;
        let mut entries = Vec::new();
        let mut bytes = 0;
        for (version, position) in (1u64..).zip(positions.into_iter().filter(|p| *p <= size)) {
            let leaf = self.leaf(position).await?;
            if !entries.is_empty() && bytes + leaf.bytes.len() > MAX_BUNDLE_BYTES {
                break;
            }
            bytes += leaf.bytes.len();
            let hashes = self.log.inclusion_proof(position - 1, size).await?;
            entries.push(serde_json::json!({
                "position": position,
                "version": version,
                "leaf": STANDARD.encode(&leaf.bytes),
                "hashes": hashes.iter().map(|hash| STANDARD.encode(hash)).collect::<Vec<_>>(),
            }));
        }
        if entries.is_empty() {
            return Err(accord_domain::DomainError::NotFound {
                agreement_id: format!("{agreement_id} (in the checkpoint of {size} entries)"),
            }
            .into());
        }
        let bundle = serde_json::json!({
            "agreement_id": agreement_id,
            "checkpoint": note,
            "entries": entries,
        });
        serde_json::to_string_pretty(&bundle).map_err(|error| ApiError::Internal(error.to_string()))
    }

    async fn tile(&self, level: u8, index: u64, width: Option<usize>) -> Result<Vec<u8>, ApiError> {
        let width = self.tile_width(level, index, width)?;
        Ok(self.log.tree_tile(level, index, width).await?.concat())
    }

    fn entries(
        &self,
        index: u64,
        width: Option<usize>,
        slot: Slot,
    ) -> Result<ServerStream<Vec<u8>>, ApiError> {
        let width = self.tile_width(0, index, width)? as u64;
        let log = self.log.clone();
        let first = index * accord_tlog::TILE_WIDTH as u64 + 1;
        let last = first + width - 1;
        Ok(spawn_stream(ENTRY_CHUNKS, move |out| async move {
            let _slot = slot;
            let mut next = first;
            while next <= last {
                let records = log.read_raw(next, (last + 1 - next) as usize).await?;
                let mut chunk = Vec::new();
                for record in records.iter().filter(|record| record.position <= last) {
                    if record.position != next {
                        return Err(ApiError::FailedPrecondition(format!(
                            "position {next} holds no record (a quarantined stream message): the bundle cannot carry its leaf"
                        )));
                    }
                    let length = u16::try_from(record.bytes.len()).map_err(|_| {
                        ApiError::FailedPrecondition(format!(
                            "the record at position {next} is {} bytes, more than an entry bundle's 65,535",
                            record.bytes.len()
                        ))
                    })?;
                    chunk.extend_from_slice(&length.to_be_bytes());
                    chunk.extend_from_slice(&record.bytes);
                    next += 1;
                }
                if chunk.is_empty() {
                    return Err(ApiError::Internal(format!(
                        "the log gave no record at position {next}"
                    )));
                }
                if !out.send(chunk).await {
                    return Ok(());
                }
            }
            Ok(())
        }))
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
