//! The read-model store: a sled database beside the log, one tree per
//! projection generation, and the checkpoint that queries wait on.

use parking_lot::{Mutex, RwLock};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use accord_domain::RecordedEvent;
use accord_store::{ClearingMap, ContainedDrop, SyncedDb};
use tokio::sync::watch;

use crate::ProjectionError;
use crate::keys;
use crate::positions::{IndexedPositions, PositionQuery};
use crate::project::PendingChanges;
use crate::rebuilt::{Rebuild, RebuildClaim};
use crate::stored::{READ_MODEL_SCHEMA, UNVERSIONED_SCHEMA, view_bytes};

/// The name of the projection that keeps every read model, as `GetStats` shows it.
pub const PROJECTION_NAME: &str = "agreements";

const META_TREE: &str = "meta";
const ACTIVE_TREE_KEY: &[u8] = b"active_tree";
/// The schema version of every stored value (u32 BE; absent before 0.2).
const SCHEMA_KEY: &[u8] = b"schema";
const FIRST_TREE: &str = "agreements-1";

/// Bytes of agreement views the projector keeps in memory, as stored: a hit
/// is decoded again, which costs less than cloning decoded views into the
/// cache at every commit did (BENCHMARKS.md). About 150,000 views of the
/// demo's size; a rebuild keeps as much again.
const CACHED_VIEW_BYTES: usize = 64 * 1024 * 1024;

/// The read models, always at one checkpoint.
pub struct ReadModels {
    db: ContainedDrop<SyncedDb>,
    active: ContainedDrop<RwLock<Generation>>,
    /// Held while a commit or a swap changes what is active.
    commit_lock: Mutex<()>,
    checkpoint: watch::Sender<u64>,
    /// Stored views equal to the active tree's, so the projector need not read them back.
    cached_views: Mutex<ClearingMap<sled::IVec>>,
    /// When a commit last synced the database.
    last_sync: Mutex<Option<Instant>>,
    /// Set while a rebuild runs (see [`ReadModels::claim_rebuild`]).
    rebuilding: Arc<AtomicBool>,
}

/// Least time between two syncs of read-model commits. Read models are
/// derived from the log: a power cut sets them back to their last synced
/// commit and the projector applies the events again, so a sync per commit
/// (one per group commit of the log when the projector is at the head)
/// buys nothing but a shorter replay.
const SYNC_EVERY: Duration = Duration::from_millis(100);

