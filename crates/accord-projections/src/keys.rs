//! Key layout of a read-model tree; everything of one projection generation
//! lives in one tree so that a batch and its checkpoint commit atomically.
//!
//! - `a` + agreement id                     -> agreement view (`accord.storage.v1.AgreementView`)
//! - `b` + buyer country + 0x00 + first id  -> a posting page: sorted agreement ids,
//!   0x00 between them (buyer index; see `crate::postings`)
//! - `u` + supplier country + 0x00 + first id -> a posting page (supplier index)
//! - `t` + sector + 0x00 + first id         -> a posting page (sector index)
//! - `g` + stage (one byte) + 0x00 + first id -> a posting page (stage index)
//! - `p` + buyer country                    -> portfolio sums (`accord.storage.v1.PortfolioSums`)
//! - `l` + `e` + event type + 0x00 + first position (u64 BE) -> a chunk of the log's
//!   positions of that type (`crate::positions`)
//! - `l` + `c` + buyer country + 0x00 + first position (u64 BE) -> a chunk of the log's
//!   positions of agreements bought by that country
//! - `checkpoint`                           -> last applied position (u64 BE)
//! - `checkpoint_event`                     -> id of the event at that position (16 bytes),
//!   so that read models can tell at open whether they follow this log

use accord_domain::{Agreement, Stage};

pub(crate) const CHECKPOINT: &[u8] = b"checkpoint";
pub(crate) const CHECKPOINT_EVENT: &[u8] = b"checkpoint_event";
pub(crate) const AGREEMENT: u8 = b'a';
pub(crate) const PORTFOLIO: u8 = b'p';
pub(crate) const POSITIONS: u8 = b'l';

pub(crate) fn agreement_key(agreement_id: &str) -> Vec<u8> {
    agreement_key_bytes(agreement_id.as_bytes())
}

/// The view key of an agreement id as a posting page holds it.
pub(crate) fn agreement_key_bytes(agreement_id: &[u8]) -> Vec<u8> {
    prefixed(AGREEMENT, agreement_id)
}

/// An index of the agreement views by one of the values lists filter on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Index {
    /// Buyer country.
    Buyer,
    /// Supplier country.
    Supplier,
    /// Sector.
    Sector,
    /// Stage.
    Stage,
}

impl Index {
    /// Every index, in the order a list prefers them (most selective first).
    pub(crate) const ALL: [Index; 4] = [Index::Buyer, Index::Supplier, Index::Sector, Index::Stage];

    fn tag(self) -> u8 {
        match self {
            Index::Buyer => b'b',
            Index::Supplier => b'u',
            Index::Sector => b't',
            Index::Stage => b'g',
        }
    }

    /// The prefix of every entry of this index for `value`.
    pub(crate) fn prefix(self, value: &[u8]) -> Vec<u8> {
        let mut key = prefixed(self.tag(), value);
        key.push(0);
        key
    }

    /// The value `agreement` is indexed under.
    pub(crate) fn value_of(self, agreement: &Agreement) -> Vec<u8> {
        match self {
            Index::Buyer => agreement.buyer.country.as_bytes().to_vec(),
            Index::Supplier => agreement.supplier.country.as_bytes().to_vec(),
            Index::Sector => agreement.sector.as_bytes().to_vec(),
            Index::Stage => vec![stage_byte(agreement.stage)],
        }
    }
}

/// The stage's byte in the stage index.
pub(crate) fn stage_byte(stage: Stage) -> u8 {
    match stage {
        Stage::Announced => 1,
        Stage::Signed => 2,
        Stage::Delivering => 3,
        Stage::Delivered => 4,
    }
}

/// The prefix of the position chunks of `value` in the position index `tag`.
pub(crate) fn position_prefix(tag: u8, value: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(value.len() + 3);
    key.push(POSITIONS);
    key.push(tag);
    key.extend_from_slice(value);
    key.push(0);
    key
}

pub(crate) fn portfolio_key(country: &str) -> Vec<u8> {
    prefixed(PORTFOLIO, country.as_bytes())
}

fn prefixed(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(rest.len() + 1);
    key.push(prefix);
    key.extend_from_slice(rest);
    key
}
