//! A blocked Bloom filter over the 64-bit command hashes of one run: each
//! hash sets eight bits inside one 512-bit block, so a lookup touches one
//! cache line. Sixteen bits per entry give about 0.1 % false positives; a
//! false positive costs one page read, never a wrong answer (entries are
//! confirmed against the record).

/// Bits of one block.
const BLOCK_BITS: u64 = 512;
const BLOCK_BYTES: usize = (BLOCK_BITS / 8) as usize;
/// Bits set per hash.
const PROBES: u32 = 8;
/// Bits of filter per entry.
const BITS_PER_ENTRY: usize = 16;

/// The filter's bytes, a whole number of blocks.
#[derive(Clone)]
pub(crate) struct Bloom {
    bytes: Vec<u8>,
}

impl Bloom {
    /// An empty filter sized for `entries` hashes.
    pub(crate) fn with_entries(entries: usize) -> Self {
        let blocks = (entries * BITS_PER_ENTRY)
            .div_ceil(BLOCK_BITS as usize)
            .max(1);
        Self {
            bytes: vec![0; blocks * BLOCK_BYTES],
        }
    }

    /// A filter read back from its bytes; `None` unless they are whole blocks.
    pub(crate) fn from_bytes(bytes: Vec<u8>) -> Option<Self> {
        (!bytes.is_empty() && bytes.len().is_multiple_of(BLOCK_BYTES)).then_some(Self { bytes })
    }

    pub(crate) fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub(crate) fn insert(&mut self, hash: u64) {
        let (block, bits) = self.probes(hash);
        for bit in bits {
            self.bytes[block + (bit / 8) as usize] |= 1 << (bit % 8);
        }
    }

    pub(crate) fn may_contain(&self, hash: u64) -> bool {
        let (block, bits) = self.probes(hash);
        bits.into_iter()
            .all(|bit| self.bytes[block + (bit / 8) as usize] & (1 << (bit % 8)) != 0)
    }

    /// The block's first byte and the bits within it for `hash`.
    fn probes(&self, hash: u64) -> (usize, [u64; PROBES as usize]) {
        let blocks = (self.bytes.len() / BLOCK_BYTES) as u64;
        // The block from the hash's high bits (a multiply-shift range
        // reduction), the bits from a remix of it.
        let block = ((u128::from(hash) * u128::from(blocks)) >> 64) as usize * BLOCK_BYTES;
        let mut mixed = mix(hash);
        let mut bits = [0; PROBES as usize];
        for (index, bit) in bits.iter_mut().enumerate() {
            if index == 7 {
                mixed = mix(mixed);
            }
            *bit = mixed % BLOCK_BITS;
            mixed /= BLOCK_BITS;
        }
        (block, bits)
    }
}

/// SplitMix64's finalizer: every input bit affects every output bit.
fn mix(mut value: u64) -> u64 {
    value = (value ^ (value >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    value = (value ^ (value >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    value ^ (value >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_inserted_hash_is_found_and_few_others_are() {
        let entries = 20_000u64;
        let mut bloom = Bloom::with_entries(entries as usize);
        let hash = |value: u64| mix(value ^ 0x5555);
        for value in 0..entries {
            bloom.insert(hash(value));
        }
        assert!((0..entries).all(|value| bloom.may_contain(hash(value))));
        let false_positives = (entries..entries * 11)
            .filter(|value| bloom.may_contain(hash(*value)))
            .count();
        // 0.1 % expected; 0.5 % would mean the probes are not independent.
        assert!(
            false_positives < (entries as usize * 10) / 200,
            "{false_positives} false positives in {}",
            entries * 10
        );
        let copy = Bloom::from_bytes(bloom.as_bytes().to_vec()).expect("whole blocks");
        assert!(copy.may_contain(hash(7)));
        assert!(Bloom::from_bytes(vec![0; 63]).is_none());
    }
}
