//! Inclusion and consistency proofs (RFC 9162 sections 2.1.3.1 and
//! 2.1.4.1), drawn from any source of perfect-subtree hashes: the log's
//! tiles on a server, a list of leaves in a test.

use crate::hash::{Hash, node_hash};

/// Where proofs get their hashes: the hash of the perfect subtree of height
/// `level` whose leaves are `index · 2^level .. (index + 1) · 2^level`.
/// Proofs ask only for subtrees inside the tree they are about.
pub trait SubtreeHashes {
    /// Why a hash could not be read.
    type Error;

    /// The hash of perfect subtree `index` at height `level`.
    fn subtree(&self, level: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// The largest power of two smaller than `n` (`n` ≥ 2).
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// MTH(D[start..end]) for a range whose start is aligned to the largest
/// power of two not above its length, as every range of RFC 9162's
/// recursions is: the perfect subtrees it is made of, folded from the right.
pub fn range_hash<S: SubtreeHashes + ?Sized>(
    source: &S,
    start: u64,
    end: u64,
) -> Result<Hash, S::Error> {
    debug_assert!(start < end);
    let mut parts = Vec::new();
    let mut at = start;
    while at < end {
        let left = end - at;
        let mut level = 63 - left.leading_zeros();
        // Aligned: the subtree must start at a multiple of its width.
        while !at.is_multiple_of(1u64 << level) {
            level -= 1;
        }
        parts.push(source.subtree(level, at >> level)?);
        at += 1 << level;
    }
    let mut hash = parts.pop().unwrap_or(crate::EMPTY_ROOT);
    while let Some(left) = parts.pop() {
        hash = node_hash(&left, &hash);
    }
    Ok(hash)
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves
/// (`index < size`): PATH(index, D[0..size]), from the leaf up.
pub fn inclusion_proof<S: SubtreeHashes + ?Sized>(
    source: &S,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, S::Error> {
    debug_assert!(index < size);
    let mut proof = Vec::new();
    path(source, index, 0, size, &mut proof)?;
    Ok(proof)
}

fn path<S: SubtreeHashes + ?Sized>(
    source: &S,
    index: u64,
    start: u64,
    end: u64,
    proof: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    if end - start <= 1 {
        return Ok(());
    }
    let k = split(end - start);
    if index < k {
        path(source, index, start, start + k, proof)?;
        proof.push(range_hash(source, start + k, end)?);
    } else {
        path(source, index - k, start + k, end, proof)?;
        proof.push(range_hash(source, start, start + k)?);
    }
    Ok(())
}

/// The consistency proof from the tree of `first` leaves to the tree of
/// `second` (`first ≤ second`): PROOF(first, D[0..second]); empty when
/// `first` is 0 or equals `second`.
pub fn consistency_proof<S: SubtreeHashes + ?Sized>(
    source: &S,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, S::Error> {
    debug_assert!(first <= second);
    let mut proof = Vec::new();
    if first > 0 && first < second {
        subproof(source, first, 0, second, true, &mut proof)?;
    }
    Ok(proof)
}

fn subproof<S: SubtreeHashes + ?Sized>(
    source: &S,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    proof: &mut Vec<Hash>,
) -> Result<(), S::Error> {
    let n = end - start;
    if m == n {
        if !whole {
            proof.push(range_hash(source, start, end)?);
        }
        return Ok(());
    }
    let k = split(n);
    if m <= k {
        subproof(source, m, start, start + k, whole, proof)?;
        proof.push(range_hash(source, start + k, end)?);
    } else {
        subproof(source, m - k, start + k, end, false, proof)?;
        proof.push(range_hash(source, start, start + k)?);
    }
    Ok(())
}

/// Leaf hashes held in memory, as a source of subtree hashes (tests, and
/// clients that hold a whole small tree).
impl SubtreeHashes for [Hash] {
    type Error = std::convert::Infallible;

    fn subtree(&self, level: u32, index: u64) -> Result<Hash, Self::Error> {
        let width = 1usize << level;
        let start = index as usize * width;
        let mut layer: Vec<Hash> = self[start..start + width].to_vec();
        while layer.len() > 1 {
            layer = layer
                .chunks(2)
                .map(|pair| node_hash(&pair[0], &pair[1]))
                .collect();
        }
        Ok(layer[0])
    }
}
