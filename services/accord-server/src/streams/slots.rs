//! Limits on open streams, globally and per client connection.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// Counts open streams and refuses new ones beyond the limits.
pub struct SubscriptionSlots {
    max_total: usize,
    max_per_connection: usize,
    open: Mutex<Open>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_connection: HashMap<SocketAddr, usize>,
}

/// One open stream; dropping it frees the slot.
pub(crate) struct Slot {
    slots: Arc<SubscriptionSlots>,
    connection: Option<SocketAddr>,
}

impl SubscriptionSlots {
    /// Returns slots with the given limits.
    pub fn new(max_total: usize, max_per_connection: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            max_total,
            max_per_connection,
            open: Mutex::new(Open::default()),
            metrics,
        })
    }

    /// Takes a slot for a stream of `connection`, or says which limit is reached.
    pub(crate) fn take(self: &Arc<Self>, connection: Option<SocketAddr>) -> Result<Slot, ApiError> {
        let mut open = self.lock();
        if open.total >= self.max_total {
            return Err(ApiError::LimitExceeded(format!(
                "{} streams are open, the server's limit is {} (--max-subscriptions)",
                open.total, self.max_total
            )));
        }
        if let Some(connection) = connection {
            let count = open.by_connection.entry(connection).or_default();
            if *count >= self.max_per_connection {
                return Err(ApiError::LimitExceeded(format!(
                    "{count} streams are open on this connection, the limit is {} (--max-subscriptions-per-connection)",
                    self.max_per_connection
                )));
            }
            *count += 1;
        }
        open.total += 1;
        self.metrics.subscriptions_active.set(open.total as i64);
        Ok(Slot {
            slots: self.clone(),
            connection,
        })
    }

    /// Streams open now.
    pub fn open(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Open> {
        self.open.lock()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(connection) = self.connection
            && let Some(count) = open.by_connection.get_mut(&connection)
        {
            *count -= 1;
            if *count == 0 {
                open.by_connection.remove(&connection);
            }
        }
        self.slots
            .metrics
            .subscriptions_active
            .set(open.total as i64);
    }
}
