//! The writes of a run of consecutive records in the log's layout: records
//! packed into blocks, the Merkle tree's tiles that cover them, the
//! agreement counter and the signed checkpoint of the new head, applied as
//! one atomic sled batch, and the index entries
//! of the records for the index tail (see [`crate::tree::index`]), added
//! once the batch is durable. The sled writer, imports and the NATS
//! replica all write through it, so every log has the same layout.

use accord_tlog::{Frontier, Hash, leaf_hash};

use super::{keys, merkle};
use crate::SignedCheckpoint;
use crate::tree::blocks::BlockPacker;
use crate::tree::index::window::IndexEntry;

/// Records staged for one atomic write, and their index entries.
#[derive(Default)]
pub(crate) struct LogBatch {
    blocks: BlockPacker,
    entries: Vec<IndexEntry>,
    quarantined: Vec<([u8; 9], Vec<u8>)>,
    /// The leaf hash of every position staged, in order.
    leaves: Vec<Hash>,
}

/// What applying a [`LogBatch`] takes.
pub(crate) struct SledWrite {
    pub(crate) batch: ::sled::Batch,
    /// Keys the batch writes.
    pub(crate) keys: usize,
    /// Index entries of its records, for the tail once it is durable.
    pub(crate) entries: Vec<IndexEntry>,
}

impl LogBatch {
    /// Stages the framed record at `position`, version `version` of
    /// `agreement_id`; `command_id` when it is the first record of its
    /// command.
    pub(crate) fn push_record(
        &mut self,
        position: u64,
        agreement_id: &str,
        version: u64,
        bytes: &[u8],
        command_id: Option<&str>,
    ) {
        self.blocks.push(position, bytes);
        self.leaves.push(leaf_hash(bytes));
        self.entries.push(IndexEntry {
            position,
            agreement_id: agreement_id.to_owned(),
            version,
            command_id: command_id.map(str::to_owned),
        });
    }

    /// Stages a stream message kept aside instead of a record (NATS
    /// replicas): `entry` as stored, `payload` as received (its leaf).
    pub(crate) fn push_quarantined(&mut self, sequence: u64, entry: Vec<u8>, payload: &[u8]) {
        self.quarantined
            .push((keys::quarantine_key(sequence), entry));
        self.leaves.push(leaf_hash(payload));
    }

    /// Records staged.
    pub(crate) fn records(&self) -> usize {
        self.entries.len()
    }

    /// The sled batch that writes everything staged, the tiles `frontier`
    /// changes to as it takes the staged leaves, the agreement counter and
    /// the signed checkpoint of the new head (`tree`: the log tree, whose
    /// tile fragments a filled tile replaces). A batch that then fails to
    /// apply leaves `frontier` ahead of the disk: the log fails closed and
    /// is reopened from the disk.
    pub(crate) fn into_sled_write(
        self,
        agreement_count: u64,
        checkpoint: &SignedCheckpoint,
        frontier: &mut Frontier,
        tree: &::sled::Tree,
    ) -> Result<SledWrite, crate::StoreError> {
        let mut batch = ::sled::Batch::default();
        // The agreement counter and the checkpoint, and what follows.
        let mut written = 2;
        for (first, value) in self.blocks.finish() {
            batch.insert(&keys::event_key(first)[..], value);
            written += 1;
        }
        for (key, value) in self.quarantined {
            batch.insert(&key[..], value);
            written += 1;
        }
        written += merkle::stage(tree, &mut batch, frontier, &self.leaves)?;
        batch.insert(keys::AGREEMENT_COUNT, &agreement_count.to_be_bytes());
        batch.insert(keys::CHECKPOINT, checkpoint.encode());
        Ok(SledWrite {
            batch,
            keys: written,
            entries: self.entries,
        })
    }
}
