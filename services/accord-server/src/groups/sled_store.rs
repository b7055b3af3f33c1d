//! Where consumer groups live on the sled backend: their definitions,
//! checkpoints and parked events in a sled database beside the log
//! (`DATA_DIR/groups`), every change synced before it is acknowledged, and
//! a checkpoint written together with the parked events in one atomic
//! batch, so that a power cut never leaves a parked event below a stored
//! checkpoint without its entry.

use std::path::Path;
use std::sync::Arc;

use accord_storage::storage::StoredConsumerGroup;
use accord_store::{ContainedDrop, StoreError, SyncedDb};
use prost::Message;

use super::storage::{GroupStorage, Progress, StoredGroup};

const DEFINITION: u8 = b'd';
const CHECKPOINT: u8 = b'c';
const PARKED: u8 = b'p';

/// The groups' database.
pub(crate) struct SledGroupStore {
    inner: Arc<Inner>,
}

struct Inner {
    db: ContainedDrop<Arc<SyncedDb>>,
    tree: ::sled::Tree,
}

fn key(prefix: u8, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(name.len() + 2);
    key.push(prefix);
    key.extend_from_slice(name.as_bytes());
    key.push(0);
    key
}

fn parked_key(name: &str, position: u64) -> Vec<u8> {
    let mut key = key(PARKED, name);
    key.extend_from_slice(&position.to_be_bytes());
    key
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("consumer group store: {what}"))
}

impl SledGroupStore {
    /// Opens (or creates) the database in `dir`.
    pub(crate) fn open(dir: &Path) -> Result<Self, StoreError> {
        let config = ::sled::Config::new()
            .path(dir)
            .cache_capacity(16 * 1024 * 1024);
        let db = SyncedDb::open(config, dir)?;
        let tree = db.db().open_tree("groups")?;
        db.sync()?;
        Ok(Self {
            inner: Arc::new(Inner {
                db: ContainedDrop::new(Arc::new(db)),
                tree,
            }),
        })
    }

    /// Runs `work` on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Inner) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|error| {
                StoreError::Unavailable(format!("consumer group store task: {error}"))
            })?
    }
}

#[async_trait::async_trait]
impl GroupStorage for SledGroupStore {
    async fn load(&self) -> Result<Vec<StoredGroup>, StoreError> {
        self.blocking(Inner::load).await
    }

    async fn create(&self, name: &str, definition: &StoredConsumerGroup) -> Result<(), StoreError> {
        let (name, definition) = (name.to_owned(), definition.clone());
        self.blocking(move |inner| inner.create(&name, &definition))
            .await
    }

    async fn update(&self, name: &str, definition: &StoredConsumerGroup) -> Result<(), StoreError> {
        let (name, definition) = (name.to_owned(), definition.clone());
        self.blocking(move |inner| inner.put(&name, &definition))
            .await
    }

    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.blocking(move |inner| inner.delete(&name)).await
    }

    async fn progress(&self, name: &str, progress: Progress) -> Result<(), StoreError> {
        let name = name.to_owned();
        self.blocking(move |inner| inner.progress(&name, &progress))
            .await
    }
}

impl Inner {
    /// Every stored group.
    fn load(&self) -> Result<Vec<StoredGroup>, StoreError> {
        let mut groups = Vec::new();
        for entry in self.tree.scan_prefix([DEFINITION]) {
            let (stored_key, value) = entry?;
            let name = std::str::from_utf8(&stored_key[1..stored_key.len().saturating_sub(1)])
                .map_err(|_| corrupt("a name is not UTF-8"))?
                .to_owned();
            let definition = StoredConsumerGroup::decode(value.as_ref())
                .map_err(|_| corrupt("a definition does not decode"))?;
            let checkpoint = match self.tree.get(key(CHECKPOINT, &name))? {
                Some(bytes) => u64::from_be_bytes(
                    bytes
                        .as_ref()
                        .try_into()
                        .map_err(|_| corrupt("a checkpoint is not 8 bytes"))?,
                ),
                None => definition.start,
            };
            let mut parked = Vec::new();
            for entry in self.tree.scan_prefix(key(PARKED, &name)) {
                let (parked_at, agreement) = entry?;
                let position = parked_at
                    .len()
                    .checked_sub(8)
                    .and_then(|start| parked_at[start..].try_into().ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| corrupt("a parked key is short"))?;
                let agreement = String::from_utf8(agreement.to_vec())
                    .map_err(|_| corrupt("a parked agreement id is not UTF-8"))?;
                parked.push((position, agreement));
            }
            groups.push(StoredGroup {
                name,
                definition,
                checkpoint,
                parked,
            });
        }
        Ok(groups)
    }

    /// Replaces a group's definition.
    fn put(&self, name: &str, definition: &StoredConsumerGroup) -> Result<(), StoreError> {
        self.tree
            .insert(key(DEFINITION, name), definition.encode_to_vec())?;
        self.db.sync()
    }

    /// Writes a new group: its definition, its checkpoint at its start and
    /// no parked event, in one atomic batch, over whatever a group of the
    /// same name left (nothing of it can come back).
    fn create(&self, name: &str, definition: &StoredConsumerGroup) -> Result<(), StoreError> {
        let mut batch = ::sled::Batch::default();
        batch.insert(key(DEFINITION, name), definition.encode_to_vec());
        batch.insert(key(CHECKPOINT, name), &definition.start.to_be_bytes());
        for entry in self.tree.scan_prefix(key(PARKED, name)).keys() {
            batch.remove(entry?);
        }
        self.tree.apply_batch(batch)?;
        self.db.sync()
    }

    /// Removes a group and everything stored for it.
    fn delete(&self, name: &str) -> Result<(), StoreError> {
        let mut batch = ::sled::Batch::default();
        batch.remove(key(DEFINITION, name));
        batch.remove(key(CHECKPOINT, name));
        for entry in self.tree.scan_prefix(key(PARKED, name)).keys() {
            batch.remove(entry?);
        }
        self.tree.apply_batch(batch)?;
        self.db.sync()
    }

    /// Stores a checkpoint and the changes to the parked events, atomically.
    fn progress(&self, name: &str, progress: &Progress) -> Result<(), StoreError> {
        let mut batch = ::sled::Batch::default();
        batch.insert(key(CHECKPOINT, name), &progress.checkpoint.to_be_bytes());
        if let Some(parked) = &progress.parked {
            for (position, agreement) in &parked.added {
                batch.insert(parked_key(name, *position), agreement.as_bytes());
            }
            for position in &parked.removed {
                batch.remove(parked_key(name, *position));
            }
        }
        self.tree.apply_batch(batch)?;
        self.db.sync()
    }
}
