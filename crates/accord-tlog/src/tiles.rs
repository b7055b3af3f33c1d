//! The tree kept as C2SP `tlog-tiles` tiles: a tile at level `L` holds the
//! hashes of up to 256 consecutive nodes at tree height `8·L` (level 0: leaf
//! hashes). A full tile never changes; the last tile of each level grows
//! until it is full. [`Frontier`] holds those last, partial tiles: appending
//! leaves costs O(log n) hashing and writes the tiles that changed, and the
//! root comes from the frontier alone.

use crate::hash::{Hash, node_hash};

/// Tree levels per tile.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile.
pub const TILE_WIDTH: usize = 1 << TILE_HEIGHT;

/// A tile: its level and its index within the level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TileId {
    /// Tile level: its hashes are nodes at tree height `8 · level`.
    pub level: u8,
    /// Which tile of the level: its first hash is node `256 · index`.
    pub index: u64,
}

impl TileId {
    /// Where the perfect subtree of height `height` and index `index` is
    /// found: the tile, the offset of its first hash there, and the tree
    /// levels to hash up from that tile's hashes (`2^up` of them).
    pub fn of_subtree(height: u32, index: u64) -> (TileId, usize, u32) {
        let level = height / TILE_HEIGHT;
        let up = height % TILE_HEIGHT;
        let first = index << up;
        (
            TileId {
                level: level as u8,
                index: first / TILE_WIDTH as u64,
            },
            (first % TILE_WIDTH as u64) as usize,
            up,
        )
    }

    /// Hashes of this tile a tree of `size` leaves has complete: 256 for a
    /// tile the tree has filled, fewer for its last one, 0 beyond it.
    pub fn width_in(&self, size: u64) -> usize {
        let nodes = size >> (TILE_HEIGHT * u32::from(self.level));
        let before = self.index.saturating_mul(TILE_WIDTH as u64);
        nodes.saturating_sub(before).min(TILE_WIDTH as u64) as usize
    }
}

/// The hash of `2^up` consecutive hashes of one level, hashed up `up` levels.
pub fn hash_up(hashes: &[Hash], up: u32) -> Hash {
    debug_assert_eq!(hashes.len(), 1 << up);
    let mut layer = hashes.to_vec();
    while layer.len() > 1 {
        layer = layer
            .chunks(2)
            .map(|pair| node_hash(&pair[0], &pair[1]))
            .collect();
    }
    layer[0]
}

/// What an append asks to store of one tile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TileWrite {
    /// The tile.
    pub id: TileId,
    /// Where `hashes` start in the tile (0 for a full tile).
    pub start: usize,
    /// The hashes from `start` on: the whole tile when `full`, else the
    /// ones this append added to the level's last tile.
    pub hashes: Vec<Hash>,
    /// Whether the tile is full (it never changes again).
    pub full: bool,
}

/// The right edge of a tiled tree: the last tile of every level, which
/// holds fewer than 256 hashes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    /// `partial[L]`: the hashes of level `L`'s last tile (fewer than 256).
    partial: Vec<Vec<Hash>>,
}

impl Frontier {
    /// The frontier of a tree of `size` leaves, from its stored tiles:
    /// `tile` gives the hashes of a tile (at least its width in the tree).
    pub fn load<E>(
        size: u64,
        mut tile: impl FnMut(TileId) -> Result<Vec<Hash>, E>,
    ) -> Result<Self, E> {
        let mut partial = Vec::new();
        let mut level = 0u8;
        while size >> (TILE_HEIGHT * u32::from(level)) > 0 {
            let nodes = size >> (TILE_HEIGHT * u32::from(level));
            let width = (nodes % TILE_WIDTH as u64) as usize;
            let mut hashes = Vec::new();
            if width > 0 {
                hashes = tile(TileId {
                    level,
                    index: nodes / TILE_WIDTH as u64,
                })?;
                hashes.truncate(width);
            }
            partial.push(hashes);
            level += 1;
        }
        Ok(Self { size, partial })
    }

