//! One import at a time per log, and no appends while it runs. The gate
//! opens again when the import ends, however it ends (a caller that goes
//! away mid-import included).

use std::sync::atomic::{AtomicBool, Ordering};

use crate::StoreError;

/// Whether an import runs on this log.
#[derive(Default)]
pub(crate) struct ImportGate(AtomicBool);

/// An import running; dropping it opens the gate again.
pub(crate) struct ImportRunning<'a>(&'a AtomicBool);

impl ImportGate {
    /// Starts an import, refused while another one runs.
    pub(crate) fn begin(&self) -> Result<ImportRunning<'_>, StoreError> {
        if self.0.swap(true, Ordering::AcqRel) {
            return Err(StoreError::ImportNotPossible(
                "another import is running".into(),
            ));
        }
        Ok(ImportRunning(&self.0))
    }

    /// Refuses an append while an import runs.
    pub(crate) fn check_append(&self) -> Result<(), StoreError> {
        if self.0.load(Ordering::Acquire) {
            return Err(StoreError::Unavailable(
                "an import is running; appends are refused until it ends".into(),
            ));
        }
        Ok(())
    }
}

impl Drop for ImportRunning<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_opens_again_however_the_import_ends() {
        let gate = ImportGate::default();
        assert!(gate.check_append().is_ok());
        let running = gate.begin().expect("first import");
        assert!(matches!(
            gate.begin(),
            Err(StoreError::ImportNotPossible(_))
        ));
        assert!(matches!(
            gate.check_append(),
            Err(StoreError::Unavailable(_))
        ));
        drop(running);
        assert!(gate.check_append().is_ok());
        assert!(gate.begin().is_ok());
    }
}
