//! Importing an export into the empty log, all or nothing. A durable
//! marker is written before the first record and removed with the last
//! sync; the head is published only then, so no reader sees a record of an
//! import that has not finished. A failure empties the log again, and a log
//! opened with the marker still there (a crash mid-import) is emptied at
//! open (`super::super::open`).

use super::{Group, Writer};
use crate::import_check::ImportCheck;
use crate::tree::batch::LogBatch;
use crate::tree::keys;
use crate::tree::open::LogState;
use crate::{ImportSource, RawRecord, StoreError};

impl Writer {
    /// Imports every chunk of `source` into the empty log, or nothing.
    pub(super) fn import_all(
        &mut self,
        mut source: Box<dyn ImportSource>,
    ) -> Result<u64, StoreError> {
        self.failure.check()?;
        if self.state.head != 0 {
            return Err(StoreError::ImportNotPossible(format!(
                "imports go into an empty log; this one has {} events",
                self.state.head
            )));
        }
        if let Err(error) = self.write_marker(true) {
            // The marker may be in sled's memory without being durable:
            // fail closed, so that the log is reopened from the disk.
            self.fail(&error, 0);
            return Err(error);
        }
        let imported = self.import_chunks(source.as_mut());
        let finished = imported.and_then(|imported| {
            self.write_marker(false)?;
            Ok(imported)
        });
        match finished {
            Ok(imported) => {
                self.published
                    .publish(self.state.head, self.state.checkpoint);
                Ok(imported)
            }
            Err(error) => {
                tracing::warn!(%error, records = self.state.head, "import failed; emptying the log");
                if let Err(cleanup) = self.empty_log() {
                    // The marker stays: the next open empties the log.
                    self.fail(&cleanup, 0);
                }
                Err(error)
            }
        }
    }

    fn import_chunks(&mut self, source: &mut dyn ImportSource) -> Result<u64, StoreError> {
        let mut imported = 0;
        while let Some(chunk) = source.next_chunk()? {
            imported += self.import_chunk(&chunk)?;
        }
        Ok(imported)
    }

    /// Writes one chunk after checking that each record continues the log:
    /// position, chain, version and command id. The head is not published.
    fn import_chunk(&mut self, records: &[RawRecord]) -> Result<u64, StoreError> {
        let mut check = ImportCheck::new(self.state.head, self.state.last_hash);
        let mut writes = LogBatch::default();
        let mut last_recorded_nanos = self.state.last_recorded_nanos;
        for record in records {
            let decoded = check.accept(
                record,
                |agreement_id| self.current_version(&Group::default(), agreement_id),
                |command_id| Ok(self.index.index().command_position(command_id)?.is_some()),
            )?;
            let event = &decoded.event;
            writes.push_record(
                record.position,
                &event.agreement_id,
                event.version,
                &record.bytes,
                Some(&event.metadata.command_id),
            );
            last_recorded_nanos = event.recorded_at.unix_nanos();
        }
        let checkpoint = self.published.sign(&check.head);
        let state = LogState {
            head: check.head.position,
            last_hash: check.head.hash,
            last_recorded_nanos,
            agreement_count: self.state.agreement_count + check.new_agreements,
            checkpoint: Some(checkpoint),
        };
        let write = writes.into_sled_write(
            state.agreement_count,
            &checkpoint,
            &mut self.frontier,
            &self.tree,
        )?;
        self.tree.apply_batch(write.batch)?;
        self.db.sync()?;
        self.index.add(write.entries)?;
        self.state = state;
        self.stream_versions.extend(check.into_versions());
        Ok(records.len() as u64)
    }

    /// Sets or clears the import marker, durably.
    fn write_marker(&self, importing: bool) -> Result<(), StoreError> {
        if importing {
            self.tree.insert(keys::IMPORTING, &[1u8])?;
        } else {
            self.tree.remove(keys::IMPORTING)?;
        }
        self.db.sync()
    }

    /// Removes everything the import wrote, the marker last.
    fn empty_log(&mut self) -> Result<(), StoreError> {
        // The indexer finishes the windows it was handed before the tree is
        // emptied, so that none of its writes come after.
        self.index.clear()?;
        crate::tree::open::empty_tree(&self.tree)?;
        self.db.sync()?;
        self.state = LogState::EMPTY;
        self.frontier = accord_tlog::Frontier::default();
        self.stream_versions.clear();
        Ok(())
    }
}
