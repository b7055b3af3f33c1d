//! The log's continuity, in one place: records follow each other position
//! after position, and each carries the hash of the one before it (the
//! first carries zeros). Imports, the NATS replica, `VerifyLog` and
//! `ImportLog`'s reading of an export all check records against a
//! [`ChainHead`]; each reports a [`ChainBreak`] in its own words.

use crate::{RecordHash, record_hash};

/// The last record of a log, as the next record must continue it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChainHead {
    /// Position of the last record (0 for an empty log).
    pub position: u64,
    /// Hash of the last record (zeros for an empty log).
    pub hash: RecordHash,
}

/// How a record fails to continue a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainBreak {
    /// The record is not at the next position.
    Gap {
        /// The position that continues the chain.
        expected: u64,
        /// The record's position.
        found: u64,
    },
    /// The record does not carry the hash of the one before it.
    Link {
        /// The hash the record carries.
        carried: RecordHash,
        /// The hash of the record before it.
        expected: RecordHash,
    },
}

impl ChainHead {
    /// The head of an empty log.
    pub const EMPTY: ChainHead = ChainHead {
        position: 0,
        hash: [0; 32],
    };

    /// The position the next record must have.
    pub fn next_position(&self) -> u64 {
        self.position + 1
    }

    /// Checks that a record at `position` comes next.
    pub fn check_position(&self, position: u64) -> Result<(), ChainBreak> {
        if position == self.next_position() {
            return Ok(());
        }
        Err(ChainBreak::Gap {
            expected: self.next_position(),
            found: position,
        })
    }

    /// Checks that a record carrying `prev_hash` links to this head.
    pub fn check_link(&self, prev_hash: &RecordHash) -> Result<(), ChainBreak> {
        if *prev_hash == self.hash {
            return Ok(());
        }
        Err(ChainBreak::Link {
            carried: *prev_hash,
            expected: self.hash,
        })
    }

    /// Moves the head to the record at `position` framed as `bytes`.
    pub fn advance(&mut self, position: u64, bytes: &[u8]) {
        self.position = position;
        self.hash = record_hash(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chain_continues_position_after_position_and_hash_after_hash() {
        let mut head = ChainHead::EMPTY;
        assert_eq!(head.check_position(1), Ok(()));
        assert_eq!(head.check_link(&[0; 32]), Ok(()));
        head.advance(1, b"first record");
        assert_eq!(
            head.check_position(3),
            Err(ChainBreak::Gap {
                expected: 2,
                found: 3
            })
        );
        assert!(matches!(
            head.check_link(&[0; 32]),
            Err(ChainBreak::Link { .. })
        ));
        assert_eq!(head.check_link(&record_hash(b"first record")), Ok(()));
    }
}
