//! The writes of a run of consecutive records in the log's layout: records
//! packed into blocks, one stream-index chunk per agreement, one command
//! index entry per new command id, the agreement counter and the signed
//! checkpoint of the new head, applied as one
//! atomic sled batch. The sled writer, imports and the NATS replica all
//! write through it, so every log has the same layout.

use std::collections::HashMap;

use super::keys;
use crate::tree::blocks::BlockPacker;
use crate::tree::stream_index::encode_chunk;
use crate::{Fingerprint, SignedCheckpoint};

/// Records and index entries staged for one atomic write.
#[derive(Default)]
pub(crate) struct LogBatch {
    blocks: BlockPacker,
    /// Per agreement: the first version staged and the positions after it.
    streams: HashMap<String, (u64, Vec<u64>)>,
    /// Chunks closed because a later record did not continue them.
    closed_streams: Vec<(String, u64, Vec<u64>)>,
    commands: Vec<(Vec<u8>, Vec<u8>)>,
    quarantined: Vec<([u8; 9], Vec<u8>)>,
    records: usize,
}

impl LogBatch {
    /// Stages the framed record at `position`, version `version` of `agreement_id`.
    pub(crate) fn push_record(
        &mut self,
        position: u64,
        agreement_id: &str,
        version: u64,
        bytes: &[u8],
    ) {
        self.blocks.push(position, bytes);
        self.records += 1;
        match self.streams.get_mut(agreement_id) {
            Some((first, positions)) if *first + positions.len() as u64 == version => {
                positions.push(position);
            }
            Some(chunk) => {
                let (first, positions) = std::mem::replace(chunk, (version, vec![position]));
                self.closed_streams
                    .push((agreement_id.to_owned(), first, positions));
            }
            None => {
                self.streams
                    .insert(agreement_id.to_owned(), (version, vec![position]));
            }
        }
    }

    /// Stages the command index entry of a command id seen for the first time.
    pub(crate) fn push_command(
        &mut self,
        command_id: &str,
        fingerprint: &Fingerprint,
        position: u64,
    ) {
        self.commands.push((
            keys::command_key(command_id),
            keys::encode_command_entry(fingerprint, position),
        ));
    }

    /// Stages a stream message kept aside instead of a record (NATS replicas).
    pub(crate) fn push_quarantined(&mut self, sequence: u64, entry: Vec<u8>) {
        self.quarantined
            .push((keys::quarantine_key(sequence), entry));
    }

    /// Records staged.
    pub(crate) fn records(&self) -> usize {
        self.records
    }

    /// The sled batch that writes everything staged, the agreement counter
    /// and the signed checkpoint of the new head, and how many keys it
    /// writes.
    pub(crate) fn into_sled_batch(
        self,
        agreement_count: u64,
        checkpoint: &SignedCheckpoint,
    ) -> (::sled::Batch, usize) {
        let mut batch = ::sled::Batch::default();
        // The agreement counter and the checkpoint, and what follows.
        let mut written = 2;
        for (first, value) in self.blocks.finish() {
            batch.insert(&keys::event_key(first)[..], value);
            written += 1;
        }
        let streams = self
            .streams
            .into_iter()
            .map(|(agreement_id, (first, positions))| (agreement_id, first, positions));
        for (agreement_id, first, positions) in self.closed_streams.into_iter().chain(streams) {
            batch.insert(
                keys::stream_key(&agreement_id, first),
                encode_chunk(&positions),
            );
            written += 1;
        }
        for (key, value) in self.commands.into_iter().chain(
            self.quarantined
                .into_iter()
                .map(|(key, value)| (key.to_vec(), value)),
        ) {
            batch.insert(key, value);
            written += 1;
        }
        batch.insert(keys::AGREEMENT_COUNT, &agreement_count.to_be_bytes());
        batch.insert(keys::CHECKPOINT, checkpoint.encode());
        (batch, written)
    }
}
