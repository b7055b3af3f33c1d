//! The storage part: the event log the configuration names (the embedded
//! sled log, or a NATS JetStream stream with this node's replica in the data
//! directory) and the read models beside it, checked against each other.

use std::sync::Arc;

use accord_projections::ReadModels;
use accord_store::{
    CheckpointKeys, EventLog, NatsLog, NatsOptions, NatsSecurity, SledLog, SledOptions, UnsignedLog,
};
use tokio::sync::watch;

use crate::config::Config;
use crate::groups::{ClusterSetup, SledGroupStore};
use crate::metrics::{Metrics, StoreObserver};
use crate::server_error::ServerError;

/// The log and the read models, open and consistent with each other.
pub(crate) struct Storage {
    pub(crate) log: Arc<dyn EventLog>,
    pub(crate) read_models: Arc<ReadModels>,
    /// Turns true when the store failed (it stays failed until reopened).
    pub(crate) failing: watch::Receiver<bool>,
    /// The key checkpoints are signed with and the keys trusted besides.
    pub(crate) keys: CheckpointKeys,
    /// Where the consumer groups are kept.
    pub(crate) groups: GroupsSetup,
}

/// Where the consumer groups are kept: the embedded store's own database
/// (`DATA_DIR/groups`), or the NATS cluster the log is on.
pub(crate) enum GroupsSetup {
    Sled(Arc<SledGroupStore>),
    Cluster(Box<ClusterSetup>),
}

impl Storage {
    /// Creates the data directory if needed, opens the log and the read
    /// models, and rebuilds read models that do not follow the log.
    /// `node_key` seals what the nodes of a NATS cluster say to each other
    /// (derived from the token file; `None` without one).
    pub(crate) async fn open(
        config: &Config,
        metrics: &Arc<Metrics>,
        node_key: Option<[u8; 32]>,
    ) -> Result<Self, ServerError> {
        // Its entry in its parent is made durable when the databases in it
        // open (`SyncedDb` syncs the two directories above each).
        std::fs::create_dir_all(&config.data_dir)?;
        let (failing_sender, failing) = watch::channel(false);
        let observer = StoreObserver {
            metrics: metrics.clone(),
            failing: failing_sender,
        };
        let keys = crate::signing_key::load(config)?;
        let (log, groups) = open(config, observer, keys.clone(), node_key).await?;
        let read_models_dir = config.data_dir.join("read-models");
        let read_models =
            tokio::task::spawn_blocking(move || ReadModels::open(&read_models_dir)).await??;
        let read_models = Arc::new(read_models);
        accord_projections::reconcile(&read_models, log.as_ref()).await?;
        Ok(Self {
            log,
            read_models,
            failing,
            keys,
            groups,
        })
    }
}

/// Which backend `--store` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum StoreKind {
    /// The embedded log in `DATA_DIR/log`.
    Sled,
    /// A JetStream stream on these servers.
    Nats(String),
}

impl StoreKind {
    /// Reads `--store`.
    pub(crate) fn parse(store: &str) -> Result<Self, ServerError> {
        if store == "sled" {
            return Ok(StoreKind::Sled);
        }
        if store.split(',').all(|url| {
            ["nats://", "tls://"]
                .iter()
                .any(|scheme| url.trim().starts_with(scheme))
        }) {
            return Ok(StoreKind::Nats(store.to_owned()));
        }
        Err(ServerError::Config(format!(
            "--store: expected `sled` or `nats://HOST:PORT[,nats://HOST:PORT...]` (or tls://), got {:?}",
            accord_store::redacted_nats_servers(store)
        )))
    }
}

/// Opens the log and says where the consumer groups go.
async fn open(
    config: &Config,
    observer: StoreObserver,
    keys: CheckpointKeys,
    node_key: Option<[u8; 32]>,
) -> Result<(Arc<dyn EventLog>, GroupsSetup), ServerError> {
    match StoreKind::parse(&config.store)? {
        StoreKind::Sled => {
            let options = SledOptions {
                cache_capacity_bytes: config.cache_bytes,
                index_window_records: config.index_window_records,
                observer: Some(Arc::new(observer)),
                unsigned: if config.adopt_unsigned_log {
                    UnsignedLog::AdoptOnce
                } else {
                    UnsignedLog::Refuse
                },
                ..SledOptions::new(config.data_dir.join("log"), keys)
            };
            let log = tokio::task::spawn_blocking(move || SledLog::open(options)).await??;
            let groups_dir = config.data_dir.join("groups");
            let groups =
                tokio::task::spawn_blocking(move || SledGroupStore::open(&groups_dir)).await??;
            Ok((Arc::new(log), GroupsSetup::Sled(Arc::new(groups))))
        }
        StoreKind::Nats(servers) => {
            let replica = config
                .data_dir
                .join("nats-replica")
                .join(&config.nats_stream);
            let options = NatsOptions {
                stream: config.nats_stream.clone(),
                replicas: usize::from(config.nats_replicas),
                cache_capacity_bytes: config.cache_bytes,
                observer: Some(Arc::new(observer)),
                security: NatsSecurity {
                    creds_file: config.nats_creds.clone(),
                    nkey_file: config.nats_nkey.clone(),
                    tls_ca: config.nats_tls_ca.clone(),
                    tls_client: config
                        .nats_tls_cert
                        .clone()
                        .zip(config.nats_tls_key.clone()),
                },
                ..NatsOptions::new(servers, replica, keys)
            };
            let log = NatsLog::open(options).await?;
            let (stream, replicas) = log.stream();
            let groups = GroupsSetup::Cluster(Box::new(ClusterSetup {
                client: log.client(),
                jetstream: log.jetstream(),
                stream: stream.to_owned(),
                replicas,
                max_parked: config.max_parked_per_group,
                key: crate::groups::NodeKey::new(node_key),
            }));
            Ok((Arc::new(log), groups))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_names_sled_or_nats_urls() {
        assert_eq!(StoreKind::parse("sled").ok(), Some(StoreKind::Sled));
        assert_eq!(
            StoreKind::parse("nats://a:4222,nats://b:4222").ok(),
            Some(StoreKind::Nats("nats://a:4222,nats://b:4222".into()))
        );
        assert!(StoreKind::parse("postgres://x").is_err());
        assert!(StoreKind::parse("nats://a:1,http://b").is_err());
    }
}
