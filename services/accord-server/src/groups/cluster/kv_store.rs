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
use accord_storage::storage::StoredConsumerGroup;
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

/// A group's progress as this node wrote (or loaded) it; changed in place
/// by the group's own task, the only one that writes it.
#[derive(Default)]
struct GroupProgress {
    /// The revision of its checkpoint value.
    revision: u64,
    /// Its parked events, by page number.
    pages: BTreeMap<u64, Page>,
    /// Pages whose stored value differs from `pages`: rewritten, before the
    /// checkpoint, by the next write (changed pages; every page of a group
    /// whose parked events were still in its checkpoint value, as stored
    /// before pages; pages holding entries beyond the stored checkpoint).
    dirty: BTreeSet<u64>,
}

/// The groups' bucket, written under a lease.
pub(crate) struct NatsGroupStore {
    bucket: kv::Store,
    held: Arc<Held>,
    /// Per group: the revision of its definition.
    definitions: Mutex<HashMap<String, u64>>,
    /// Per group: its progress (locked across the writes of one store).
    progress: Mutex<HashMap<String, Arc<tokio::sync::Mutex<GroupProgress>>>>,
}

/// The epoch of the node that wrote a stored value (0 when it does not
/// decode, or was written before values carried one).
fn progress_epoch(stored: &[u8]) -> u64 {
    StoredGroupProgress::decode(stored).map_or(0, |progress| progress.epoch)
}

fn page_epoch(stored: &[u8]) -> u64 {
    StoredParkedPage::decode(stored).map_or(0, |page| page.epoch)
}