impl ReadModels {
    /// Opens (or creates) the read models in `path`. Read models stored in
    /// another schema than this build writes are replaced by an empty
    /// generation at checkpoint 0, which the projector rebuilds from the log.
    pub fn open(path: &Path) -> Result<Self, ProjectionError> {
        let config = sled::Config::new()
            .path(path)
            .mode(sled::Mode::HighThroughput)
            .cache_capacity(128 * 1024 * 1024);
        let db = SyncedDb::open(config, path)?;
        let meta = db.db().open_tree(META_TREE)?;
        let (active_name, schema) = match meta.get(ACTIVE_TREE_KEY)? {
            Some(name) => (
                String::from_utf8_lossy(&name).into_owned(),
                stored_schema(&meta)?,
            ),
            None => {
                meta.insert(SCHEMA_KEY, &READ_MODEL_SCHEMA.to_be_bytes())?;
                meta.insert(ACTIVE_TREE_KEY, FIRST_TREE.as_bytes())?;
                (FIRST_TREE.to_owned(), READ_MODEL_SCHEMA)
            }
        };
        let tree = db.db().open_tree(&active_name)?;
        db.sync()?;
        let checkpoint = read_checkpoint(&tree)?;
        let number = generation_number(&active_name);
        let read_models = Self {
            db: ContainedDrop::new(db),
            active: ContainedDrop::new(RwLock::new(Generation { tree, number })),
            commit_lock: Mutex::new(()),
            checkpoint: watch::Sender::new(checkpoint),
            cached_views: Mutex::new(ClearingMap::new(CACHED_VIEW_BYTES, view_bytes)),
            last_sync: Mutex::new(None),
            rebuilding: Arc::new(AtomicBool::new(false)),
        };
        if schema != READ_MODEL_SCHEMA {
            tracing::warn!(
                stored_schema = schema,
                schema = READ_MODEL_SCHEMA,
                checkpoint,
                "read models were stored in another schema; rebuilding them from the log"
            );
            // The empty generation is durable before the new schema is
            // recorded: a crash in between only repeats the rebuild.
            read_models.reset()?;
            meta.insert(SCHEMA_KEY, &READ_MODEL_SCHEMA.to_be_bytes())?;
            read_models.db.sync()?;
        }
        Ok(read_models)
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

    /// Applies consecutive events atomically with the new checkpoint.
    pub fn apply(&self, events: &[RecordedEvent]) -> Result<(), ProjectionError> {
        let mut pending = self.begin();
        self.fold(&mut pending, events)?;
        self.commit(pending)
    }

    /// Starts collecting changes from the current checkpoint.
    pub fn begin(&self) -> PendingChanges {
        PendingChanges::new(self.checkpoint(), self.generation())
    }

    /// The number of the active generation of read models (a rebuild makes a new one).
    pub fn generation(&self) -> u64 {
        self.read_active().number
    }

    /// Folds consecutive events into `pending`.
    pub fn fold(
        &self,
        pending: &mut PendingChanges,
        events: &[RecordedEvent],
    ) -> Result<(), ProjectionError> {
        let cached = self.lock_cache();
        pending.fold(&self.tree(), &cached, false, events)
    }

    /// Writes `pending` and its checkpoint in one atomic batch, publishes
    /// the checkpoint, and syncs the database unless a commit synced it less
    /// than `SYNC_EVERY` ago.
    pub fn commit(&self, pending: PendingChanges) -> Result<(), ProjectionError> {
        let _committing = self.commit_lock.lock();
        if pending.generation() != self.generation() {
            return Err(ProjectionError::Superseded);
        }
        let tree = self.tree();
        let batch = pending.into_batch(&tree)?;
        tree.apply_batch(batch.writes.into_batch())?;
        self.lock_cache().extend(batch.views);
        // Queries see the views before they are synced: they hold only
        // events that are durable in the log, so a power cut can set them
        // back (the projector applies the events again) but never show
        // what the log lost. Syncing first would add a sync to every
        // read-your-writes wait.
        self.checkpoint.send_replace(batch.checkpoint);
        let mut last_sync = self.last_sync.lock();
        if last_sync.is_none_or(|at| at.elapsed() >= SYNC_EVERY) {
            self.db.sync()?;
            *last_sync = Some(Instant::now());
        }
        Ok(())
    }

    fn lock_cache(&self) -> parking_lot::MutexGuard<'_, ClearingMap<sled::IVec>> {
        self.cached_views.lock()
    }

    /// Writes everything to stable storage.
    pub fn flush(&self) -> Result<(), ProjectionError> {
        self.db.sync()?;
        Ok(())
    }

    /// The id of the event at the checkpoint, when the read models recorded it.
    pub fn checkpoint_event_id(&self) -> Result<Option<[u8; 16]>, ProjectionError> {
        Ok(self
            .tree()
            .get(keys::CHECKPOINT_EVENT)?
            .and_then(|bytes| bytes.as_ref().try_into().ok()))
    }

    /// Replaces the read models with an empty generation at checkpoint 0,
    /// for the projector to rebuild from the log.
    pub fn reset(&self) -> Result<(), ProjectionError> {
        let mut empty = self.start_rebuild()?;
        let _committing = self.commit_lock.lock();
        self.swap(&mut empty)
    }

