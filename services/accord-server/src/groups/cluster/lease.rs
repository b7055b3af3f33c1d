//! Which node runs a NATS cluster's consumer groups: the one holding the
//! lease, a key of a bucket whose entries expire after `EXPIRES`. The
//! holder renews it every `RENEW_EVERY` with the revision it last wrote;
//! the others try to create it, which succeeds only once it has expired (or
//! was released). The holder counts the lease as its own only for
//! `VALID_FOR` after it asked for the last renewal that succeeded, well
//! inside `EXPIRES`, so that it stops acting before anyone can take over,
//! even when its renewals stop answering.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::kv;
use bytes::Bytes;
use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// How often the holder renews the lease, and others try to take it.
pub(crate) const RENEW_EVERY: Duration = Duration::from_millis(500);
/// How long after asking for a renewal the holder still counts on it.
const VALID_FOR: Duration = Duration::from_millis(2_500);
/// How long the lease lives unrenewed (the bucket's `max_age`).
pub(crate) const EXPIRES: Duration = Duration::from_secs(5);

const KEY: &str = "leader";

/// A lease this node holds.
pub(crate) struct Held {
    /// The revision that created it: grows with every new holder.
    pub(crate) epoch: u64,
    valid_until: Mutex<Instant>,
    /// Cancelled once the lease is lost or given up.
    pub(crate) lost: CancellationToken,
}

impl Held {
    /// Whether this node may still act as the holder.
    pub(crate) fn valid(&self) -> bool {
        !self.lost.is_cancelled() && Instant::now() < *self.valid_until.lock()
    }

    /// A lease of `epoch` valid for `for_how_long` (tests of the fences).
    #[cfg(test)]
    pub(crate) fn for_test(epoch: u64, for_how_long: Duration) -> Arc<Self> {
        Arc::new(Self {
            epoch,
            valid_until: Mutex::new(Instant::now() + for_how_long),
            lost: CancellationToken::new(),
        })
    }

    /// Marks the lease lost (a later holder was seen).
    pub(crate) fn lose(&self) {
        self.lost.cancel();
    }
}

/// The node the lease names, if any.
pub(crate) async fn holder(bucket: &kv::Store) -> Option<String> {
    match bucket.get(KEY).await {
        Ok(value) => value.and_then(|value| String::from_utf8(value.to_vec()).ok()),
        Err(error) => {
            tracing::debug!(%error, "cannot read the consumer groups' lease");
            None
        }
    }
}

/// Waits until this node holds the lease (None once `stopping`); returns
/// it and the revision to renew.
pub(crate) async fn acquire(
    bucket: &kv::Store,
    node: &str,
    stopping: &CancellationToken,
) -> Option<(Arc<Held>, u64)> {
    loop {
        let asked = Instant::now();
        match bucket.create(KEY, Bytes::from(node.to_owned())).await {
            Ok(revision) => {
                let held = Held {
                    epoch: revision,
                    valid_until: Mutex::new(asked + VALID_FOR),
                    lost: CancellationToken::new(),
                };
                return Some((Arc::new(held), revision));
            }
            Err(error) if error.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(error) => {
                tracing::debug!(%error, "cannot ask for the consumer groups' lease");
            }
        }
        tokio::select! {
            () = stopping.cancelled() => return None,
            () = tokio::time::sleep(RENEW_EVERY) => {}
        }
    }
}

/// Renews the lease until it is lost, or until `release` is cancelled:
/// then it is deleted so that another node takes over at once.
pub(crate) async fn keep(
    bucket: kv::Store,
    node: String,
    held: Arc<Held>,
    mut revision: u64,
    release: CancellationToken,
) {
    loop {
        tokio::select! {
            () = release.cancelled() => {
                held.lose();
                if let Err(error) = bucket.delete_expect_revision(KEY, Some(revision)).await {
                    tracing::debug!(%error, "consumer groups' lease not released; it expires");
                }
                return;
            }
            () = held.lost.cancelled() => return,
            () = tokio::time::sleep(RENEW_EVERY) => {}
        }
        let asked = Instant::now();
        let renewed = tokio::time::timeout(
            VALID_FOR,
            bucket.update(KEY, Bytes::from(node.clone()), revision),
        )
        .await;
        match renewed {
            Ok(Ok(next)) => {
                revision = next;
                *held.valid_until.lock() = asked + VALID_FOR;
            }
            Ok(Err(error)) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                tracing::warn!("another node took the consumer groups' lease");
                held.lose();
                return;
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "cannot renew the consumer groups' lease");
            }
            Err(_) => tracing::warn!("renewing the consumer groups' lease timed out"),
        }
        if !held.valid() {
            tracing::warn!("the consumer groups' lease ran out before it was renewed");
            held.lose();
            return;
        }
    }
}
