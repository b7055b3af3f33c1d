//! Key layout of a read-model tree; everything of one projection generation
//! lives in one tree so that a batch and its checkpoint commit atomically.
//!
//! - `a` + agreement id                     -> agreement view (`accord.storage.v1.AgreementView`)
//! - `b` + buyer country + 0x00 + agreement id -> empty (buyer index)
//! - `p` + buyer country                    -> portfolio sums (`accord.storage.v1.PortfolioSums`)
//! - `checkpoint`                           -> last applied position (u64 BE)
//! - `checkpoint_event`                     -> id of the event at that position (16 bytes),
//!   so that read models can tell at open whether they follow this log

pub(crate) const CHECKPOINT: &[u8] = b"checkpoint";
pub(crate) const CHECKPOINT_EVENT: &[u8] = b"checkpoint_event";
pub(crate) const AGREEMENT: u8 = b'a';
pub(crate) const BUYER: u8 = b'b';
pub(crate) const PORTFOLIO: u8 = b'p';

pub(crate) fn agreement_key(agreement_id: &str) -> Vec<u8> {
    prefixed(AGREEMENT, agreement_id.as_bytes())
}

pub(crate) fn buyer_prefix(country: &str) -> Vec<u8> {
    let mut key = prefixed(BUYER, country.as_bytes());
    key.push(0);
    key
}

pub(crate) fn buyer_key(country: &str, agreement_id: &str) -> Vec<u8> {
    let mut key = buyer_prefix(country);
    key.extend_from_slice(agreement_id.as_bytes());
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
