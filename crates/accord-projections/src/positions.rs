//! The log's positions by event type and by buyer country, so that a
//! filtered read (`ReadLog`, a subscription's catch-up, a consumer group)
//! reads only the events that match instead of scanning the log.
//!
//! Kept by the projector in the read models' generation, committed with its
//! checkpoint: every matching position up to the checkpoint is listed, and
//! what lies past it is read from the log as before. Positions of one value
//! are stored in chunks of at most [`CHUNK_BYTES`]: the key holds the
//! chunk's first position (u64 BE), the value the gaps to each following
//! position as varints. A commit extends the last chunk of each value it
//! touches, or starts a new one when that chunk is full.

use std::collections::HashMap;

use prost::encoding::{decode_varint, encode_varint};

use crate::ProjectionError;
use crate::keys;
use crate::writes::Writes;

/// Most bytes of gaps a chunk takes before the next position starts a new one.
pub(crate) const CHUNK_BYTES: usize = 4_096;

/// Most positions of one value read for one answer, whatever is asked for:
/// what one filtered read holds in memory is bounded (8 bytes a position).
const MOST_PER_VALUE: usize = 65_536;

/// What the log's positions are indexed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PositionIndex {
    /// The event's type (`Event::event_type`).
    EventType,
    /// The buyer country of the event's agreement.
    BuyerCountry,
}

impl PositionIndex {
    fn tag(self) -> u8 {
        match self {
            PositionIndex::EventType => b'e',
            PositionIndex::BuyerCountry => b'c',
        }
    }
}

/// What a filtered read asks the index for: events of any of `event_types`
/// (every type when empty) and of an agreement bought by any of
/// `buyer_countries` (every country when empty).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PositionQuery {
    /// Event types (`Event::TYPES`).
    pub event_types: Vec<String>,
    /// Buyer countries (ISO 3166-1 alpha-2).
    pub buyer_countries: Vec<String>,
}

impl PositionQuery {
    /// True when the index can narrow a read down (some list is given).
    pub fn narrows(&self) -> bool {
        !self.event_types.is_empty() || !self.buyer_countries.is_empty()
    }
}

/// Matching positions of the log, ascending: every matching position from
/// the one asked for through `through` is in `positions`. `through` below
/// the position asked for means the index does not reach it yet (the
/// projector is behind it): read the log instead.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexedPositions {
    /// The matching positions, ascending.
    pub positions: Vec<u64>,
    /// The last position the answer covers.
    pub through: u64,
}

/// Positions folded but not yet written, by index and value.
#[derive(Default)]
pub(crate) struct PositionChanges {
    by_type: HashMap<&'static str, Vec<u64>>,
    by_country: HashMap<String, Vec<u64>>,
}

impl PositionChanges {
    /// Records that the event at `position` has `event_type` and belongs
    /// to an agreement bought by `buyer_country`.
    pub(crate) fn add(&mut self, position: u64, event_type: &'static str, buyer_country: &str) {
        self.by_type.entry(event_type).or_default().push(position);
        match self.by_country.get_mut(buyer_country) {
            Some(positions) => positions.push(position),
            None => {
                self.by_country
                    .insert(buyer_country.to_owned(), vec![position]);
            }
        }
    }

    /// Adds the writes that extend each value's chunks in `tree`.
    pub(crate) fn write(
        self,
        tree: &sled::Tree,
        writes: &mut Writes,
    ) -> Result<(), ProjectionError> {
        for (event_type, positions) in self.by_type {
            let prefix =
                keys::position_prefix(PositionIndex::EventType.tag(), event_type.as_bytes());
            extend(tree, &prefix, &positions, writes)?;
        }
        for (country, positions) in self.by_country {
            let prefix =
                keys::position_prefix(PositionIndex::BuyerCountry.tag(), country.as_bytes());
            extend(tree, &prefix, &positions, writes)?;
        }
        Ok(())
    }
}

/// A chunk being written: its first position, its last, and the gaps.
struct Chunk {
    first: u64,
    last: u64,
    gaps: Vec<u8>,
}

impl Chunk {
    fn starting_at(position: u64) -> Self {
        Self {
            first: position,
            last: position,
            gaps: Vec::new(),
        }
    }

    fn push(&mut self, position: u64) -> Result<(), ProjectionError> {
        if position <= self.last {
            return Err(ProjectionError::Inconsistent(format!(
                "position index: position {position} after {}",
                self.last
            )));
        }
        encode_varint(position - self.last, &mut self.gaps);
        self.last = position;
        Ok(())
    }

    fn write(self, prefix: &[u8], writes: &mut Writes) {
        writes.insert(chunk_key(prefix, self.first), self.gaps.into());
    }
}

