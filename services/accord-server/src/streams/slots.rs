//! Limits on open streams: in all, per client connection, and per client
//! (a token, or on an open server an address), so that opening more
//! connections does not get around the limit.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::error::ApiError;
use crate::metrics::Metrics;

/// The limits on open streams.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StreamLimits {
    /// In all (`--max-subscriptions`).
    pub total: usize,
    /// On one connection (`--max-subscriptions-per-connection`).
    pub per_connection: usize,
    /// Of one client (`--max-subscriptions-per-client`).
    pub per_client: usize,
}

/// Counts open streams and refuses new ones beyond the limits.
pub(crate) struct SubscriptionSlots {
    limits: StreamLimits,
    open: Mutex<Open>,
    metrics: Arc<Metrics>,
}

#[derive(Default)]
struct Open {
    total: usize,
    by_connection: HashMap<SocketAddr, usize>,
    by_client: HashMap<String, usize>,
}

/// Who opens a stream: its connection, and the client behind it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Owner {
    connection: Option<SocketAddr>,
    client: Option<String>,
}

impl Owner {
    /// A stream on connection `connection` of `client` (a token's name, or
    /// without tokens the peer's address).
    pub(crate) fn new(connection: SocketAddr, token: Option<&str>) -> Self {
        Self::of(Some(connection), token)
    }

    /// A stream on `connection`, if known, opened with `token`, if any: the
    /// token's name is the client, the peer's address (without the port)
    /// otherwise.
    pub(crate) fn of(connection: Option<SocketAddr>, token: Option<&str>) -> Self {
        let client = match token {
            Some(name) => Some(format!("token {name:?}")),
            None => connection.map(|address| format!("address {}", address.ip())),
        };
        Self { connection, client }
    }
}

/// One open stream; dropping it frees the slot.
pub(crate) struct Slot {
    slots: Arc<SubscriptionSlots>,
    owner: Owner,
}

impl SubscriptionSlots {
    /// Returns slots with the given limits.
    pub(crate) fn new(limits: StreamLimits, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            limits,
            open: Mutex::new(Open::default()),
            metrics,
        })
    }

    /// Takes a slot for a stream of `owner`, or says which limit is reached.
    pub(crate) fn take(self: &Arc<Self>, owner: Owner) -> Result<Slot, ApiError> {
        let mut open = self.lock();
        let limits = self.limits;
        if open.total >= limits.total {
            return Err(ApiError::LimitExceeded(format!(
                "{} streams are open, the server's limit is {} (--max-subscriptions)",
                open.total, limits.total
            )));
        }
        let on_connection = owner
            .connection
            .and_then(|connection| open.by_connection.get(&connection).copied())
            .unwrap_or(0);
        if on_connection >= limits.per_connection {
            return Err(ApiError::LimitExceeded(format!(
                "{on_connection} streams are open on this connection, the limit is {} (--max-subscriptions-per-connection)",
                limits.per_connection
            )));
        }
        let of_client = owner
            .client
            .as_ref()
            .and_then(|client| open.by_client.get(client).copied())
            .unwrap_or(0);
        if of_client >= limits.per_client {
            return Err(ApiError::LimitExceeded(format!(
                "{of_client} streams are open for this client ({}), the limit is {} (--max-subscriptions-per-client)",
                owner.client.as_deref().unwrap_or_default(),
                limits.per_client
            )));
        }
        if let Some(connection) = owner.connection {
            *open.by_connection.entry(connection).or_default() += 1;
        }
        if let Some(client) = &owner.client {
            *open.by_client.entry(client.clone()).or_default() += 1;
        }
        open.total += 1;
        self.metrics.subscriptions_active.set(open.total as i64);
        Ok(Slot {
            slots: self.clone(),
            owner,
        })
    }

    fn lock(&self) -> parking_lot::MutexGuard<'_, Open> {
        self.open.lock()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.slots.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(connection) = self.owner.connection {
            release(&mut open.by_connection, &connection);
        }
        if let Some(client) = &self.owner.client {
            release(&mut open.by_client, client);
        }
        self.slots
            .metrics
            .subscriptions_active
            .set(open.total as i64);
    }
}

/// Takes one from `key`'s count, forgetting the key at zero.
fn release<K: std::hash::Hash + Eq>(counts: &mut HashMap<K, usize>, key: &K) {
    if let Some(count) = counts.get_mut(key) {
        *count = count.saturating_sub(1);
        if *count == 0 {
            counts.remove(key);
        }
    }
}
