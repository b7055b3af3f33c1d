//! The checks an imported record must pass on every backend: it continues
//! the log at the next position, carries the previous record's hash, is the
//! next version of its agreement (an announcement first), and brings a
//! command id the log has not seen.

use std::collections::{HashMap, HashSet};

use crate::{
    ChainHead, CheckpointError, CheckpointKeys, DecodedRecord, RawRecord, RecordHash,
    SignedCheckpoint, StoreError, decode_record,
};

/// Where the log stands while a sequence of records is checked.
pub(crate) struct ImportCheck {
    /// The last record accepted so far.
    pub(crate) head: ChainHead,
    /// Agreements the accepted records announce.
    pub(crate) new_agreements: u64,
    versions: HashMap<String, u64>,
    /// Digests of the accepted command ids (16 bytes each, however long the
    /// ids: a million-record import keeps 16 MB, not its ids).
    commands: HashSet<[u8; 16]>,
}

impl ImportCheck {
    /// Starts after the log's last record.
    pub(crate) fn new(head: u64, last_hash: RecordHash) -> Self {
        Self {
            head: ChainHead {
                position: head,
                hash: last_hash,
            },
            new_agreements: 0,
            versions: HashMap::new(),
            commands: HashSet::new(),
        }
    }

    /// Checks `record` against the log and the records accepted before it.
    /// `stored_version` says the version of an agreement in the log;
    /// `stored_command` whether the log already holds a command id.
    pub(crate) fn accept(
        &mut self,
        record: &RawRecord,
        stored_version: impl FnOnce(&str) -> Result<u64, StoreError>,
        stored_command: impl FnOnce(&str) -> Result<bool, StoreError>,
    ) -> Result<DecodedRecord, StoreError> {
        let refuse = |why: String| {
            StoreError::InvalidImport(format!("record at position {}: {why}", record.position))
        };
        if self.head.check_position(record.position).is_err() {
            return Err(refuse(format!(
                "the log continues at position {}",
                self.head.next_position()
            )));
        }
        let decoded = decode_record(&record.bytes).map_err(|error| refuse(error.to_string()))?;
        let event = &decoded.event;
        if event.position != record.position {
            return Err(refuse(format!(
                "the record says position {}",
                event.position
            )));
        }
        accord_domain::validate_agreement_id(&event.agreement_id)
            .map_err(|error| refuse(error.to_string()))?;
        if self.head.check_link(&decoded.prev_hash).is_err() {
            return Err(refuse(
                "the hash chain is broken: it does not carry the previous record's hash".into(),
            ));
        }
        let current = match self.versions.get(&event.agreement_id) {
            Some(version) => *version,
            None => stored_version(&event.agreement_id)?,
        };
        if event.version != current + 1 {
            return Err(refuse(format!(
                "{} is at version {current}, the record says {}",
                event.agreement_id, event.version
            )));
        }
        if current == 0 {
            if !event.event.opens_agreement() {
                return Err(refuse(
                    "an agreement's first event must be its announcement".into(),
                ));
            }
            self.new_agreements += 1;
        }
        let command_id = &event.metadata.command_id;
        if !self.commands.insert(command_digest(command_id)) || stored_command(command_id)? {
            return Err(refuse(format!(
                "command id {command_id:?} is already in the log"
            )));
        }
        self.versions
            .insert(event.agreement_id.clone(), event.version);
        self.head.advance(record.position, &record.bytes);
        Ok(decoded)
    }

    /// Records accepted so far.
    pub(crate) fn accepted(&self) -> u64 {
        self.commands.len() as u64
    }

    /// The versions the accepted records reached, per agreement.
    pub(crate) fn into_versions(self) -> HashMap<String, u64> {
        self.versions
    }
}

fn command_digest(command_id: &str) -> [u8; 16] {
    let mut digest = [0; 16];
    digest.copy_from_slice(&blake3::hash(command_id.as_bytes()).as_bytes()[..16]);
    digest
}

/// Checks a whole export against an empty log before anything is written:
/// every rule of an import (positions, chain, versions, announcements
/// first, command ids once), in bounded memory per record.
pub struct ImportVerifier(ImportCheck);

impl Default for ImportVerifier {
    fn default() -> Self {
        Self(ImportCheck::new(0, [0; 32]))
    }
}

impl ImportVerifier {
    /// Checks the next record; its decoded form when it passes.
    pub fn accept(&mut self, record: &RawRecord) -> Result<DecodedRecord, StoreError> {
        self.0.accept(record, |_| Ok(0), |_| Ok(false))
    }

    /// Records accepted so far.
    pub fn accepted(&self) -> u64 {
        self.0.accepted()
    }

    /// Checks, after the last record, that the export's signed checkpoint
    /// pins the chain the records form, signed by a key of `keys`. An export
    /// without one (written by Accord 0.1, or stripped) passes only when
    /// `allow_unsigned`.
    pub fn finish(
        &self,
        checkpoint: Option<&SignedCheckpoint>,
        keys: &CheckpointKeys,
        allow_unsigned: bool,
    ) -> Result<(), StoreError> {
        let head = self.0.head;
        let Some(checkpoint) = checkpoint else {
            if head.position == 0 || allow_unsigned {
                return Ok(());
            }
            return Err(StoreError::ImportNotPossible(
                "the export carries no signed checkpoint (written by Accord 0.1, or removed): nothing proves its records are the ones a server wrote. If you trust it, import it with `accordctl import --allow-unsigned` (metadata `accord-allow-unsigned: true`)".into(),
            ));
        };
        checkpoint.check(&head, keys).map_err(|error| match error {
            CheckpointError::UntrustedKey { .. } => StoreError::ImportNotPossible(format!(
                "{error}: start this server with --trusted-key for the exporting server's public key"
            )),
            _ => StoreError::InvalidImport(format!("checkpoint: {error}")),
        })
    }
}
