//! The group-commit size distribution and the time a group's sync took,
//! read from the server's `accord_group_commit_events` and
//! `accord_fsync_seconds` histograms before and after a run.

use std::collections::BTreeMap;

const METRIC: &str = "accord_group_commit_events";
const SYNC_METRIC: &str = "accord_fsync_seconds";
const STORE_WRITES: &str = "accord_log_store_writes_total";
const APPENDED: &str = "accord_appended_events_total";

/// A cumulative Prometheus histogram: `(upper bound, count)` per bucket.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct GroupCommits {
    buckets: Vec<(f64, f64)>,
    sum: f64,
    count: f64,
}

/// Both histograms of a group commit.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct CommitMetrics {
    sizes: GroupCommits,
    syncs: GroupCommits,
    /// Keys written into the log's tree, and events appended (counters).
    store_writes: f64,
    appended: f64,
}

/// The value of the unlabelled counter `metric`, 0 when absent.
fn counter(exposition: &str, metric: &str) -> f64 {
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(metric)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

impl CommitMetrics {
    /// Reads both histograms out of a Prometheus text exposition.
    pub(crate) fn parse(exposition: &str) -> Self {
        Self {
            sizes: GroupCommits::parse_metric(exposition, METRIC),
            syncs: GroupCommits::parse_metric(exposition, SYNC_METRIC),
            store_writes: counter(exposition, STORE_WRITES),
            appended: counter(exposition, APPENDED),
        }
    }

    /// What was observed after `earlier`.
    pub(crate) fn since(&self, earlier: &Self) -> Self {
        Self {
            sizes: self.sizes.since(&earlier.sizes),
            syncs: self.syncs.since(&earlier.syncs),
            store_writes: self.store_writes - earlier.store_writes,
            appended: self.appended - earlier.appended,
        }
    }

    /// The group-commit figures, and the mean time of a group's sync (on
    /// sled sled's flush and the `fdatasync`s; on NATS the time until the
    /// stream acknowledged and the replica held the append).
    pub(crate) fn figures(&self) -> BTreeMap<String, f64> {
        let mut figures = self.sizes.figures();
        if self.syncs.count > 0.0 {
            figures.insert(
                "sync_mean_ms".into(),
                1_000.0 * self.syncs.sum / self.syncs.count,
            );
        }
        // The embedded store's keys per event (NATS exports none).
        if self.store_writes > 0.0 && self.appended > 0.0 {
            figures.insert(
                "store_writes_per_event".into(),
                self.store_writes / self.appended,
            );
        }
        figures
    }
}

impl GroupCommits {
    /// Reads the histogram `metric` out of a Prometheus text exposition.
    fn parse_metric(exposition: &str, metric: &str) -> Self {
        let mut histogram = Self::default();
        for line in exposition.lines() {
            let Some((name, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let Ok(value) = value.parse::<f64>() else {
                continue;
            };
            let Some(series) = name.strip_prefix(metric) else {
                continue;
            };
            match series {
                "_sum" => histogram.sum = value,
                "_count" => histogram.count = value,
                _ => {
                    let Some(labels) = series.strip_prefix("_bucket{le=\"") else {
                        continue;
                    };
                    let bound = match labels.trim_end_matches("\"}") {
                        "+Inf" => f64::INFINITY,
                        bound => bound.parse().unwrap_or(f64::NAN),
                    };
                    histogram.buckets.push((bound, value));
                }
            }
        }
        histogram
    }

    /// What was observed after `earlier`.
    pub(crate) fn since(&self, earlier: &Self) -> Self {
        let buckets = self
            .buckets
            .iter()
            .map(|(bound, count)| {
                let before = earlier
                    .buckets
                    .iter()
                    .find(|(other, _)| other == bound)
                    .map_or(0.0, |(_, count)| *count);
                (*bound, count - before)
            })
            .collect();
        Self {
            buckets,
            sum: self.sum - earlier.sum,
            count: self.count - earlier.count,
        }
    }

    /// The upper bound of the bucket holding quantile `q`.
    fn quantile_bound(&self, q: f64) -> f64 {
        let wanted = q * self.count;
        self.buckets
            .iter()
            .find(|(_, cumulative)| *cumulative >= wanted)
            .map_or(f64::NAN, |(bound, _)| *bound)
    }

    /// Figures for the report: groups, mean events per group, and the
    /// bucket bounds at the median and the 99th percentile.
    pub(crate) fn figures(&self) -> BTreeMap<String, f64> {
        let mut figures = BTreeMap::new();
        if self.count <= 0.0 {
            return figures;
        }
        figures.insert("group_commits".into(), self.count);
        figures.insert("group_commit_mean_events".into(), self.sum / self.count);
        figures.insert(
            "group_commit_p50_events_le".into(),
            self.quantile_bound(0.5),
        );
        figures.insert(
            "group_commit_p99_events_le".into(),
            self.quantile_bound(0.99),
        );
        figures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEFORE: &str = "# HELP accord_group_commit_events Events written by one group commit
# TYPE accord_group_commit_events histogram
accord_group_commit_events_bucket{le=\"1.0\"} 2
accord_group_commit_events_bucket{le=\"2.0\"} 2
accord_group_commit_events_bucket{le=\"4.0\"} 2
accord_group_commit_events_bucket{le=\"+Inf\"} 2
accord_group_commit_events_sum 2.0
accord_group_commit_events_count 2
accord_appended_events_total 2
";

    const AFTER: &str = "accord_group_commit_events_bucket{le=\"1.0\"} 3
accord_group_commit_events_bucket{le=\"2.0\"} 52
accord_group_commit_events_bucket{le=\"4.0\"} 101
accord_group_commit_events_bucket{le=\"+Inf\"} 102
accord_group_commit_events_sum 312.0
accord_group_commit_events_count 102
";

    #[test]
    fn the_distribution_of_a_run_is_the_difference_of_two_readings() {
        let run = GroupCommits::parse_metric(AFTER, METRIC)
            .since(&GroupCommits::parse_metric(BEFORE, METRIC));
        let figures = run.figures();
        assert_eq!(figures["group_commits"], 100.0);
        assert_eq!(figures["group_commit_mean_events"], 3.1);
        assert_eq!(figures["group_commit_p50_events_le"], 2.0);
        assert_eq!(figures["group_commit_p99_events_le"], 4.0);
    }

    #[test]
    fn the_store_writes_per_event_come_from_the_two_counters() {
        let before = "accord_log_store_writes_total 50\naccord_appended_events_total 10\n";
        let after = "accord_log_store_writes_total 350\naccord_appended_events_total 110\n";
        let figures = CommitMetrics::parse(after)
            .since(&CommitMetrics::parse(before))
            .figures();
        assert_eq!(figures.get("store_writes_per_event"), Some(&3.0));
        assert_eq!(
            CommitMetrics::parse("")
                .figures()
                .get("store_writes_per_event"),
            None
        );
    }

    #[test]
    fn no_histogram_gives_no_figures() {
        assert!(CommitMetrics::parse("up 1\n").figures().is_empty());
    }

    #[test]
    fn the_mean_sync_time_comes_from_the_fsync_histogram() {
        let before = "accord_fsync_seconds_sum 1.0\naccord_fsync_seconds_count 10\n";
        let after = "accord_fsync_seconds_sum 1.5\naccord_fsync_seconds_count 110\n";
        let figures = CommitMetrics::parse(after)
            .since(&CommitMetrics::parse(before))
            .figures();
        assert_eq!(figures["sync_mean_ms"], 5.0);
        assert!(!figures.contains_key("group_commits"));
    }
}
