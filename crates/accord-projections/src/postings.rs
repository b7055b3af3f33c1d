//! The secondary indexes (buyer, supplier, sector, stage) as posting pages:
//! the agreement ids under one value, sorted, in pages of at most
//! [`PAGE_BYTES`], each stored under the index's prefix for the value and
//! the page's first id. One key per page instead of one per agreement and
//! value: a commit rewrites the pages its agreements fall in, and a
//! rebuild writes a few thousand pages instead of four keys per agreement.
//!
//! Pages cover disjoint ranges of ids: the page of an id is the last page
//! whose first id is at most the id (or the first page, for an id before
//! every page). A page that grows past [`PAGE_BYTES`] is split in halves;
//! an empty page is removed.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::ProjectionError;
use crate::writes::Writes;

/// Most bytes of ids (separators included) a page holds before it is split.
pub(crate) const PAGE_BYTES: usize = 4_096;

/// Separates the ids in a page (agreement ids never hold it).
const SEPARATOR: u8 = 0;

/// The ids stored in a page.
pub(crate) fn decode_page(bytes: &[u8]) -> Vec<&[u8]> {
    bytes
        .split(|byte| *byte == SEPARATOR)
        .filter(|id| !id.is_empty())
        .collect()
}

fn encode_page(ids: &[&[u8]]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(page_bytes(ids));
    for (index, id) in ids.iter().enumerate() {
        if index > 0 {
            bytes.push(SEPARATOR);
        }
        bytes.extend_from_slice(id);
    }
    bytes
}

fn page_bytes(ids: &[&[u8]]) -> usize {
    ids.iter().map(|id| id.len() + 1).sum()
}

/// The key of the page under `prefix` whose first id is `first`.
fn page_key(prefix: &[u8], first: &[u8]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(first);
    key
}

/// The page under `prefix` that holds `id`, or would (the last page
/// starting at or before it, else the first page): its key and its bytes.
pub(crate) fn page_of(
    tree: &sled::Tree,
    prefix: &[u8],
    id: &str,
) -> Result<Option<(sled::IVec, sled::IVec)>, ProjectionError> {
    let before = tree
        .range(prefix.to_vec()..=page_key(prefix, id.as_bytes()))
        .next_back()
        .transpose()?;
    if before.is_some() {
        return Ok(before);
    }
    Ok(tree.scan_prefix(prefix).next().transpose()?)
}

/// The first id of the page under `prefix` after the one stored at `key`.
fn next_first(
    tree: &sled::Tree,
    prefix: &[u8],
    key: &[u8],
) -> Result<Option<Vec<u8>>, ProjectionError> {
    let after = (Bound::Excluded(key), Bound::Unbounded);
    Ok(tree
        .range::<&[u8], _>(after)
        .next()
        .transpose()?
        .filter(|(next, _)| next.starts_with(prefix))
        .map(|(next, _)| next[prefix.len()..].to_vec()))
}

/// Ids to add to and remove from the posting lists, by prefix (index and
/// value), collected over one commit.
#[derive(Default)]
pub(crate) struct PostingChanges(BTreeMap<Vec<u8>, BTreeMap<String, bool>>);

/// A page a commit changes: the first id it is stored under (empty for the
/// first page of a list that had none), its stored bytes and the changes
/// that fall in it, in id order.
struct ChangedPage {
    first: Vec<u8>,
    stored: Option<sled::IVec>,
    changes: Vec<(String, bool)>,
}

impl ChangedPage {
    /// The page's ids after the changes, borrowed from the stored page and
    /// the changes (merged in one pass, no id copied).
    fn merged(&self) -> Vec<&[u8]> {
        let existing = self.stored.as_deref().map(decode_page).unwrap_or_default();
        let mut merged = Vec::with_capacity(existing.len() + self.changes.len());
        let mut existing = existing.into_iter().peekable();
        for (id, present) in &self.changes {
            let id = id.as_bytes();
            while let Some(next) = existing.next_if(|next| *next < id) {
                merged.push(next);
            }
            existing.next_if(|next| *next == id);
            if *present {
                merged.push(id);
            }
        }
        merged.extend(existing);
        merged
    }
}

impl PostingChanges {
    /// Puts `id` in the list under `prefix`.
    pub(crate) fn add(&mut self, prefix: Vec<u8>, id: &str) {
        self.0
            .entry(prefix)
            .or_default()
            .insert(id.to_owned(), true);
    }

    /// Takes `id` out of the list under `prefix`.
    pub(crate) fn remove(&mut self, prefix: Vec<u8>, id: &str) {
        self.0
            .entry(prefix)
            .or_default()
            .insert(id.to_owned(), false);
    }

