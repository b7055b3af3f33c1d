//! Messages on Accord's subjects that are not the log's next record
//! (garbage published by another client, a record out of order) are kept
//! aside instead of stopping the replica: each under its stream sequence,
//! with why it was refused and its bytes, in the replica's tree. Their
//! positions hold no event; readers, the projector and `VerifyLog` see the
//! gap and learn from here that it is a quarantined message. An alarm, not
//! a stop: metric, health and log say so until the operator dealt with it.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::tree::keys;
use crate::{Quarantined, StoreError};

/// The quarantined messages of a replica: counted and the latest few kept
/// in memory, every one on disk.
#[derive(Clone, Default)]
pub(crate) struct QuarantineBook(Arc<Mutex<Quarantined>>);

/// Most recent quarantined messages listed.
const LISTED: usize = 20;

impl QuarantineBook {
    /// Reads what `tree` holds; returns the book and the last sequence.
    pub(crate) fn load(tree: &::sled::Tree) -> Result<(Self, u64), StoreError> {
        let mut book = Quarantined::default();
        let mut last = 0;
        for entry in tree.scan_prefix([keys::QUARANTINE]) {
            let (key, value) = entry?;
            let sequence = keys::position_of_event_key(&key)
                .ok_or_else(|| StoreError::Corrupt("quarantine key".into()))?;
            book.count += 1;
            last = sequence;
            push_recent(&mut book.recent, sequence, reason_of(&value));
        }
        Ok((Self(Arc::new(Mutex::new(book))), last))
    }

    /// Notes messages kept aside by a batch just written.
    pub(crate) fn add(&self, quarantined: Vec<(u64, String)>) {
        let mut book = self.0.lock();
        for (sequence, reason) in quarantined {
            book.count += 1;
            push_recent(&mut book.recent, sequence, reason);
        }
    }

    /// The count and the latest ones.
    pub(crate) fn get(&self) -> Quarantined {
        self.0.lock().clone()
    }
}

fn push_recent(recent: &mut Vec<(u64, String)>, sequence: u64, reason: String) {
    if recent.len() == LISTED {
        recent.remove(0);
    }
    recent.push((sequence, reason));
}

fn reason_of(value: &[u8]) -> String {
    let length = value
        .get(..4)
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(0, |bytes| u32::from_le_bytes(bytes) as usize);
    value
        .get(4..4 + length)
        .map(|reason| String::from_utf8_lossy(reason).into_owned())
        .unwrap_or_default()
}

/// How many positions from `from` to `to` (inclusive) are quarantined.
pub(crate) fn count_between(tree: &::sled::Tree, from: u64, to: u64) -> Result<u64, StoreError> {
    if from > to {
        return Ok(0);
    }
    let mut count = 0;
    for entry in tree.range(keys::quarantine_key(from)..=keys::quarantine_key(to)) {
        entry?;
        count += 1;
    }
    Ok(count)
}