/// Appends ascending `positions` to the chunks under `prefix`.
fn extend(
    tree: &sled::Tree,
    prefix: &[u8],
    positions: &[u64],
    writes: &mut Writes,
) -> Result<(), ProjectionError> {
    let Some((&first, rest)) = positions.split_first() else {
        return Ok(());
    };
    // The last chunk takes more positions while it has room.
    let mut chunk = match tree.scan_prefix(prefix).next_back().transpose()? {
        Some((key, gaps)) if gaps.len() < CHUNK_BYTES => {
            let first_stored = chunk_first(prefix, &key)?;
            let mut chunk = Chunk {
                first: first_stored,
                last: Positions::new(first_stored, &gaps).try_fold(0, |_, p| p)?,
                gaps: gaps.to_vec(),
            };
            chunk.push(first)?;
            chunk
        }
        _ => Chunk::starting_at(first),
    };
    for &position in rest {
        if chunk.gaps.len() >= CHUNK_BYTES {
            std::mem::replace(&mut chunk, Chunk::starting_at(position)).write(prefix, writes);
            continue;
        }
        chunk.push(position)?;
    }
    chunk.write(prefix, writes);
    Ok(())
}

fn chunk_key(prefix: &[u8], first: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(prefix.len() + 8);
    key.extend_from_slice(prefix);
    key.extend_from_slice(&first.to_be_bytes());
    key
}

fn chunk_first(prefix: &[u8], key: &[u8]) -> Result<u64, ProjectionError> {
    key.strip_prefix(prefix)
        .and_then(|rest| rest.try_into().ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| ProjectionError::Inconsistent("position index: malformed chunk key".into()))
}

/// The positions of one chunk.
struct Positions<'a> {
    next: Option<u64>,
    gaps: &'a [u8],
}

impl<'a> Positions<'a> {
    fn new(first: u64, gaps: &'a [u8]) -> Self {
        Self {
            next: Some(first),
            gaps,
        }
    }
}

impl Iterator for Positions<'_> {
    type Item = Result<u64, ProjectionError>;

    fn next(&mut self) -> Option<Self::Item> {
        let current = self.next.take()?;
        if !self.gaps.is_empty() {
            match decode_varint(&mut self.gaps) {
                Ok(gap) => self.next = Some(current + gap),
                Err(_) => {
                    return Some(Err(ProjectionError::Inconsistent(
                        "position index: malformed chunk".into(),
                    )));
                }
            }
        }
        Some(Ok(current))
    }
}

/// Up to `most` positions at or after `from` and at most `checkpoint` of
/// one value, and the position through which they are complete.
fn positions_of(
    tree: &sled::Tree,
    prefix: &[u8],
    from: u64,
    checkpoint: u64,
    most: usize,
) -> Result<(Vec<u64>, u64), ProjectionError> {
    let mut positions = Vec::new();
    // The chunk that holds `from` starts at or before it.
    let start = tree
        .range(prefix.to_vec()..=chunk_key(prefix, from))
        .next_back()
        .transpose()?
        .map_or_else(|| prefix.to_vec(), |(key, _)| key.to_vec());
    for entry in tree.range(start..) {
        let (key, gaps) = entry?;
        if !key.starts_with(prefix) {
            break;
        }
        for position in Positions::new(chunk_first(prefix, &key)?, &gaps) {
            let position = position?;
            if position < from {
                continue;
            }
            if position > checkpoint {
                return Ok((positions, checkpoint));
            }
            positions.push(position);
            if positions.len() >= most {
                return Ok((positions, position));
            }
        }
    }
    Ok((positions, checkpoint))
}

/// The positions of any of `values`, merged, and through where complete.
fn union_of(
    tree: &sled::Tree,
    index: PositionIndex,
    values: &[String],
    from: u64,
    checkpoint: u64,
    most: usize,
) -> Result<(Vec<u64>, u64), ProjectionError> {
    let mut merged = Vec::new();
    let mut through = checkpoint;
    for value in values {
        let prefix = keys::position_prefix(index.tag(), value.as_bytes());
        let (positions, complete) = positions_of(tree, &prefix, from, checkpoint, most)?;
        through = through.min(complete);
        merged.extend(positions);
    }
    merged.retain(|position| *position <= through);
    merged.sort_unstable();
    merged.dedup();
    Ok((merged, through))
}

/// The positions of both ascending lists, up to `through`.
fn intersection(left: &[u64], right: &[u64], through: u64) -> Vec<u64> {
    let mut both = Vec::with_capacity(left.len().min(right.len()));
    let mut right = right.iter().peekable();
    for &position in left.iter().take_while(|position| **position <= through) {
        while right.next_if(|other| **other < position).is_some() {}
        if right.peek() == Some(&&position) {
            both.push(position);
        }
    }
    both
}

