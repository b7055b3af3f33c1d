//! Where a server's consumer groups are kept: their definitions,
//! checkpoints and parked events. On the embedded store a sled database
//! beside the log (`sled_store`); on NATS a key-value bucket of the cluster
//! (`cluster::kv_store`).

use std::collections::BTreeSet;

use accord_storage::storage::StoredConsumerGroup;
use accord_store::StoreError;

/// A stored group: its definition, checkpoint and parked events.
pub(crate) struct StoredGroup {
    pub(crate) name: String,
    pub(crate) definition: StoredConsumerGroup,
    pub(crate) checkpoint: u64,
    pub(crate) parked: Vec<(u64, String)>,
}

/// What changed in a group's parked events since they were stored.
pub(crate) struct ParkedNow {
    /// Parked since the last write.
    pub(crate) added: Vec<(u64, String)>,
    /// No longer parked since the last write.
    pub(crate) removed: BTreeSet<u64>,
}

/// What a group's task writes: the checkpoint, and the parked events when
/// they changed. Both land together or not at all.
pub(crate) struct Progress {
    pub(crate) checkpoint: u64,
    pub(crate) parked: Option<ParkedNow>,
}

/// The groups' store. Every write is durable when it returns.
#[async_trait::async_trait]
pub(crate) trait GroupStorage: Send + Sync + 'static {
    /// Every stored group.
    async fn load(&self) -> Result<Vec<StoredGroup>, StoreError>;

    /// Writes the definition of a new group (it starts at its start).
    async fn create(&self, name: &str, definition: &StoredConsumerGroup) -> Result<(), StoreError>;

    /// Replaces a group's definition.
    async fn update(&self, name: &str, definition: &StoredConsumerGroup) -> Result<(), StoreError>;

    /// Removes a group and everything stored for it.
    async fn delete(&self, name: &str) -> Result<(), StoreError>;

    /// Stores a group's progress, atomically.
    async fn progress(&self, name: &str, progress: Progress) -> Result<(), StoreError>;
}
