//! The NATS subjects and buckets of one Accord cluster's consumer groups,
//! named after its log's stream so that two Accord clusters can share a
//! NATS cluster.

/// Where the groups of the cluster whose log is stream `stream` live.
#[derive(Clone, Debug)]
pub(crate) struct Names {
    subjects: String,
    /// Definitions and progress.
    pub(crate) bucket: String,
    /// Which node runs the groups.
    pub(crate) lease_bucket: String,
}

impl Names {
    pub(crate) fn of(stream: &str) -> Self {
        Self {
            subjects: format!("_accord.{stream}.groups"),
            bucket: format!("{stream}-groups"),
            lease_bucket: format!("{stream}-groups-lease"),
        }
    }

    /// Calls to node `node` when it runs the groups (requests). Addressed
    /// to the node the lease names, so that a node that lost the lease
    /// without knowing it yet (paused, cut off) is never asked.
    pub(crate) fn calls(&self, node: &str) -> String {
        format!("{}.calls.{node}", self.subjects)
    }

    /// Members' acknowledgements and departures for node `node` (published).
    pub(crate) fn reports(&self, node: &str) -> String {
        format!("{}.reports.{node}", self.subjects)
    }
}

/// A group name as one token of a key: a name may hold dots (and end
/// with one), which a key may not; it never holds `=`.
fn token(name: &str) -> String {
    name.replace('.', "=")
}

/// The key of group `name`'s definition.
pub(crate) fn definition_key(name: &str) -> String {
    format!("definition.{}", token(name))
}

/// The key of group `name`'s checkpoint and parked events.
pub(crate) fn progress_key(name: &str) -> String {
    format!("progress.{}", token(name))
}

/// Positions per page of a group's parked events.
pub(crate) const PARKED_PAGE_SPAN: u64 = 4_096;

/// The key of page `page` of group `name`'s parked events.
pub(crate) fn parked_page_key(name: &str, page: u64) -> String {
    format!("{}{page}", parked_prefix(name))
}

/// What every key of group `name`'s parked pages starts with.
pub(crate) fn parked_prefix(name: &str) -> String {
    format!("parked.{}.", token(name))
}

/// The group and page number a parked page's key names.
pub(crate) fn page_of_parked_key(key: &str) -> Option<(String, u64)> {
    let (token, page) = key.strip_prefix("parked.")?.rsplit_once('.')?;
    Some((token.replace('=', "."), page.parse().ok()?))
}

/// The group a definition key names.
pub(crate) fn name_of_definition(key: &str) -> Option<String> {
    key.strip_prefix("definition.")
        .map(|token| token.replace('=', "."))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parked_page_keys_name_their_group_and_page() {
        for name in ["a", "orders.v2.", "x..y", "a-b_c.9"] {
            let key = parked_page_key(name, 7);
            assert!(!key.ends_with('.') && !key.contains(".."), "{key}");
            assert!(key.starts_with(&parked_prefix(name)));
            assert_eq!(page_of_parked_key(&key), Some((name.to_owned(), 7)));
        }
        assert_eq!(page_of_parked_key("progress.a"), None);
        assert_eq!(page_of_parked_key("parked.a.x"), None);
    }

    #[test]
    fn every_group_name_makes_a_valid_key_and_comes_back() {
        for name in ["a", "orders.v2.", "x..y", "a-b_c.9"] {
            let key = definition_key(name);
            assert!(
                !key.ends_with('.') && !key.contains(".."),
                "{key} is a valid key"
            );
            assert_eq!(name_of_definition(&key).as_deref(), Some(name));
        }
    }
}