    /// Leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf (its leaf hash), reporting nothing: for those who
    /// only want the root (a verification that rebuilds the tree).
    pub fn push(&mut self, leaf: Hash) {
        self.add(leaf, &mut |_, _| {}, &mut |_| {});
    }

    /// Appends leaves (their leaf hashes); returns what to store: each tile
    /// they fill, whole, and for each level's last tile the hashes they
    /// added to it (from where it stood; all of it when it is new).
    pub fn append(&mut self, leaves: &[Hash]) -> Vec<TileWrite> {
        let mut writes: Vec<TileWrite> = Vec::new();
        // Each level's last tile as the call began: which, and how wide.
        let before: Vec<(u64, usize)> = (0..self.partial.len())
            .map(|level| (self.last_tile_index(level as u8), self.partial[level].len()))
            .collect();
        let mut touched: Vec<u8> = Vec::new();
        for leaf in leaves {
            self.add(
                *leaf,
                &mut |id, hashes| {
                    writes.push(TileWrite {
                        id,
                        start: 0,
                        hashes,
                        full: true,
                    })
                },
                &mut |level| {
                    if !touched.contains(&level) {
                        touched.push(level);
                    }
                },
            );
        }
        for level in touched {
            let hashes = &self.partial[usize::from(level)];
            if hashes.is_empty() {
                continue;
            }
            let index = self.last_tile_index(level);
            let start = match before.get(usize::from(level)) {
                Some(&(was, width)) if was == index => width,
                _ => 0,
            };
            writes.push(TileWrite {
                id: TileId { level, index },
                start,
                hashes: hashes[start..].to_vec(),
                full: false,
            });
        }
        writes
    }

    /// The index of level `level`'s last (partial) tile.
    fn last_tile_index(&self, level: u8) -> u64 {
        (self.size >> (TILE_HEIGHT * u32::from(level))) / TILE_WIDTH as u64
    }

    /// Adds a leaf: `full` gets each tile it fills, `touched` each level
    /// whose last tile it changes.
    fn add(
        &mut self,
        leaf: Hash,
        full: &mut impl FnMut(TileId, Vec<Hash>),
        touched: &mut impl FnMut(u8),
    ) {
        let mut hash = leaf;
        let mut level = 0usize;
        loop {
            if self.partial.len() == level {
                self.partial.push(Vec::new());
            }
            let nodes_before = self.size >> (TILE_HEIGHT * level as u32);
            self.partial[level].push(hash);
            touched(level as u8);
            if self.partial[level].len() < TILE_WIDTH {
                break;
            }
            // The tile is full: written once, and its root goes up.
            let tile = std::mem::take(&mut self.partial[level]);
            hash = hash_up(&tile, TILE_HEIGHT);
            full(
                TileId {
                    level: level as u8,
                    index: nodes_before / TILE_WIDTH as u64,
                },
                tile,
            );
            level += 1;
        }
        self.size += 1;
    }

    /// The root of the tree (RFC 9162's MTH), from the frontier alone.
    pub fn root(&self) -> Hash {
        // The perfect subtrees the tree is made of, left to right: each
        // level's partial tile, from the top level down, split by the binary
        // digits of its width.
        let mut parts = Vec::new();
        for hashes in self.partial.iter().rev() {
            let mut at = 0;
            let mut width = hashes.len();
            while width > 0 {
                let up = usize::BITS - 1 - width.leading_zeros();
                let span = 1usize << up;
                parts.push(hash_up(&hashes[at..at + span], up));
                at += span;
                width -= span;
            }
        }
        let mut root = match parts.pop() {
            Some(hash) => hash,
            None => return crate::EMPTY_ROOT,
        };
        while let Some(left) = parts.pop() {
            root = node_hash(&left, &root);
        }
        root
    }
}
