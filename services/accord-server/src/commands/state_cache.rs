//! The latest known state of recently written agreements. A hint only: the
//! store's expected-version check catches a stale entry, which is then
//! dropped and re-read.

use accord_domain::Agreement;
use accord_store::ClearingMap;
use parking_lot::Mutex;

/// Most agreements kept before the cache starts over.
const CAPACITY: usize = 100_000;

/// Agreement states by id.
pub(crate) struct StateCache {
    states: Mutex<ClearingMap<Agreement>>,
}

impl Default for StateCache {
    fn default() -> Self {
        Self {
            states: Mutex::new(ClearingMap::new(CAPACITY)),
        }
    }
}

impl StateCache {
    pub(crate) fn get(&self, agreement_id: &str) -> Option<Agreement> {
        self.lock().get(agreement_id).cloned()
    }

    pub(crate) fn put(&self, agreement: Agreement) {
        let mut states = self.lock();
        // Never replace a newer state with an older one from a slower writer.
        match states.get(&agreement.agreement_id) {
            Some(existing) if existing.version > agreement.version => {}
            _ => {
                states.insert(agreement.agreement_id.clone(), agreement);
            }
        }
    }

    pub(crate) fn forget(&self, agreement_id: &str) {
        self.lock().remove(agreement_id);
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, ClearingMap<Agreement>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.states.lock()
    }
}
