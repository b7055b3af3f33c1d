//! The tree, its tiles and its proofs against RFC 9162 section 2.1 written
//! out literally (`rfc9162-oracle`: recursive MTH, PATH and PROOF over the
//! leaves), an implementation independent of the one under test; and the
//! verifiers refuse every tampered proof.

use std::collections::HashMap;

use accord_tlog::tiles::hash_up;
use accord_tlog::{
    Frontier, Hash, SubtreeHashes, TILE_WIDTH, TileId, consistency_proof, inclusion_proof,
    leaf_hash, verify_consistency, verify_inclusion,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

use rfc9162_oracle::{mth, path};

fn sha(parts: &[&[u8]]) -> Hash {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// SUBPROOF(m, D[n], true) as the oracle gives it (PROOF, for 0 < m < n).
fn subproof(m: usize, leaves: &[Vec<u8>], _whole: bool) -> Vec<Hash> {
    rfc9162_oracle::proof(m, leaves)
}

fn leaves(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|index| format!("record {index}").into_bytes())
        .collect()
}

/// Tiles as a server stores them: every tile `Frontier::append` wrote, the
/// latest version of each.
#[derive(Default)]
struct Tiles(HashMap<TileId, Vec<Hash>>);

impl SubtreeHashes for Tiles {
    type Error = String;

    fn subtree(&self, level: u32, index: u64) -> Result<Hash, String> {
        let (tile, offset, up) = TileId::of_subtree(level, index);
        let hashes = self.0.get(&tile).ok_or(format!("no tile {tile:?}"))?;
        let span = 1usize << up;
        let slice = hashes
            .get(offset..offset + span)
            .ok_or(format!("tile {tile:?} is too short"))?;
        Ok(hash_up(slice, up))
    }
}

/// A tiled tree of `data`, appended in chunks of `chunk` leaves; the root
/// after each chunk.
fn tiled(data: &[Vec<u8>], chunk: usize) -> (Tiles, Frontier, Vec<(u64, Hash)>) {
    let mut tiles = Tiles::default();
    let mut frontier = Frontier::default();
    let mut roots = Vec::new();
    for part in data.chunks(chunk.max(1)) {
        let hashes: Vec<Hash> = part.iter().map(|leaf| leaf_hash(leaf)).collect();
        for write in frontier.append(&hashes) {
            let stored = tiles.0.entry(write.id).or_default();
            if write.full {
                assert_eq!(write.hashes.len(), TILE_WIDTH);
                assert!(
                    write.hashes.starts_with(stored),
                    "a tile only grows: {:?} changed what it held",
                    write.id
                );
                *stored = write.hashes;
            } else {
                assert_eq!(
                    write.start,
                    stored.len(),
                    "a partial write continues its tile: {:?}",
                    write.id
                );
                stored.extend(write.hashes);
            }
        }
        roots.push((frontier.size(), frontier.root()));
    }
    (tiles, frontier, roots)
}

#[test]
fn roots_match_the_definition_at_every_size_across_tile_boundaries() {
    let data = leaves(1_100);
    let (_, _, roots) = tiled(&data, 1);
    for (size, root) in roots {
        assert_eq!(root, mth(&data[..size as usize]), "size {size}");
    }
    assert_eq!(Frontier::default().root(), sha(&[]));
}

#[test]
fn a_frontier_loaded_from_its_tiles_continues_the_same_tree() {
    let data = leaves(70_000);
    let (tiles, frontier, _) = tiled(&data[..66_000], 977);
    let mut loaded = Frontier::load(frontier.size(), |tile| {
        tiles.0.get(&tile).cloned().ok_or(tile)
    })
    .expect("every partial tile is stored");
    assert_eq!(loaded, frontier);
    let rest: Vec<Hash> = data[66_000..].iter().map(|leaf| leaf_hash(leaf)).collect();
    loaded.append(&rest);
    assert_eq!(loaded.root(), mth(&data));
}

#[test]
fn proofs_from_tiles_are_the_definitions_proofs_and_verify() {
    let data = leaves(600);
    let (tiles, _, _) = tiled(&data, 37);
    for size in [1usize, 2, 3, 7, 8, 255, 256, 257, 511, 512, 513, 600] {
        let root = mth(&data[..size]);
        for index in (0..size).step_by(size / 9 + 1).chain([size - 1]) {
            let proof = inclusion_proof(&tiles, index as u64, size as u64).expect("proof");
            assert_eq!(proof, path(index, &data[..size]), "PATH({index}, {size})");
            verify_inclusion(
                &leaf_hash(&data[index]),
                index as u64,
                size as u64,
                &proof,
                &root,
            )
            .expect("verifies");
        }
        for first in [1usize, 2, 3, 4, 100, 255, 256, 257, size] {
            if first > size {
                continue;
            }
            let proof = consistency_proof(&tiles, first as u64, size as u64).expect("proof");
            let expected = if first == size {
                Vec::new()
            } else {
                subproof(first, &data[..size], true)
            };
            assert_eq!(proof, expected, "PROOF({first}, {size})");
            verify_consistency(
                first as u64,
                size as u64,
                &mth(&data[..first]),
                &root,
                &proof,
            )
            .expect("verifies");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Any change to a proof, its leaf, its index or its root is refused.
    #[test]
    fn tampered_inclusion_proofs_are_refused(size in 2usize..300, index in 0usize..300, flip in 0usize..64) {
        let index = index % size;
        let data = leaves(size);
        let hashes: Vec<Hash> = data.iter().map(|leaf| leaf_hash(leaf)).collect();
        let root = mth(&data);
        let proof = inclusion_proof(hashes.as_slice(), index as u64, size as u64).expect("proof");
        let leaf = hashes[index];
        prop_assert!(verify_inclusion(&leaf, index as u64, size as u64, &proof, &root).is_ok());
        let mut bad = proof.clone();
        if !bad.is_empty() {
            let at = flip % bad.len();
            bad[at][flip % 32] ^= 1;
            prop_assert!(verify_inclusion(&leaf, index as u64, size as u64, &bad, &root).is_err());
            bad = proof.clone();
            bad.pop();
            prop_assert!(verify_inclusion(&leaf, index as u64, size as u64, &bad, &root).is_err());
        }
        let mut longer = proof.clone();
        longer.push(root);
        prop_assert!(verify_inclusion(&leaf, index as u64, size as u64, &longer, &root).is_err());
        let other = hashes[(index + 1) % size];
        prop_assert!(verify_inclusion(&other, index as u64, size as u64, &proof, &root).is_err());
        prop_assert!(verify_inclusion(&leaf, (index as u64 + 1) % size as u64, size as u64, &proof, &root).is_err()
            || hashes[(index + 1) % size] == leaf);
        prop_assert!(verify_inclusion(&leaf, size as u64, size as u64, &proof, &root).is_err());
    }

    /// A consistency proof holds only between a tree and its own extension.
    #[test]
    fn tampered_consistency_proofs_are_refused(second in 2usize..300, first in 1usize..300, flip in 0usize..64) {
        let first = 1 + first % (second - 1);
        let data = leaves(second);
        let hashes: Vec<Hash> = data.iter().map(|leaf| leaf_hash(leaf)).collect();
        let (old, new) = (mth(&data[..first]), mth(&data));
        let proof = consistency_proof(hashes.as_slice(), first as u64, second as u64).expect("proof");
        prop_assert!(verify_consistency(first as u64, second as u64, &old, &new, &proof).is_ok());
        let mut bad = proof.clone();
        let at = flip % bad.len();
        bad[at][flip % 32] ^= 1;
        prop_assert!(verify_consistency(first as u64, second as u64, &old, &new, &bad).is_err());
        // A rewritten history: the same size, another leaf.
        let mut forged = data.clone();
        forged[flip % first] = b"rewritten".to_vec();
        prop_assert!(verify_consistency(first as u64, second as u64, &mth(&forged[..first]), &new, &proof).is_err());
        prop_assert!(verify_consistency(second as u64, first as u64, &new, &old, &proof).is_err());
    }
}
