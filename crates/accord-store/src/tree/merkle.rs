//! The log's Merkle tree (RFC 9162, see `accord_tlog`) kept in the log
//! tree as C2SP tiles, written by the same atomic batch as the records they
//! cover:
//!
//! - `t` + level (u8) + index (u64 BE) -> a full tile's 256 hashes, 32
//!   bytes each, written once
//! - `t` + level + index + start (u16 BE) -> a fragment of a level's last
//!   tile: the hashes one write added from `start` on. A group commit adds
//!   its hashes (32 bytes an event), not the whole tile again; when the tile
//!   fills, it is written whole and its fragments removed, in one batch.
//!
//! The last tile of level 0 says how many positions the tree covers.
//!
//! Leaf `p - 1` is the record at position `p` as stored (as `ExportLog`
//! gives it), or on a NATS replica a quarantined message as received.
//! Every write of the log stages its leaves here, so the sled log, imports
//! and every NATS node derive the same tiles from the same positions. A log
//! written before the tree existed gets its tiles at open.

use accord_tlog::{
    Frontier, Hash, SubtreeHashes, TileId, consistency_proof, inclusion_proof, leaf_hash,
    range_hash,
};

use super::blocks::block_at;
use super::keys;
use crate::StoreError;

/// Prefix of tile keys.
pub(crate) const TILE: u8 = b't';
/// Leaves hashed per batch when tiles are built at open.
const BUILD_CHUNK: u64 = 65_536;

fn tile_key(id: TileId) -> [u8; 10] {
    let mut key = [TILE; 10];
    key[1] = id.level;
    key[2..].copy_from_slice(&id.index.to_be_bytes());
    key
}

fn fragment_key(id: TileId, start: usize) -> [u8; 12] {
    let mut key = [TILE; 12];
    key[..10].copy_from_slice(&tile_key(id));
    key[10..].copy_from_slice(&(start as u16).to_be_bytes());
    key
}

fn fragment_start(key: &[u8]) -> Option<usize> {
    let bytes: [u8; 2] = key.get(10..12)?.try_into().ok()?;
    Some(usize::from(u16::from_be_bytes(bytes)))
}

fn decode_tile(id: TileId, bytes: &[u8]) -> Result<Vec<Hash>, StoreError> {
    if !bytes.len().is_multiple_of(32) || bytes.len() > 32 * accord_tlog::TILE_WIDTH {
        return Err(StoreError::Corrupt(format!(
            "tile {}/{} holds {} bytes, not a whole number of hashes",
            id.level,
            id.index,
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|hash| hash.try_into().unwrap_or([0; 32]))
        .collect())
}

/// The stored hashes of tile `id` (a full tile, or its fragments joined),
/// if it exists.
pub(crate) fn read_tile(tree: &::sled::Tree, id: TileId) -> Result<Option<Vec<Hash>>, StoreError> {
    if let Some(bytes) = tree.get(tile_key(id))? {
        return decode_tile(id, &bytes).map(Some);
    }
    let mut hashes = Vec::new();
    for entry in tree.scan_prefix(tile_key(id)) {
        let (key, value) = entry?;
        if fragment_start(&key) != Some(hashes.len()) {
            return Err(StoreError::Corrupt(format!(
                "tile {}/{}: a fragment does not continue the ones before it",
                id.level, id.index
            )));
        }
        hashes.extend(decode_tile(id, &value)?);
    }
    Ok((!hashes.is_empty()).then_some(hashes))
}

/// Appends `leaves` to `frontier` and stages into `batch` what changed:
/// the tiles they fill, whole (their fragments in `tree` removed), and a
/// fragment of each level's last tile; returns the keys staged.
pub(crate) fn stage(
    tree: &::sled::Tree,
    batch: &mut ::sled::Batch,
    frontier: &mut Frontier,
    leaves: &[Hash],
) -> Result<usize, StoreError> {
    if leaves.is_empty() {
        return Ok(0);
    }
    let mut written = 0;
    for write in frontier.append(leaves) {
        if write.full {
            for key in tree.scan_prefix(tile_key(write.id)).keys() {
                batch.remove(key?);
                written += 1;
            }
            batch.insert(&tile_key(write.id)[..], write.hashes.concat());
        } else {
            batch.insert(
                &fragment_key(write.id, write.start)[..],
                write.hashes.concat(),
            );
        }
        written += 1;
    }
    Ok(written)
}

/// The frontier of the tree over the log's first `positions` positions:
/// loaded from the tiles, after building the tiles the log lacks (a log
/// written before the tree existed, or one whose tiles were removed).
pub(crate) fn recover_frontier(
    tree: &::sled::Tree,
    positions: u64,
) -> Result<Frontier, StoreError> {
    let size = stored_size(tree)?;
    if size > positions {
        return Err(StoreError::Corrupt(format!(
            "the Merkle tree covers {size} positions, the log holds {positions}"
        )));
    }
    let mut frontier = Frontier::load(size, |id| {
        read_tile(tree, id)?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "tile {}/{} of the Merkle tree is missing",
                id.level, id.index
            ))
        })
    })?;
    if size < positions {
        tracing::info!(
            from = size,
            to = positions,
            "building the Merkle tree's tiles of the log"
        );
    }
    while frontier.size() < positions {
        let from = frontier.size() + 1;
        let to = positions.min(frontier.size() + BUILD_CHUNK);
        let leaves = leaves_between(tree, from, to)?;
        let mut batch = ::sled::Batch::default();
        stage(tree, &mut batch, &mut frontier, &leaves)?;
        tree.apply_batch(batch)?;
    }
    Ok(frontier)
}