fn definition_epoch(stored: &[u8]) -> u64 {
    StoredConsumerGroup::decode(stored).map_or(0, |definition| definition.epoch)
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
            definitions: Mutex::new(HashMap::new()),
            progress: Mutex::new(HashMap::new()),
        }
    }

    /// Group `name`'s progress (empty for a group not stored yet).
    fn progress_of(&self, name: &str) -> Arc<tokio::sync::Mutex<GroupProgress>> {
        self.progress
            .lock()
            .entry(name.to_owned())
            .or_default()
            .clone()
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
                    if let Some(lost) = self.superseded(epoch_of(stored.value.as_ref())) {
                        return Err(lost);
                    }
                    revision = stored.revision;
                }
                Err(error) => return Err(failed("write", error)),
            }
        }
        Err(StoreError::Unavailable(
            "consumer groups' bucket: a group keeps changing under this node".into(),
        ))
    }

    /// A later holder's write is stored where this node meant to write:
    /// the lease is lost.
    fn superseded(&self, stored_epoch: u64) -> Option<StoreError> {
        (stored_epoch > self.held.epoch).then(|| {
            self.held.lose();
            StoreError::Unavailable("another node runs the consumer groups now; retry".into())
        })
    }

    /// Purges `key` if what is stored there is revision `revision`; when it
    /// is not, a later holder's write means the lease is lost, an earlier
    /// holder's is purged all the same.
    async fn purge_fenced(
        &self,
        key: &str,
        revision: u64,
        epoch_of: fn(&[u8]) -> u64,
    ) -> Result<(), StoreError> {
        let mut revision = revision;
        for _ in 0..3 {
            self.check_lease()?;
            let purged = self.bucket.purge_expect_revision(key, Some(revision)).await;
            let Err(error) = purged else {
                return Ok(());
            };
            let stored = self
                .bucket
                .entry(key)
                .await
                .map_err(|error| failed("read", error))?;
            let Some(stored) = stored.filter(|entry| entry.operation == kv::Operation::Put) else {
                // Nothing is stored there (any more).
                return Ok(());
            };
            if let Some(lost) = self.superseded(epoch_of(stored.value.as_ref())) {
                return Err(lost);
            }
            if stored.revision == revision {
                return Err(failed("delete", error));
            }
            revision = stored.revision;
        }
        Err(StoreError::Unavailable(
            "consumer groups' bucket: a group keeps changing under this node".into(),
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

#[async_trait::async_trait]
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
        let (mut definitions, mut progresses) = (HashMap::new(), HashMap::new());
        for key in keys {
            let Some(name) = name_of_definition(&key) else {
                continue;
            };
            let Some((value, definition_revision)) = self.value(&key).await? else {
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
            let mut stored = GroupProgress {
                revision,
                pages: pages.remove(&name).unwrap_or_default(),
                dirty: BTreeSet::new(),
            };
            for parked in progress.parked {
                let number = parked.position / PARKED_PAGE_SPAN;
                stored
                    .pages
                    .entry(number)
                    .or_default()
                    .parked
                    .insert(parked.position, parked.agreement_id);
                stored.dirty.insert(number);
            }
            // Pages written by a node that stopped before its checkpoint:
            // those events are read from the log again, and the entries go.
            for (number, page) in &mut stored.pages {
                let before = page.parked.len();
                page.parked
                    .retain(|position, _| *position <= progress.checkpoint);
                if page.parked.len() != before {
                    stored.dirty.insert(*number);
                }
            }
            let parked = stored
                .pages
                .values()
                .flat_map(|page| page.parked.iter())
                .map(|(position, agreement)| (*position, agreement.clone()))
                .collect();
            groups.push(StoredGroup {
                name: name.clone(),
                definition,
                checkpoint: progress.checkpoint,
                parked,
            });
            definitions.insert(name.clone(), definition_revision);
            progresses.insert(name, Arc::new(tokio::sync::Mutex::new(stored)));
        }
        *self.definitions.lock() = definitions;
        *self.progress.lock() = progresses;
        Ok(groups)
    }

    async fn create(&self, name: &str, definition: &StoredConsumerGroup) -> Result<(), StoreError> {
        self.check_lease()?;
        // The progress first: a group deleted before under this name may
        // have left its own behind.
        self.purge_pages(name).await?;
        let revision = self
            .write_fenced(
                &progress_key(name),
                self.encode(definition.start),
                0,
                progress_epoch,
            )
            .await?;
        let fresh = GroupProgress {
            revision,
            ..GroupProgress::default()
        };
        self.progress
            .lock()
            .insert(name.to_owned(), Arc::new(tokio::sync::Mutex::new(fresh)));
        self.definitions.lock().remove(name);
        self.update(name, definition).await
    }

    async fn update(&self, name: &str, definition: &StoredConsumerGroup) -> Result<(), StoreError> {
        let revision = self.definitions.lock().get(name).copied().unwrap_or(0);
        let value = StoredConsumerGroup {
            epoch: self.held.epoch,
            ..definition.clone()
        };
        let revision = self
            .write_fenced(
                &definition_key(name),
                value.encode_to_vec().into(),
                revision,
                definition_epoch,
            )
            .await?;
        self.definitions.lock().insert(name.to_owned(), revision);
        Ok(())
    }

    async fn delete(&self, name: &str) -> Result<(), StoreError> {
        let definition = self.definitions.lock().get(name).copied().unwrap_or(0);
        let progress = self.progress_of(name).lock().await.revision;
        self.purge_fenced(&definition_key(name), definition, definition_epoch)
            .await?;
        self.purge_fenced(&progress_key(name), progress, progress_epoch)
            .await?;
        self.purge_pages(name).await?;
        self.definitions.lock().remove(name);
        self.progress.lock().remove(name);
        Ok(())
    }

    async fn progress(&self, name: &str, progress: Progress) -> Result<(), StoreError> {
        let group = self.progress_of(name);
        let mut stored = group.lock().await;
        let stored = &mut *stored;
        if let Some(parked) = progress.parked {
            for position in parked.removed {
                let number = position / PARKED_PAGE_SPAN;
                if let Some(page) = stored.pages.get_mut(&number) {
                    page.parked.remove(&position);
                    stored.dirty.insert(number);
                }
            }
            for (position, agreement) in parked.added {
                let number = position / PARKED_PAGE_SPAN;
                let page = stored.pages.entry(number).or_default();
                page.parked.insert(position, agreement);
                stored.dirty.insert(number);
            }
        }
        // The pages that changed, then the checkpoint; a page stays dirty
        // until it is written, so a failed store is completed by the next.
        while let Some(number) = stored.dirty.first().copied() {
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
                    page_epoch,
                )
                .await?;
            stored.dirty.remove(&number);
        }
        stored.revision = self
            .write_fenced(
                &progress_key(name),
                self.encode(progress.checkpoint),
                stored.revision,
                progress_epoch,
            )
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::groups::cluster::lease::Held;

    fn definition(max_in_flight: u32) -> StoredConsumerGroup {
        StoredConsumerGroup {
            max_in_flight,
            ..Default::default()
        }
    }

    /// What the bucket holds as group "g"'s definition.
    async fn stored_definition(bucket: &kv::Store) -> Option<StoredConsumerGroup> {
        let value = bucket.get(definition_key("g")).await.expect("read")?;
        Some(StoredConsumerGroup::decode(value.as_ref()).expect("decodes"))
    }

    /// Two nodes that both believe they hold the lease (the first was
    /// paused past its lease, say, and has not yet noticed): the earlier
    /// holder's definition writes and deletes land nowhere, and it stops.
    #[tokio::test]
    async fn a_node_with_an_earlier_lease_never_writes_over_a_definition() {
        let nats = nats_process::NatsNode::single().await;
        let client = async_nats::connect(nats.url()).await.expect("connects");
        let jetstream = async_nats::jetstream::new(client);
        let bucket = jetstream
            .create_key_value(kv::Config {
                bucket: "T-groups".into(),
                history: 1,
                ..Default::default()
            })
            .await
            .expect("bucket");
        let long = Duration::from_secs(600);
        let earlier = NatsGroupStore::new(bucket.clone(), Held::for_test(1, long));
        earlier.create("g", &definition(10)).await.expect("created");
        // A second node with the same view loaded before the later holder wrote.
        let stale = NatsGroupStore::new(bucket.clone(), Held::for_test(1, long));
        stale.load().await.expect("loads");
        let later = NatsGroupStore::new(bucket.clone(), Held::for_test(2, long));
        later.load().await.expect("loads");
        later.update("g", &definition(20)).await.expect("updated");

        let refused = earlier.update("g", &definition(30)).await;
        assert!(
            refused.is_err(),
            "an earlier holder updated over a later one"
        );
        assert!(
            earlier.held.lost.is_cancelled(),
            "it knows it lost the lease"
        );
        let refused = stale.delete("g").await;
        assert!(
            refused.is_err(),
            "an earlier holder deleted a later one's group"
        );
        assert!(stale.held.lost.is_cancelled());
        let kept = stored_definition(&bucket).await.expect("still there");
        assert_eq!((kept.max_in_flight, kept.epoch), (20, 2));

        // The later holder itself updates and deletes as usual.
        later.update("g", &definition(40)).await.expect("updated");
        later.delete("g").await.expect("deleted");
        assert_eq!(stored_definition(&bucket).await, None);
        // And creates again under the name, over what the delete left.
        later
            .create("g", &definition(50))
            .await
            .expect("created again");
        assert_eq!(
            stored_definition(&bucket).await.map(|d| d.max_in_flight),
            Some(50)
        );
    }
}
