//! Consumer groups kept in a key-value bucket of the NATS cluster: a
//! group's definition under one key, its checkpoint and parked events
//! together under another (one value, so they change together). Only the
//! node holding the lease writes, and each progress write names the
//! revision it replaces: a node that finds a later holder's write there
//! has lost the lease and stops.

use std::collections::HashMap;
use std::sync::Arc;

use accord_proto::cluster::{ParkedEvent, StoredGroupProgress};
use accord_proto::storage::StoredConsumerGroup;
use accord_store::StoreError;
use async_nats::jetstream::kv;
use futures_util::TryStreamExt;
use parking_lot::Mutex;
use prost::Message;

use super::lease::Held;
use super::names::{definition_key, name_of_definition, progress_key};
use crate::groups::storage::{GroupStorage, Progress, StoredGroup};

/// The groups' bucket, written under a lease.
pub(crate) struct NatsGroupStore {
    bucket: kv::Store,
    held: Arc<Held>,
    /// Per group: the revision of its progress value, and the parked
    /// events it holds (rewritten with every checkpoint).
    written: Mutex<HashMap<String, (u64, Vec<ParkedEvent>)>>,
}

fn failed(what: &str, error: impl std::fmt::Display) -> StoreError {
    StoreError::Unavailable(format!("consumer groups' bucket: {what}: {error}"))
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("consumer groups' bucket: {what}"))
}

impl NatsGroupStore {
    pub(crate) fn new(bucket: kv::Store, held: Arc<Held>) -> Self {
        Self {
            bucket,
            held,
            written: Mutex::new(HashMap::new()),
        }
    }

    /// Refuses writes once the lease is not this node's.
    fn check_lease(&self) -> Result<(), StoreError> {
        if self.held.valid() {
            return Ok(());
        }
        Err(StoreError::Unavailable(
            "this node no longer runs the consumer groups (its lease ran out); retry".into(),
        ))
    }

    async fn value(&self, key: &str) -> Result<Option<(bytes::Bytes, u64)>, StoreError> {
        let entry = self
            .bucket
            .entry(key)
            .await
            .map_err(|error| failed("read", error))?;
        Ok(entry.and_then(|entry| {
            (entry.operation == kv::Operation::Put).then_some((entry.value, entry.revision))
        }))
    }

    /// Writes a progress value over `revision`; on a conflict, looks at
    /// who wrote: a later holder means the lease is lost, an earlier one
    /// (a holder that was still finishing) is written over.
    async fn write_progress(
        &self,
        key: &str,
        value: bytes::Bytes,
        revision: u64,
    ) -> Result<u64, StoreError> {
        let mut revision = revision;
        for _ in 0..3 {
            self.check_lease()?;
            match self.bucket.update(key, value.clone(), revision).await {
                Ok(next) => return Ok(next),
                Err(error) if error.kind() == kv::UpdateErrorKind::WrongLastRevision => {
                    let stored = self
                        .bucket
                        .entry(key)
                        .await
                        .map_err(|error| failed("read", error))?;
                    let Some(stored) = stored else {
                        revision = 0;
                        continue;
                    };
                    let epoch = StoredGroupProgress::decode(stored.value.as_ref())
                        .map(|progress| progress.epoch)
                        .unwrap_or(0);
                    if epoch > self.held.epoch {
                        self.held.lose();
                        return Err(StoreError::Unavailable(
                            "another node runs the consumer groups now; retry".into(),
                        ));
                    }
                    revision = stored.revision;
                }
                Err(error) => return Err(failed("write", error)),
            }
        }
        Err(StoreError::Unavailable(
            "consumer groups' bucket: a group's progress keeps changing under this node".into(),
        ))
    }

    /// A group's progress as stored, with this node's epoch.
    fn encode(&self, checkpoint: u64, parked: Vec<ParkedEvent>) -> bytes::Bytes {
        StoredGroupProgress {
            checkpoint,
            parked,
            epoch: self.held.epoch,
        }
        .encode_to_vec()
        .into()
    }
}

#[tonic::async_trait]
impl GroupStorage for NatsGroupStore {
    async fn load(&self) -> Result<Vec<StoredGroup>, StoreError> {
        let keys: Vec<String> = self
            .bucket
            .keys()
            .await
            .map_err(|error| failed("list", error))?
            .try_collect()
            .await
            .map_err(|error| failed("list", error))?;
        let mut groups = Vec::new();
        let mut written = HashMap::new();
        for key in keys {
            let Some(name) = name_of_definition(&key) else {
                continue;
            };
            let Some((value, _)) = self.value(&key).await? else {
                continue;
            };
            let definition = StoredConsumerGroup::decode(value.as_ref())
                .map_err(|_| corrupt("a definition does not decode"))?;
            let (progress, revision) = match self.value(&progress_key(&name)).await? {
                Some((value, revision)) => (
                    StoredGroupProgress::decode(value.as_ref())
                        .map_err(|_| corrupt("a group's progress does not decode"))?,
                    revision,
                ),
                None => (
                    StoredGroupProgress {
                        checkpoint: definition.start,
                        ..Default::default()
                    },
                    0,
                ),
            };
            groups.push(StoredGroup {
                name: name.clone(),
                definition,
                checkpoint: progress.checkpoint,
                parked: progress
                    .parked
                    .iter()
                    .map(|parked| (parked.position, parked.agreement_id.clone()))
                    .collect(),
            });
            written.insert(name, (revision, progress.parked));
        }
        *self.written.lock() = written;
        Ok(groups)
    }

    async fn create(&self, name: &str, definition: &StoredConsumerGroup) -> Result<(), StoreError> {
        self.check_lease()?;
        // The progress first: a group deleted before under this name may
        // have left its own behind.
        let key = progress_key(name);
        let value = self.encode(definition.start, Vec::new());
        let revision = self
            .bucket
            .put(&key, value)
            .await
            .map_err(|error| failed("write", error))?;
        self.written
            .lock()
            .insert(name.to_owned(), (revision, Vec::new()));
        self.update(name, definition).await
    }

    async fn update(&self, name: &str, definition: &StoredConsumerGroup) -> Result<(), StoreError> {
        self.check_lease()?;
        self.bucket
            .put(definition_key(name), definition.encode_to_vec().into())
            .await
            .map_err(|error| failed("write", error))?;
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        self.check_lease()?;
        for key in [definition_key(name), progress_key(name)] {
            self.bucket
                .purge(&key)
                .await
                .map_err(|error| failed("delete", error))?;
        }
        self.written.lock().remove(name);
        Ok(())
    }

    async fn progress(&self, name: &str, progress: Progress) -> Result<(), StoreError> {
        let (revision, parked) = {
            let written = self.written.lock();
            let (revision, parked) = written.get(name).cloned().unwrap_or_default();
            let parked = match progress.parked {
                Some(now) => now
                    .all
                    .into_iter()
                    .map(|(position, agreement_id)| ParkedEvent {
                        position,
                        agreement_id,
                    })
                    .collect(),
                None => parked,
            };
            (revision, parked)
        };
        let key = progress_key(name);
        let stored = StoredGroupProgress {
            checkpoint: progress.checkpoint,
            parked,
            epoch: self.held.epoch,
        };
        let value = stored.encode_to_vec().into();
        let revision = self.write_progress(&key, value, revision).await?;
        self.written
            .lock()
            .insert(name.to_owned(), (revision, stored.parked));
        Ok(())
    }
}
