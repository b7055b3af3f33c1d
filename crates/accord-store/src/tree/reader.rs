//! Reads a log tree laid out as in [`super::keys`], never past its durable
//! head. The sled backend reads its own log with it; the NATS backend reads
//! its node-local replica of the JetStream stream with it.

use accord_domain::RecordedEvent;
use tokio::sync::watch;

use super::keys;
use crate::tree::blocks::{Block, block_at};
use crate::tree::index::LogIndex;
use crate::{AppendOutcome, CommandRecord, RawRecord, StoreError, decode_record};

/// Records at the head read without a hand-off to the blocking pool.
const INLINE_TAIL: u64 = 64;

/// Most bytes of records one read of the log returns (at least one record,
/// whatever its size): a batch asked for by count holds events of any size
/// (up to `--max-event-bytes` each), and every reader of the log, a client's
/// stream among them, holds a batch at a time.
pub const READ_BYTES: usize = 1024 * 1024;

/// Reads records and indexes of one tree up to a head.
#[derive(Clone)]
pub(crate) struct TreeReader {
    tree: ::sled::Tree,
    index: LogIndex,
    head: watch::Receiver<u64>,
}

impl TreeReader {
    pub(crate) fn new(tree: ::sled::Tree, index: LogIndex, head: watch::Receiver<u64>) -> Self {
        Self { tree, index, head }
    }

