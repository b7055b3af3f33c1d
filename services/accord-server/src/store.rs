//! Opens the event log the configuration names: the embedded sled log, or
//! a NATS JetStream stream with this node's replica in the data directory.

use std::sync::Arc;

use accord_store::{EventLog, NatsLog, NatsOptions, SledLog, SledOptions};

use crate::config::Config;
use crate::metrics::StoreObserver;
use crate::server_error::ServerError;

/// Which backend `--store` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded log in `DATA_DIR/log`.
    Sled,
    /// A JetStream stream on these servers.
    Nats(String),
}

impl StoreKind {
    /// Reads `--store`.
    pub fn parse(store: &str) -> Result<Self, ServerError> {
        if store == "sled" {
            return Ok(StoreKind::Sled);
        }
        if store
            .split(',')
            .all(|url| url.trim().starts_with("nats://"))
        {
            return Ok(StoreKind::Nats(store.to_owned()));
        }
        Err(ServerError::Config(format!(
            "--store {store:?}: expected `sled` or `nats://HOST:PORT[,nats://HOST:PORT...]`"
        )))
    }
}

/// Opens the log.
pub async fn open(
    config: &Config,
    observer: StoreObserver,
) -> Result<Arc<dyn EventLog>, ServerError> {
    match StoreKind::parse(&config.store)? {
        StoreKind::Sled => {
            let options = SledOptions {
                cache_capacity_bytes: config.cache_bytes,
                observer: Some(Arc::new(observer)),
                ..SledOptions::new(config.data_dir.join("log"))
            };
            let log = tokio::task::spawn_blocking(move || SledLog::open(options))
                .await
                .map_err(|error| ServerError::Io(std::io::Error::other(error)))??;
            Ok(Arc::new(log))
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
                ..NatsOptions::new(servers, replica)
            };
            Ok(Arc::new(NatsLog::open(options).await?))
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
