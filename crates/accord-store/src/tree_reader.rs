//! Reads a log tree laid out as in [`crate::keys`], never past its durable
//! head. The sled backend reads its own log with it; the NATS backend reads
//! its node-local replica of the JetStream stream with it.

use accord_domain::RecordedEvent;
use tokio::sync::watch;

use crate::keys;
use crate::{AppendOutcome, CommandRecord, Fingerprint, RawRecord, StoreError, decode_record};

/// Reads records and indexes of one tree up to a head.
#[derive(Clone)]
pub(crate) struct TreeReader {
    tree: ::sled::Tree,
    head: watch::Receiver<u64>,
}

impl TreeReader {
    pub(crate) fn new(tree: ::sled::Tree, head: watch::Receiver<u64>) -> Self {
        Self { tree, head }
    }

    pub(crate) fn head(&self) -> u64 {
        *self.head.borrow()
    }

    pub(crate) fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }

    /// Waits until the head reaches `position`.
    pub(crate) async fn wait_for(&self, position: u64) -> Result<(), StoreError> {
        let mut head = self.head.clone();
        head.wait_for(|head| *head >= position)
            .await
            .map(|_| ())
            .map_err(|_| StoreError::Unavailable("the log stopped".into()))
    }

    pub(crate) fn read_position(&self, position: u64) -> Result<RecordedEvent, StoreError> {
        let bytes = self.tree.get(keys::event_key(position))?.ok_or_else(|| {
            StoreError::Corrupt(format!("index points at missing position {position}"))
        })?;
        Ok(decode_record(&bytes)?.event)
    }

    /// Maps up to `max_count` durable records from `from_position` on.
    fn durable_records<T>(
        &self,
        from_position: u64,
        max_count: usize,
        mut map: impl FnMut(u64, ::sled::IVec) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let head = self.head();
        let from_position = from_position.max(1);
        if from_position > head || max_count == 0 {
            return Ok(Vec::new());
        }
        self.tree
            .range(keys::event_key(from_position)..=keys::event_key(head))
            .take(max_count)
            .map(|entry| {
                let (key, bytes) = entry?;
                let position = keys::position_of_event_key(&key)
                    .ok_or_else(|| StoreError::Corrupt("malformed record key".into()))?;
                map(position, bytes)
            })
            .collect()
    }

    pub(crate) fn read_log(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.durable_records(from_position, max_count, |_, bytes| {
            Ok(decode_record(&bytes)?.event)
        })
    }

    pub(crate) fn read_raw(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RawRecord>, StoreError> {
        self.durable_records(from_position, max_count, |position, bytes| {
            Ok(RawRecord {
                position,
                bytes: bytes.to_vec(),
            })
        })
    }

    pub(crate) fn read_stream(
        &self,
        agreement_id: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let head = self.head();
        let start = keys::stream_key(agreement_id, from_version.max(1));
        let end = keys::stream_key(agreement_id, u64::MAX);
        let mut events = Vec::new();
        for entry in self.tree.range(start..=end) {
            if events.len() >= max_count {
                break;
            }
            let (_, position) = entry?;
            let position = keys::decode_u64(&position)
                .ok_or_else(|| StoreError::Corrupt("stream index entry too short".into()))?;
            if position > head {
                break;
            }
            events.push(self.read_position(position)?);
        }
        Ok(events)
    }

    pub(crate) fn locate(
        &self,
        agreement_id: &str,
        version: u64,
    ) -> Result<Option<u64>, StoreError> {
        let head = self.head();
        Ok(self
            .tree
            .get(keys::stream_key(agreement_id, version))?
            .and_then(|bytes| keys::decode_u64(&bytes))
            .filter(|position| *position <= head))
    }

    /// The last version of an agreement and its position (0, 0 for none).
    pub(crate) fn last_version(&self, agreement_id: &str) -> Result<(u64, u64), StoreError> {
        last_version_in(&self.tree, agreement_id)
    }

    /// What the command index says of `command_id`, once its event is durable.
    pub(crate) async fn find_command(
        &self,
        command_id: &str,
    ) -> Result<Option<CommandRecord>, StoreError> {
        let Some((fingerprint, outcome)) = command_outcome_in(&self.tree, command_id)? else {
            return Ok(None);
        };
        self.wait_for(outcome.position).await?;
        Ok(Some(CommandRecord {
            fingerprint,
            outcome,
        }))
    }

    /// True when the command index holds `command_id`.
    pub(crate) fn has_command(&self, command_id: &str) -> Result<bool, StoreError> {
        Ok(self.tree.get(keys::command_key(command_id))?.is_some())
    }

    pub(crate) fn agreement_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .tree
            .get(keys::AGREEMENT_COUNT)?
            .and_then(|bytes| keys::decode_u64(&bytes))
            .unwrap_or(0))
    }
}

/// The last version of an agreement in `tree` and its position (0, 0 for none).
pub(crate) fn last_version_in(
    tree: &::sled::Tree,
    agreement_id: &str,
) -> Result<(u64, u64), StoreError> {
    match tree
        .scan_prefix(keys::stream_prefix(agreement_id))
        .next_back()
    {
        Some(entry) => {
            let (key, position) = entry?;
            let version = keys::version_of_stream_key(&key)
                .ok_or_else(|| StoreError::Corrupt("malformed stream key".into()))?;
            let position = keys::decode_u64(&position)
                .ok_or_else(|| StoreError::Corrupt("stream index entry too short".into()))?;
            Ok((version, position))
        }
        None => Ok((0, 0)),
    }
}

/// What the command index of `tree` says of `command_id`: the fingerprint
/// recorded with it and its outcome, marked as a duplicate.
pub(crate) fn command_outcome_in(
    tree: &::sled::Tree,
    command_id: &str,
) -> Result<Option<(Fingerprint, AppendOutcome)>, StoreError> {
    let Some(entry) = tree.get(keys::command_key(command_id))? else {
        return Ok(None);
    };
    let (fingerprint, position) = keys::decode_command_entry(&entry)?;
    let bytes = tree.get(keys::event_key(position))?.ok_or_else(|| {
        StoreError::Corrupt(format!(
            "command {command_id:?} points at missing position {position}"
        ))
    })?;
    let event = decode_record(&bytes)?.event;
    Ok(Some((fingerprint, AppendOutcome::of(&event, true))))
}
