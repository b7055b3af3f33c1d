//! An existing stream is checked whole before Accord uses it as its log:
//! every setting under which JetStream would drop events, let them be
//! deleted, or keep fewer copies than asked refuses the start, naming the
//! setting.

use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};

use crate::StoreError;

/// Refuses a stream whose settings would lose or drop the log's events, or
/// that keeps another number of copies than `replicas`.
pub(crate) fn check_stream(existing: &Config, replicas: usize) -> Result<(), StoreError> {
    let problems = problems(existing, replicas);
    if problems.is_empty() {
        return Ok(());
    }
    Err(StoreError::Unavailable(format!(
        "stream {} cannot hold Accord's log: {}; fix the stream (nats stream edit) or give --nats-stream another name",
        existing.name,
        problems.join("; ")
    )))
}

fn problems(existing: &Config, replicas: usize) -> Vec<String> {
    let mut problems = Vec::new();
    let mut refuse = |setting: &str, found: String, needed: &str| {
        problems.push(format!("{setting} is {found}, Accord needs {needed}"));
    };
    if existing.retention != RetentionPolicy::Limits {
        refuse(
            "retention",
            format!("{:?}", existing.retention),
            "limits (other policies delete consumed events)",
        );
    }
    if existing.storage != StorageType::File {
        refuse(
            "storage",
            format!("{:?}", existing.storage),
            "file (memory loses the log with the server)",
        );
    }
    if !existing.max_age.is_zero() {
        refuse(
            "max_age",
            format!("{:?}", existing.max_age),
            "unlimited (old events would be dropped)",
        );
    }
    if existing.max_messages > 0 {
        refuse(
            "max_msgs",
            existing.max_messages.to_string(),
            "unlimited (old events would be dropped)",
        );
    }
    if existing.max_messages_per_subject > 0 {
        refuse(
            "max_msgs_per_subject",
            existing.max_messages_per_subject.to_string(),
            "unlimited (an agreement's old events would be dropped)",
        );
    }
    if existing.max_bytes > 0 && existing.discard != DiscardPolicy::New {
        refuse(
            "max_bytes with discard old",
            existing.max_bytes.to_string(),
            "unlimited, or discard new (a full stream then refuses appends instead of dropping old events)",
        );
    }
    if !existing.deny_delete {
        refuse(
            "deny_delete",
            "false".into(),
            "true (events are never deleted)",
        );
    }
    if !existing.deny_purge {
        refuse(
            "deny_purge",
            "false".into(),
            "true (the log is never purged)",
        );
    }
    if existing.num_replicas != replicas {
        refuse(
            "replicas",
            existing.num_replicas.to_string(),
            &format!("{replicas} (--nats-replicas)"),
        );
    }
    problems
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn accords(replicas: usize) -> Config {
        Config {
            name: "ACCORD".into(),
            storage: StorageType::File,
            retention: RetentionPolicy::Limits,
            num_replicas: replicas,
            deny_delete: true,
            deny_purge: true,
            ..Config::default()
        }
    }

    #[test]
    fn the_stream_accord_creates_passes() {
        assert!(check_stream(&accords(3), 3).is_ok());
        let mut full_refuses = accords(3);
        full_refuses.max_bytes = 1 << 30;
        full_refuses.discard = DiscardPolicy::New;
        assert!(check_stream(&full_refuses, 3).is_ok());
    }

    #[test]
    fn each_setting_that_loses_events_is_named() {
        type Change = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(&str, Change)> = vec![
            (
                "retention",
                Box::new(|c| c.retention = RetentionPolicy::WorkQueue),
            ),
            ("storage", Box::new(|c| c.storage = StorageType::Memory)),
            (
                "max_age",
                Box::new(|c| c.max_age = Duration::from_secs(3_600)),
            ),
            ("max_msgs", Box::new(|c| c.max_messages = 1_000)),
            (
                "max_msgs_per_subject",
                Box::new(|c| c.max_messages_per_subject = 1),
            ),
            (
                "max_bytes with discard old",
                Box::new(|c| c.max_bytes = 1 << 20),
            ),
            ("deny_delete", Box::new(|c| c.deny_delete = false)),
            ("deny_purge", Box::new(|c| c.deny_purge = false)),
            ("replicas", Box::new(|c| c.num_replicas = 1)),
        ];
        for (setting, change) in cases {
            let mut config = accords(3);
            change(&mut config);
            let error = check_stream(&config, 3).expect_err(setting).to_string();
            assert!(
                error.contains(&format!("{setting} is")),
                "{setting}: {error}"
            );
        }
    }
}