/// Up to `max` positions from `from` matching `query`, from the index in
/// `tree`, which the read models have brought to `checkpoint`.
pub(crate) fn matching(
    tree: &sled::Tree,
    checkpoint: u64,
    query: &PositionQuery,
    from: u64,
    max: usize,
) -> Result<IndexedPositions, ProjectionError> {
    let from = from.max(1);
    let max = max.clamp(1, MOST_PER_VALUE);
    if from > checkpoint || !query.narrows() {
        return Ok(IndexedPositions {
            positions: Vec::new(),
            through: from - 1,
        });
    }
    // Countries first: usually the narrower list. With both lists, the
    // types are read only as far as the countries reached.
    let union = |index, values: &[String], checkpoint, most| {
        union_of(tree, index, values, from, checkpoint, most)
    };
    let (mut positions, mut through) = if query.buyer_countries.is_empty() {
        union(
            PositionIndex::EventType,
            &query.event_types,
            checkpoint,
            max,
        )?
    } else {
        let (countries, through) = union(
            PositionIndex::BuyerCountry,
            &query.buyer_countries,
            checkpoint,
            max,
        )?;
        if query.event_types.is_empty() {
            (countries, through)
        } else {
            let (types, through) = union(
                PositionIndex::EventType,
                &query.event_types,
                through,
                MOST_PER_VALUE,
            )?;
            (intersection(&countries, &types, through), through)
        }
    };
    if positions.len() > max {
        positions.truncate(max);
        through = positions[max - 1];
    }
    Ok(IndexedPositions { positions, through })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> sled::Tree {
        let db = sled::Config::new().temporary(true).open().expect("db");
        db.open_tree("t").expect("tree")
    }

    fn commit(tree: &sled::Tree, changes: PositionChanges) {
        let mut writes = Writes::default();
        changes.write(tree, &mut writes).expect("writes");
        tree.apply_batch(writes.into_batch()).expect("applies");
    }

    fn query(types: &[&str], countries: &[&str]) -> PositionQuery {
        PositionQuery {
            event_types: types.iter().map(|t| t.to_string()).collect(),
            buyer_countries: countries.iter().map(|c| c.to_string()).collect(),
        }
    }

    /// Every position, its type and country, committed in commits of
    /// `per_commit`: the index answers exactly what a scan would, from any
    /// start, in pieces of any size, across many chunks.
    #[test]
    fn the_index_answers_what_a_scan_would() {
        let tree = tree();
        let types = ["AgreementAnnounced", "AgreementSigned", "DeliveryRecorded"];
        let countries = ["KZ", "UZ", "US", "DE", "FR", "JP", "KR"];
        let log: Vec<(u64, &str, &str)> = (1..=20_000u64)
            .map(|p| {
                let country = if p % 97 == 0 {
                    "KZ"
                } else {
                    countries[(p as usize * 7) % 6 + 1]
                };
                (p, types[(p as usize * 13) % 3], country)
            })
            .collect();
        for (index, commit_of) in log.chunks(777).enumerate() {
            let mut changes = PositionChanges::default();
            for (p, t, c) in commit_of {
                changes.add(*p, t, c);
            }
            // Some commits come one event at a time, as at the head.
            if index % 5 == 0 {
                for (p, t, c) in commit_of {
                    let mut single = PositionChanges::default();
                    single.add(*p, t, c);
                    commit(&tree, single);
                }
            } else {
                commit(&tree, changes);
            }
        }
        let checkpoint = 19_000;
        for (q, from, max) in [
            (query(&[], &["KZ"]), 1, 100),
            (query(&[], &["KZ"]), 5_000, 7),
            (query(&["AgreementSigned"], &[]), 3, 1_000),
            (
                query(&["AgreementSigned", "DeliveryRecorded"], &["KZ", "UZ"]),
                1,
                50,
            ),
            (query(&["AgreementSigned"], &["KZ"]), 17, 3),
            (query(&["Nothing"], &[]), 1, 10),
        ] {
            let expected: Vec<u64> = log
                .iter()
                .filter(|(p, t, c)| {
                    *p <= checkpoint
                        && (q.event_types.is_empty() || q.event_types.iter().any(|x| x == t))
                        && (q.buyer_countries.is_empty()
                            || q.buyer_countries.iter().any(|x| x == c))
                })
                .map(|(p, _, _)| *p)
                .filter(|p| *p >= from)
                .collect();
            let mut found = Vec::new();
            let mut next = from;
            loop {
                let answer = matching(&tree, checkpoint, &q, next, max).expect("answers");
                assert!(answer.positions.len() <= max);
                assert!(
                    answer
                        .positions
                        .iter()
                        .all(|p| *p >= next && *p <= answer.through)
                );
                if answer.through < next {
                    break;
                }
                found.extend(answer.positions);
                next = answer.through + 1;
            }
            assert_eq!(found, expected, "{q:?} from {from} by {max}");
        }
        let chunks = tree.scan_prefix(b"l").count();
        assert!(
            chunks < 40,
            "{chunks} chunks: commits extend the last chunk"
        );
    }

    #[test]
    fn past_the_checkpoint_the_index_answers_nothing() {
        let tree = tree();
        let mut changes = PositionChanges::default();
        changes.add(1, "AgreementAnnounced", "KZ");
        commit(&tree, changes);
        let answer = matching(&tree, 1, &query(&[], &["KZ"]), 2, 10).expect("answers");
        assert_eq!(
            answer,
            IndexedPositions {
                positions: vec![],
                through: 1
            }
        );
    }

    #[test]
    fn a_position_folded_twice_is_refused() {
        let tree = tree();
        let mut changes = PositionChanges::default();
        changes.add(5, "AgreementAnnounced", "KZ");
        commit(&tree, changes);
        let mut again = PositionChanges::default();
        again.add(5, "AgreementAnnounced", "KZ");
        let mut writes = Writes::default();
        assert!(again.write(&tree, &mut writes).is_err());
    }
}