    /// Runs `read` on the blocking pool: sled reads block on the disk, and
    /// the async workers serve every other call meanwhile.
    pub(crate) async fn off_thread<T: Send + 'static>(
        &self,
        read: impl FnOnce(&TreeReader) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let reader = self.clone();
        tokio::task::spawn_blocking(move || read(&reader))
            .await
            .map_err(|error| StoreError::failed("a log read task", error))?
    }

    /// Runs `read` of records from `from_position` on: at once when they
    /// are among the last `INLINE_TAIL` records (just written, in sled's
    /// cache: followers of the head read there after every commit, and a
    /// hand-off to the blocking pool would cost more than the read), else
    /// on the blocking pool.
    pub(crate) async fn near_head<T: Send + 'static>(
        &self,
        from_position: u64,
        read: impl FnOnce(&TreeReader) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        if self.head().saturating_sub(from_position) < INLINE_TAIL {
            read(self)
        } else {
            self.off_thread(read).await
        }
    }

    /// The tree it reads.
    pub(crate) fn tree(&self) -> &::sled::Tree {
        &self.tree
    }

    /// The indexes of the tree it reads.
    pub(crate) fn index(&self) -> &LogIndex {
        &self.index
    }

    pub(crate) fn head(&self) -> u64 {
        *self.head.borrow()
    }

    pub(crate) fn watch_head(&self) -> watch::Receiver<u64> {
        self.head.clone()
    }

    /// Checks that `size` positions are durable and readable here.
    fn within_head(&self, size: u64) -> Result<(), StoreError> {
        let head = self.head();
        if size > head {
            return Err(StoreError::Unavailable(format!(
                "the Merkle tree of {size} positions is beyond the head ({head})"
            )));
        }
        Ok(())
    }

    pub(crate) fn tree_root(&self, size: u64) -> Result<accord_tlog::Hash, StoreError> {
        self.within_head(size)?;
        super::merkle::root(&self.tree, size)
    }

    pub(crate) fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<Vec<accord_tlog::Hash>, StoreError> {
        self.within_head(size)?;
        if index >= size {
            return Err(StoreError::Unavailable(format!(
                "leaf {index} is not in the tree of {size} positions"
            )));
        }
        super::merkle::prove_inclusion(&self.tree, index, size)
    }

    pub(crate) fn tree_tile(
        &self,
        level: u8,
        index: u64,
        width: usize,
    ) -> Result<Vec<accord_tlog::Hash>, StoreError> {
        let nodes = self.head() >> (accord_tlog::TILE_HEIGHT * u32::from(level));
        let end = index
            .saturating_mul(accord_tlog::TILE_WIDTH as u64)
            .saturating_add(width as u64);
        if width == 0 || width > accord_tlog::TILE_WIDTH || end > nodes {
            return Err(StoreError::Unavailable(format!(
                "tile {level}/{index} of width {width} is beyond the head"
            )));
        }
        let id = accord_tlog::TileId { level, index };
        let mut hashes = super::merkle::read_tile(&self.tree, id)?.unwrap_or_default();
        if hashes.len() < width {
            return Err(StoreError::Corrupt(format!(
                "tile {level}/{index} holds {} hashes, the tree needs {width}",
                hashes.len()
            )));
        }
        hashes.truncate(width);
        Ok(hashes)
    }

    pub(crate) fn consistency_proof(
        &self,
        first: u64,
        second: u64,
    ) -> Result<Vec<accord_tlog::Hash>, StoreError> {
        self.within_head(second)?;
        if first > second {
            return Err(StoreError::Unavailable(format!(
                "the tree of {first} positions is not a prefix of the tree of {second}"
            )));
        }
        super::merkle::prove_consistency(&self.tree, first, second)
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
        Ok(decode_record(self.record_from(&mut None, position)?)?.event)
    }

    /// The record at `position`: from `block` when it holds it, else from
    /// the tree, and `block` becomes the block that holds it (callers that
    /// read nearby positions in turn pass the same `block`).
    fn record_from<'b>(
        &self,
        block: &'b mut Option<Block>,
        position: u64,
    ) -> Result<&'b [u8], StoreError> {
        let held = match block {
            Some(block) => block.get(position)?.is_some(),
            None => false,
        };
        if !held {
            *block = block_at(&self.tree, position)?;
        }
        match block {
            Some(block) => block.get(position)?,
            None => None,
        }
        .ok_or_else(|| missing(position))
    }

    /// Maps up to `max_count` durable records from `from_position` on, and
    /// no more than `READ_BYTES` of them; `map` is given each record and the
    /// block that holds it.
    fn durable_records<T>(
        &self,
        from_position: u64,
        max_count: usize,
        mut map: impl FnMut(u64, &[u8], &Block) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let head = self.head();
        let from_position = from_position.max(1);
        if from_position > head || max_count == 0 {
            return Ok(Vec::new());
        }
        // The block holding `from_position` may start before it; readers that
        // follow the head ask for the first position of the next block.
        let start = if self.tree.contains_key(keys::event_key(from_position))? {
            from_position
        } else {
            block_at(&self.tree, from_position)?.map_or(from_position, |block| block.first())
        };
        let mut mapped = Vec::new();
        let mut read = 0;
        for entry in self
            .tree
            .range(keys::event_key(start)..=keys::event_key(head))
        {
            let (key, value) = entry?;
            let first = keys::position_of_event_key(&key)
                .ok_or_else(|| StoreError::Corrupt("malformed record key".into()))?;
            let block = Block::new(first, value);
            for record in block.records() {
                let (position, bytes) = record?;
                if position < from_position {
                    continue;
                }
                if position > head || mapped.len() >= max_count || read >= READ_BYTES {
                    return Ok(mapped);
                }
                read += bytes.len();
                mapped.push(map(position, bytes, &block)?);
            }
        }
        Ok(mapped)
    }

    pub(crate) fn read_log(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.durable_records(from_position, max_count, |_, bytes, _| {
            Ok(decode_record(bytes)?.event)
        })
    }

    pub(crate) fn read_raw(
        &self,
        from_position: u64,
        max_count: usize,
    ) -> Result<Vec<RawRecord>, StoreError> {
        // The records share their blocks' bytes: no copy per record, one
        // shared owner per block.
        let mut shared: Option<SharedBlock> = None;
        self.durable_records(from_position, max_count, |position, bytes, block| {
            let owner = match shared.take() {
                Some(owner) if owner.first == block.first() => owner,
                _ => SharedBlock::of(block),
            };
            let bytes = owner.record(bytes);
            shared = Some(owner);
            Ok(RawRecord { position, bytes })
        })
    }

    pub(crate) fn read_positions(
        &self,
        positions: &[u64],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let head = self.head();
        let mut events = Vec::with_capacity(positions.len());
        let mut read = 0;
        // Nearby positions share a block: keep the last one.
        let mut block: Option<Block> = None;
        for &position in positions {
            if position > head || read >= READ_BYTES {
                break;
            }
            let bytes = self.record_from(&mut block, position)?;
            read += bytes.len();
            events.push(decode_record(bytes)?.event);
        }
        Ok(events)
    }

    pub(crate) fn read_stream(
        &self,
        agreement_id: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let head = self.head();
        let mut events = Vec::new();
        if max_count == 0 {
            return Ok(events);
        }
        let mut read = 0;
        // Events of one agreement written together share a block: keep the last one.
        let mut block: Option<Block> = None;
        self.index
            .for_each_from(agreement_id, from_version, |_, position| {
                if position > head {
                    return Ok(false);
                }
                let bytes = self.record_from(&mut block, position)?;
                read += bytes.len();
                events.push(decode_record(bytes)?.event);
                Ok(events.len() < max_count && read < READ_BYTES)
            })?;
        Ok(events)
    }

    pub(crate) fn stream_positions(
        &self,
        agreement_id: &str,
        from_version: u64,
        max_count: usize,
    ) -> Result<Vec<u64>, StoreError> {
        let head = self.head();
        let mut positions = Vec::new();
        if max_count == 0 {
            return Ok(positions);
        }
        self.index
            .for_each_from(agreement_id, from_version, |_, position| {
                if position > head {
                    return Ok(false);
                }
                positions.push(position);
                Ok(positions.len() < max_count)
            })?;
        Ok(positions)
    }

    pub(crate) fn locate(
        &self,
        agreement_id: &str,
        version: u64,
    ) -> Result<Option<u64>, StoreError> {
        let head = self.head();
        Ok(self
            .index
            .position_of(agreement_id, version)?
            .filter(|position| *position <= head))
    }

    /// The last version of an agreement and its position (0, 0 for none).
    pub(crate) fn last_version(&self, agreement_id: &str) -> Result<(u64, u64), StoreError> {
        self.index.last_version(agreement_id)
    }

    /// What the command index says of `command_id`, once its event is durable.
    pub(crate) async fn find_command(
        &self,
        command_id: &str,
    ) -> Result<Option<CommandRecord>, StoreError> {
        let Some(found) = self.index.find_command(command_id)? else {
            return Ok(None);
        };
        self.wait_for(found.event.position).await?;
        Ok(Some(CommandRecord {
            fingerprint: found.fingerprint,
            outcome: AppendOutcome::of(&found.event, true),
        }))
    }

    /// The position the command index gives for `command_id`.
    pub(crate) fn command_position(&self, command_id: &str) -> Result<Option<u64>, StoreError> {
        self.index.command_position(command_id)
    }

    pub(crate) fn agreement_count(&self) -> Result<u64, StoreError> {
        Ok(self
            .tree
            .get(keys::AGREEMENT_COUNT)?
            .and_then(|bytes| keys::decode_u64(&bytes))
            .unwrap_or(0))
    }
}

fn missing(position: u64) -> StoreError {
    StoreError::Corrupt(format!("index points at missing position {position}"))
}

/// A stored block's bytes, shared by the records read from it.
struct SharedBlock {
    /// The block's first position.
    first: u64,
    /// Where the block's records are sliced from.
    base: usize,
    shared: bytes::Bytes,
}

impl SharedBlock {
    fn of(block: &Block) -> Self {
        Self {
            first: block.first(),
            base: block.value().as_ptr() as usize,
            shared: bytes::Bytes::from_owner(block.value().clone()),
        }
    }

    /// `record`, one of the block's records, as shared bytes.
    fn record(&self, record: &[u8]) -> bytes::Bytes {
        let offset = record.as_ptr() as usize - self.base;
        self.shared.slice(offset..offset + record.len())
    }
}
