//! The log's Merkle tree (RFC 9162, see `accord_tlog`) kept in the log
//! tree as C2SP tiles, written by the same atomic batch as the records they
//! cover:
//!
//! - `t` + level (u8) + index (u64 BE) -> the tile's hashes, 32 bytes each
//!   (a level's last tile is rewritten as it grows); the last tile of
//!   level 0 says how many positions the tree covers
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

/// The stored hashes of tile `id`, if it exists.
pub(crate) fn read_tile(tree: &::sled::Tree, id: TileId) -> Result<Option<Vec<Hash>>, StoreError> {
    tree.get(tile_key(id))?
        .map(|bytes| decode_tile(id, &bytes))
        .transpose()
}

/// Appends `leaves` to `frontier` and stages the tiles that changed into
/// `batch`; returns the keys staged.
pub(crate) fn stage(batch: &mut ::sled::Batch, frontier: &mut Frontier, leaves: &[Hash]) -> usize {
    if leaves.is_empty() {
        return 0;
    }
    let tiles = frontier.append(leaves);
    let written = tiles.len();
    for (id, hashes) in tiles {
        batch.insert(&tile_key(id)[..], hashes.concat());
    }
    written
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
        stage(&mut batch, &mut frontier, &leaves);
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
    let index = keys::decode_u64(key.get(2..).unwrap_or_default())
        .ok_or_else(|| StoreError::Corrupt("malformed tile key".into()))?;
    let id = TileId { level: 0, index };
    let width = decode_tile(id, &value)?.len() as u64;
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