    /// Reads the pages the changes fall in and adds the writes that apply
    /// them to `writes`: only those pages are read and rewritten, each read
    /// once (the changes come in id order, so a page found for one id takes
    /// every following id below the next page's first).
    pub(crate) fn write(
        self,
        tree: &sled::Tree,
        writes: &mut Writes,
    ) -> Result<(), ProjectionError> {
        for (prefix, changes) in self.0 {
            let mut pages: Vec<ChangedPage> = Vec::new();
            // The first id of the page after the last one in `pages`; `None`
            // when that page is the list's last.
            let mut bound: Option<Vec<u8>> = None;
            for (id, present) in changes {
                let covered =
                    !pages.is_empty() && bound.as_deref().is_none_or(|bound| id.as_bytes() < bound);
                if !covered {
                    let page = match page_of(tree, &prefix, &id)? {
                        Some((key, stored)) => {
                            bound = next_first(tree, &prefix, &key)?;
                            ChangedPage {
                                first: key[prefix.len()..].to_vec(),
                                stored: Some(stored),
                                changes: Vec::new(),
                            }
                        }
                        None => {
                            bound = None;
                            ChangedPage {
                                first: Vec::new(),
                                stored: None,
                                changes: Vec::new(),
                            }
                        }
                    };
                    pages.push(page);
                }
                if let Some(page) = pages.last_mut() {
                    page.changes.push((id, present));
                }
            }
            for page in &pages {
                let ids = page.merged();
                let mut written = Vec::new();
                for chunk in split(&ids) {
                    let key = page_key(&prefix, chunk[0]);
                    writes.insert(key.clone(), encode_page(chunk).into());
                    written.push(key);
                }
                let old = page_key(&prefix, &page.first);
                if page.stored.is_some() && !written.contains(&old) {
                    writes.remove(old);
                }
            }
        }
        Ok(())
    }
}

/// `ids` in pages of at most [`PAGE_BYTES`] (halves of a page that grew
/// past it, so that the next few ids do not split it again at once).
fn split<'a>(ids: &'a [&'a [u8]]) -> Vec<&'a [&'a [u8]]> {
    if ids.is_empty() {
        return Vec::new();
    }
    if page_bytes(ids) <= PAGE_BYTES || ids.len() == 1 {
        return vec![ids];
    }
    let (low, high) = ids.split_at(ids.len() / 2);
    let mut pages = split(low);
    pages.extend(split(high));
    pages
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    fn ids_under(tree: &sled::Tree, prefix: &[u8]) -> Vec<String> {
        let mut ids = Vec::new();
        for entry in tree.scan_prefix(prefix) {
            let (_, bytes) = entry.expect("reads");
            ids.extend(
                decode_page(&bytes)
                    .into_iter()
                    .map(|id| String::from_utf8_lossy(id).into_owned()),
            );
        }
        ids
    }

    fn commit(tree: &sled::Tree, changes: PostingChanges) {
        let mut writes = Writes::default();
        changes.write(tree, &mut writes).expect("writes");
        tree.apply_batch(writes.into_batch()).expect("applies");
    }

    #[test]
    fn lists_stay_sorted_and_whole_across_splits_and_removals() {
        let db = sled::Config::new().temporary(true).open().expect("opens");
        let tree = db.open_tree("t").expect("tree");
        let prefix = b"bKZ\0".to_vec();
        let mut expected = BTreeSet::new();
        // Ids in a scattered order, a few per commit and many in one, so
        // that pages split, take ids before their first, and empty.
        let order: Vec<u64> = (0..3_000u64).map(|n| (n * 7_919) % 3_000).collect();
        for chunk in order.chunks(37) {
            let mut changes = PostingChanges::default();
            for n in chunk {
                let id = format!("agreement-{n:06}");
                changes.add(prefix.clone(), &id);
                expected.insert(id);
            }
            commit(&tree, changes);
        }
        assert_eq!(
            ids_under(&tree, &prefix),
            expected.iter().cloned().collect::<Vec<_>>()
        );
        let pages = tree.scan_prefix(&prefix).count();
        assert!(pages > 10, "{pages} pages for {} ids", expected.len());
        for entry in tree.scan_prefix(&prefix) {
            let (key, bytes) = entry.expect("reads");
            assert!(bytes.len() <= PAGE_BYTES);
            let first = decode_page(&bytes)[0];
            assert_eq!(
                &key[prefix.len()..],
                first,
                "a page is keyed by its first id"
            );
        }
        let mut changes = PostingChanges::default();
        for n in (0..3_000u64).filter(|n| n % 3 != 0) {
            let id = format!("agreement-{n:06}");
            changes.remove(prefix.clone(), &id);
            expected.remove(&id);
        }
        // Another value's list is untouched.
        changes.add(b"bUZ\0".to_vec(), "agreement-000001");
        commit(&tree, changes);
        assert_eq!(
            ids_under(&tree, &prefix),
            expected.iter().cloned().collect::<Vec<_>>()
        );
        assert_eq!(
            ids_under(&tree, b"bUZ\0"),
            vec!["agreement-000001".to_owned()]
        );
        let mut changes = PostingChanges::default();
        for id in &expected {
            changes.remove(prefix.clone(), id);
        }
        commit(&tree, changes);
        assert_eq!(
            tree.scan_prefix(&prefix).count(),
            0,
            "empty pages are removed"
        );
    }
}