    /// Up to `max` positions from `from` on of the events that match
    /// `query`, from the position index; see [`IndexedPositions`] for what
    /// its `through` promises. A rebuild swapped in while the index is read
    /// has the same positions in its new generation: the read starts over
    /// there, so nothing is missed while the old one is dropped.
    pub fn indexed_positions(
        &self,
        query: &PositionQuery,
        from: u64,
        max: usize,
    ) -> Result<IndexedPositions, ProjectionError> {
        loop {
            // The checkpoint first: the tree holds at least what it says.
            let checkpoint = self.checkpoint();
            let (tree, number) = {
                let active = self.read_active();
                (active.tree.clone(), active.number)
            };
            let found = crate::positions::matching(&tree, checkpoint, query, from, max);
            if self.generation() == number {
                return found;
            }
        }
    }

    /// Returns the active tree.
    pub(crate) fn tree(&self) -> sled::Tree {
        self.read_active().tree.clone()
    }

    fn read_active(&self) -> parking_lot::RwLockReadGuard<'_, Generation> {
        self.active.read()
    }

    /// The right to rebuild, while no other rebuild runs (an operator's, or
    /// the projector's first pass over the log into empty read models):
    /// two would write the same fresh generation.
    pub fn claim_rebuild(&self) -> Option<RebuildClaim> {
        RebuildClaim::take(&self.rebuilding)
    }

    /// Starts a rebuild into a fresh generation, beside the active one.
    pub fn start_rebuild(&self) -> Result<Rebuild, ProjectionError> {
        let number = self.generation() + 1;
        let name = generation_name(number);
        self.db.db().drop_tree(&name)?;
        let tree = self.db.db().open_tree(&name)?;
        Ok(Rebuild::new(tree, number, CACHED_VIEW_BYTES))
    }

    /// Makes a rebuilt generation the active one, if it has reached the
    /// active checkpoint; returns false (and changes nothing) otherwise.
    pub fn swap_in(&self, rebuild: &mut Rebuild) -> Result<bool, ProjectionError> {
        rebuild.write_pending()?;
        let _committing = self.commit_lock.lock();
        if rebuild.position() < self.checkpoint() {
            return Ok(false);
        }
        self.swap(rebuild)?;
        Ok(true)
    }

    /// Makes `rebuild` the active generation; the caller holds the commit lock.
    fn swap(&self, rebuild: &mut Rebuild) -> Result<(), ProjectionError> {
        let meta = self.db.db().open_tree(META_TREE)?;
        meta.insert(
            ACTIVE_TREE_KEY,
            generation_name(rebuild.number()).as_bytes(),
        )?;
        // The rebuilt views and the switch to them are durable before the
        // old generation is dropped.
        self.db.sync()?;
        let old = {
            let mut active = self.active.write();
            std::mem::replace(
                &mut *active,
                Generation {
                    tree: rebuild.tree().clone(),
                    number: rebuild.number(),
                },
            )
        };
        self.lock_cache().clear();
        self.checkpoint.send_replace(rebuild.position());
        if let Err(error) = self.db.db().drop_tree(old.tree.name()) {
            tracing::warn!(%error, "cannot drop the replaced read models");
        }
        Ok(())
    }

    /// Bytes the read models occupy on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.db.db().size_on_disk().unwrap_or(0)
    }
}

/// One generation of read models: a tree and its number.
struct Generation {
    tree: sled::Tree,
    number: u64,
}

fn generation_name(number: u64) -> String {
    format!("agreements-{number}")
}

fn generation_number(name: &str) -> u64 {
    name.rsplit('-')
        .next()
        .and_then(|number| number.parse().ok())
        .unwrap_or(1)
}

/// The schema of read models that exist already (0 when the key is unreadable).
fn stored_schema(meta: &sled::Tree) -> Result<u32, ProjectionError> {
    Ok(match meta.get(SCHEMA_KEY)? {
        None => UNVERSIONED_SCHEMA,
        Some(bytes) => bytes.as_ref().try_into().map_or(0, u32::from_be_bytes),
    })
}

pub(crate) fn read_checkpoint(tree: &sled::Tree) -> Result<u64, ProjectionError> {
    Ok(tree
        .get(keys::CHECKPOINT)?
        .and_then(|bytes| bytes.as_ref().try_into().ok().map(u64::from_be_bytes))
        .unwrap_or(0))
}
