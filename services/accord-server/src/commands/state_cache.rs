//! The latest known state of recently written agreements. A hint only: the
//! store's expected-version check catches a stale entry, which is then
//! dropped and re-read.

use accord_domain::Agreement;
use accord_store::ClearingMap;
use parking_lot::Mutex;

/// Bytes of agreement states kept before the cache starts over (about
/// 50,000 agreements of the demo's size).
const BUDGET_BYTES: usize = 32 * 1024 * 1024;

/// Agreement states by id.
pub(crate) struct StateCache {
    states: Mutex<ClearingMap<Agreement>>,
}

impl Default for StateCache {
    fn default() -> Self {
        Self {
            states: Mutex::new(ClearingMap::new(BUDGET_BYTES, agreement_bytes)),
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

/// The bytes an agreement state holds: its own size and its strings.
fn agreement_bytes(agreement: &Agreement) -> usize {
    let strings = [
        &agreement.agreement_id,
        &agreement.title,
        &agreement.buyer.name,
        &agreement.buyer.country,
        &agreement.supplier.name,
        &agreement.supplier.country,
        &agreement.sector,
        &agreement.product,
        &agreement.facility,
        &agreement.venue,
        &agreement.source,
    ];
    let lists = agreement
        .technology_transfer
        .iter()
        .chain(&agreement.signatories)
        .map(|item| std::mem::size_of::<String>() + item.len());
    std::mem::size_of::<Agreement>()
        + strings.iter().map(|text| text.len()).sum::<usize>()
        + agreement
            .value
            .as_ref()
            .map_or(0, |value| value.currency.len())
        + lists.sum::<usize>()
}