/// How many leaves the stored tiles cover: the last tile of level 0 ends
/// at the last leaf.
fn stored_size(tree: &::sled::Tree) -> Result<u64, StoreError> {
    let Some((key, value)) = tree.scan_prefix([TILE, 0]).next_back().transpose()? else {
        return Ok(0);
    };
    let index = keys::decode_u64(key.get(2..10).unwrap_or_default())
        .ok_or_else(|| StoreError::Corrupt("malformed tile key".into()))?;
    let id = TileId { level: 0, index };
    let start = fragment_start(&key).unwrap_or(0);
    let width = (start + decode_tile(id, &value)?.len()) as u64;
    Ok(index * accord_tlog::TILE_WIDTH as u64 + width)
}

/// The leaf hashes of positions `from..=to`: each record's bytes, or a
/// quarantined message's.
fn leaves_between(tree: &::sled::Tree, from: u64, to: u64) -> Result<Vec<Hash>, StoreError> {
    let mut leaves = Vec::with_capacity((to + 1 - from) as usize);
    let mut position = from;
    while position <= to {
        match block_at(tree, position)? {
            Some(block) if block.get(position)?.is_some() => {
                for record in block.records() {
                    let (at, bytes) = record?;
                    if at >= position && at <= to {
                        if at != position {
                            break;
                        }
                        leaves.push(leaf_hash(bytes));
                        position += 1;
                    }
                }
            }
            _ => {
                let entry = tree.get(keys::quarantine_key(position))?.ok_or_else(|| {
                    StoreError::Corrupt(format!(
                        "position {position} is neither a record nor a quarantined message"
                    ))
                })?;
                leaves.push(leaf_hash(keys::quarantined_payload(&entry)));
                position += 1;
            }
        }
    }
    Ok(leaves)
}

/// The tiles of a log tree, as the source of a proof's hashes.
struct Tiles<'a>(&'a ::sled::Tree);

impl SubtreeHashes for Tiles<'_> {
    type Error = StoreError;

    fn subtree(&self, level: u32, index: u64) -> Result<Hash, StoreError> {
        let (id, offset, up) = TileId::of_subtree(level, index);
        let hashes = read_tile(self.0, id)?.unwrap_or_default();
        let span = 1usize << up;
        let slice = hashes.get(offset..offset + span).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "tile {}/{} lacks the hashes of subtree {index} at height {level}",
                id.level, id.index
            ))
        })?;
        Ok(accord_tlog::tiles::hash_up(slice, up))
    }
}

/// The root of the tree of the log's first `size` positions (stored).
pub(crate) fn root(tree: &::sled::Tree, size: u64) -> Result<Hash, StoreError> {
    if size == 0 {
        return Ok(accord_tlog::EMPTY_ROOT);
    }
    range_hash(&Tiles(tree), 0, size)
}

/// The inclusion proof of leaf `index` in the tree of `size` positions.
pub(crate) fn prove_inclusion(
    tree: &::sled::Tree,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, StoreError> {
    inclusion_proof(&Tiles(tree), index, size)
}

/// The consistency proof from the tree of `first` positions to `second`.
pub(crate) fn prove_consistency(
    tree: &::sled::Tree,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, StoreError> {
    consistency_proof(&Tiles(tree), first, second)
}
