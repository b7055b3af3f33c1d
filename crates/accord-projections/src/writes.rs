//! The writes of one read-model commit, and the two ways they reach sled:
//! one atomic batch for the active generation, plain inserts in key order
//! for a generation nothing reads yet.

/// The writes of one commit, in the order they were made (no key twice).
#[derive(Default)]
pub(crate) struct Writes(Vec<(Vec<u8>, Option<sled::IVec>)>);

impl Writes {
    pub(crate) fn insert(&mut self, key: Vec<u8>, value: sled::IVec) {
        self.0.push((key, Some(value)));
    }

    pub(crate) fn remove(&mut self, key: Vec<u8>) {
        self.0.push((key, None));
    }

    /// One atomic batch: a commit to read models that serve queries.
    pub(crate) fn into_batch(self) -> sled::Batch {
        let mut batch = sled::Batch::default();
        for (key, value) in self.0 {
            match value {
                Some(value) => batch.insert(key, value),
                None => batch.remove(key),
            }
        }
        batch
    }

    /// Plain writes in key order, for a generation that nothing reads until
    /// it is swapped in (and that is built again after a crash): no sled
    /// batch, so none of its process-wide lock, and each write's copies of
    /// sled's pages are freed as it goes instead of when the whole batch
    /// ends, which is what held a rebuild's peak memory (BENCHMARKS.md).
    pub(crate) fn write_in_key_order(mut self, tree: &sled::Tree) -> sled::Result<()> {
        self.0.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, value) in self.0 {
            match value {
                Some(value) => {
                    tree.insert(key, value)?;
                }
                None => {
                    tree.remove(key)?;
                }
            }
        }
        Ok(())
    }
}
