//! Consumer groups kept in a key-value bucket of the NATS cluster: a
//! group's definition under one key, its checkpoint under another, and its
//! parked events in pages of 4,096 positions (`names::PARKED_PAGE_SPAN`),
//! so that no value comes near nats-server's 1 MiB message limit and a
//! store rewrites only the pages that changed. Pages are written before the
//! checkpoint: a node that stops between the two leaves parked entries
//! beyond the stored checkpoint, which are dropped at load (their events
//! go out again from the log). Only the node holding the lease writes, and
//! each write names the revision it replaces: a node that finds a later
//! holder's write there has lost the lease and stops.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use accord_proto::cluster::{ParkedEvent, StoredGroupProgress, StoredParkedPage};
use accord_proto::storage::StoredConsumerGroup;
use accord_store::StoreError;
use async_nats::jetstream::kv;
use futures_util::TryStreamExt;
use parking_lot::Mutex;
use prost::Message;

use super::lease::Held;
use super::names::{
    PARKED_PAGE_SPAN, definition_key, name_of_definition, page_of_parked_key, parked_page_key,
    parked_prefix, progress_key,
};
use crate::groups::storage::{GroupStorage, Progress, StoredGroup};

/// One page of a group's parked events as stored: its revision (0 when
/// never written) and its entries by position.
#[derive(Clone, Default)]
struct Page {
    revision: u64,
    parked: BTreeMap<u64, String>,
}

/// What this node wrote (or loaded) for a group.
#[derive(Clone, Default)]
struct Written {
    /// The revision of its checkpoint value.
    revision: u64,
    /// Its parked events, by page number.
    pages: BTreeMap<u64, Page>,
    /// Parked events are still in the checkpoint value (as stored before
    /// pages): the next write moves them all to pages.
    unpaged: bool,
}

/// The groups' bucket, written under a lease.
pub(crate) struct NatsGroupStore {
    bucket: kv::Store,
    held: Arc<Held>,
    /// Per group: what is stored.
    written: Mutex<HashMap<String, Written>>,
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

    /// Writes a value over `revision`; on a conflict, looks at who wrote
    /// (`epoch_of` the stored value): a later holder means the lease is
    /// lost, an earlier one (a holder that was still finishing) is written
    /// over.
    async fn write_fenced(
        &self,
        key: &str,
        value: bytes::Bytes,
        revision: u64,
        epoch_of: fn(&[u8]) -> u64,
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
                    let epoch = epoch_of(stored.value.as_ref());
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

    /// Removes every parked page stored for group `name` (a group deleted
    /// before under the name may have left some).
    async fn purge_pages(&self, name: &str) -> Result<(), StoreError> {
        let prefix = parked_prefix(name);
        let keys: Vec<String> = self
            .bucket
            .keys()
            .await
            .map_err(|error| failed("list", error))?
            .try_filter(|key| std::future::ready(key.starts_with(&prefix)))
            .try_collect()
            .await
            .map_err(|error| failed("list", error))?;
        for key in keys {
            self.bucket
                .purge(&key)
                .await
                .map_err(|error| failed("delete", error))?;
        }
        Ok(())
    }

    /// A group's checkpoint as stored, with this node's epoch.
    fn encode(&self, checkpoint: u64) -> bytes::Bytes {
        StoredGroupProgress {
            checkpoint,
            parked: Vec::new(),
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
        let mut pages: HashMap<String, BTreeMap<u64, Page>> = HashMap::new();
        for key in &keys {
            let Some((name, number)) = page_of_parked_key(key) else {
                continue;
            };
            let Some((value, revision)) = self.value(key).await? else {
                continue;
            };
            let page = StoredParkedPage::decode(value.as_ref())
                .map_err(|_| corrupt("a page of parked events does not decode"))?;
            let parked = page
                .parked
                .into_iter()
                .map(|parked| (parked.position, parked.agreement_id))
                .collect();
            pages
                .entry(name)
                .or_default()
                .insert(number, Page { revision, parked });
        }
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
            let mut stored = Written {
                revision,
                pages: pages.remove(&name).unwrap_or_default(),
                unpaged: !progress.parked.is_empty(),
            };
            for parked in progress.parked {
                stored
                    .pages
                    .entry(parked.position / PARKED_PAGE_SPAN)
                    .or_default()
                    .parked
                    .insert(parked.position, parked.agreement_id);
            }
            // Pages written by a node that stopped before its checkpoint:
            // those events are read from the log again.
            let parked = stored
                .pages
                .values()
                .flat_map(|page| page.parked.iter())
                .filter(|(position, _)| **position <= progress.checkpoint)
                .map(|(position, agreement)| (*position, agreement.clone()))
                .collect();
            groups.push(StoredGroup {
                name: name.clone(),
                definition,
                checkpoint: progress.checkpoint,
                parked,
            });
            written.insert(name, stored);
        }
        *self.written.lock() = written;
        Ok(groups)
    }

    async fn create(&self, name: &str, definition: &StoredConsumerGroup) -> Result<(), StoreError> {
        self.check_lease()?;
        // The progress first: a group deleted before under this name may
        // have left its own behind.
        self.purge_pages(name).await?;
        let key = progress_key(name);
        let value = self.encode(definition.start);
        let revision = self
            .bucket
            .put(&key, value)
            .await
            .map_err(|error| failed("write", error))?;
        self.written.lock().insert(
            name.to_owned(),
            Written {
                revision,
                ..Written::default()
            },
        );
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
        self.purge_pages(name).await?;
        self.written.lock().remove(name);
        Ok(())
    }

    async fn progress(&self, name: &str, progress: Progress) -> Result<(), StoreError> {
        let mut stored = self.written.lock().get(name).cloned().unwrap_or_default();
        // The pages that changed, then the checkpoint.
        if let Some(parked) = progress.parked {
            let mut touched: BTreeSet<u64> = BTreeSet::new();
            if std::mem::take(&mut stored.unpaged) {
                touched.extend(stored.pages.keys().copied());
            }
            for position in parked.removed {
                let number = position / PARKED_PAGE_SPAN;
                if let Some(page) = stored.pages.get_mut(&number) {
                    page.parked.remove(&position);
                    touched.insert(number);
                }
            }
            for (position, agreement) in parked.added {
                let number = position / PARKED_PAGE_SPAN;
                stored
                    .pages
                    .entry(number)
                    .or_default()
                    .parked
                    .insert(position, agreement);
                touched.insert(number);
            }
            for number in touched {
                let page = stored.pages.entry(number).or_default();
                let value = StoredParkedPage {
                    parked: page
                        .parked
                        .iter()
                        .map(|(position, agreement)| ParkedEvent {
                            position: *position,
                            agreement_id: agreement.clone(),
                        })
                        .collect(),
                    epoch: self.held.epoch,
                };
                page.revision = self
                    .write_fenced(
                        &parked_page_key(name, number),
                        value.encode_to_vec().into(),
                        page.revision,
                        |stored| StoredParkedPage::decode(stored).map_or(0, |page| page.epoch),
                    )
                    .await?;
            }
        }
        stored.revision = self
            .write_fenced(
                &progress_key(name),
                self.encode(progress.checkpoint),
                stored.revision,
                |stored| StoredGroupProgress::decode(stored).map_or(0, |progress| progress.epoch),
            )
            .await?;
        self.written.lock().insert(name.to_owned(), stored);
        Ok(())
    }
}
