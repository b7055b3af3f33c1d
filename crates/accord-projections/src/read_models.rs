//! The read-model store: a sled database beside the log, one tree per
//! projection generation, and the checkpoint that queries wait on.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, RwLock};
use std::time::Duration;

use accord_domain::{Agreement, RecordedEvent};
use accord_proto::v1;
use prost::Message;
use tokio::sync::watch;

use crate::keys;
use crate::project::PendingChanges;
use crate::{PortfolioSums, ProjectionError};

/// The name of the projection that keeps every read model, as `GetStats` shows it.
pub const PROJECTION_NAME: &str = "agreements";

const META_TREE: &str = "meta";
const ACTIVE_TREE_KEY: &[u8] = b"active_tree";
const FIRST_TREE: &str = "agreements-1";

/// Most agreement views the projector keeps decoded in memory.
const CACHED_VIEWS: usize = 200_000;

/// The read models, always at one checkpoint.
pub struct ReadModels {
    db: sled::Db,
    active: RwLock<sled::Tree>,
    checkpoint: watch::Sender<u64>,
    /// Views equal to the active tree's, so the projector need not read them back.
    cached_views: Mutex<HashMap<String, Agreement>>,
}

impl ReadModels {
    /// Opens (or creates) the read models in `path`.
    pub fn open(path: &Path) -> Result<Self, ProjectionError> {
        let db = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(128 * 1024 * 1024)
            .open()?;
        let meta = db.open_tree(META_TREE)?;
        let active_name = match meta.get(ACTIVE_TREE_KEY)? {
            Some(name) => String::from_utf8_lossy(&name).into_owned(),
            None => {
                meta.insert(ACTIVE_TREE_KEY, FIRST_TREE.as_bytes())?;
                FIRST_TREE.to_owned()
            }
        };
        let tree = db.open_tree(active_name)?;
        let checkpoint = read_checkpoint(&tree)?;
        Ok(Self {
            db,
            active: RwLock::new(tree),
            checkpoint: watch::Sender::new(checkpoint),
            cached_views: Mutex::new(HashMap::new()),
        })
    }

    /// Returns the position the read models have applied.
    pub fn checkpoint(&self) -> u64 {
        *self.checkpoint.borrow()
    }

    /// Returns a receiver of every new checkpoint.
    pub fn watch_checkpoint(&self) -> watch::Receiver<u64> {
        self.checkpoint.subscribe()
    }

    /// Waits until the read models have applied `position`; returns the
    /// checkpoint reached when `timeout` passes first.
    pub async fn wait_for(&self, position: u64, timeout: Duration) -> Result<(), u64> {
        let mut checkpoint = self.checkpoint.subscribe();
        match tokio::time::timeout(timeout, checkpoint.wait_for(|reached| *reached >= position))
            .await
        {
            Ok(Ok(_)) => Ok(()),
            _ => Err(self.checkpoint()),
        }
    }

    /// Applies consecutive events atomically with the new checkpoint and
    /// returns the changed agreements.
    pub fn apply(&self, events: &[RecordedEvent]) -> Result<Vec<Agreement>, ProjectionError> {
        let mut pending = self.begin();
        self.fold(&mut pending, events)?;
        self.commit(pending)
    }

    /// Starts collecting changes from the current checkpoint.
    pub fn begin(&self) -> PendingChanges {
        PendingChanges::new(self.checkpoint())
    }

    /// Folds consecutive events into `pending`.
    pub fn fold(
        &self,
        pending: &mut PendingChanges,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let cached = self.lock_cache();
        pending.fold(&self.tree(), &cached, events)
    }

    /// Writes `pending` and its checkpoint in one atomic batch; returns the
    /// changed agreements.
    pub fn commit(&self, pending: PendingChanges) -> Result<Vec<Agreement>, ProjectionError> {
        let tree = self.tree();
        let batch = pending.into_batch(&tree)?;
        tree.apply_batch(batch.writes)?;
        let mut cached = self.lock_cache();
        if cached.len() + batch.changed.len() > CACHED_VIEWS {
            cached.clear();
        }
        for agreement in &batch.changed {
            cached.insert(agreement.agreement_id.clone(), agreement.clone());
        }
        drop(cached);
        self.checkpoint.send_replace(batch.checkpoint);
        Ok(batch.changed)
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Agreement>> {
        self.cached_views
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes everything to disk.
    pub fn flush(&self) -> Result<(), ProjectionError> {
        self.db.flush()?;
        Ok(())
    }

    /// Returns the active tree.
    pub(crate) fn tree(&self) -> sled::Tree {
        self.active
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Bytes the read models occupy on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}

pub(crate) fn read_checkpoint(tree: &sled::Tree) -> Result<u64, ProjectionError> {
    Ok(tree
        .get(keys::CHECKPOINT)?
        .and_then(|bytes| bytes.as_ref().try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0))
}

pub(crate) fn decode_agreement(bytes: &[u8]) -> Result<Agreement, ProjectionError> {
    let view = v1::Agreement::decode(bytes).map_err(|error| {
        ProjectionError::Inconsistent(format!("undecodable agreement view: {error}"))
    })?;
    accord_proto::agreement_from_wire(view)
        .map_err(|error| ProjectionError::Inconsistent(format!("agreement view: {error}")))
}

pub(crate) fn decode_portfolio(bytes: &[u8]) -> Result<PortfolioSums, ProjectionError> {
    serde_json::from_slice(bytes)
        .map_err(|error| ProjectionError::Inconsistent(format!("undecodable portfolio: {error}")))
}
