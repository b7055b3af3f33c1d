//! Connecting: server version, the stream and its settings.

use std::time::{Duration, Instant};

use async_nats::jetstream::context::CreateStreamErrorKind;
use async_nats::jetstream::{self, ErrorCode, stream};

use super::NatsOptions;
use super::subject::stream_subjects;
use crate::StoreError;

/// The oldest nats-server Accord runs on.
const MIN_VERSION: (u64, u64) = (2, 10);
/// The first nats-server with atomic batch publish.
const ATOMIC_BATCH_VERSION: (u64, u64) = (2, 12);
/// The first nats-server known to take `Nats-Msg-Id` inside an atomic batch
/// (it refuses a batch holding a message id it has seen).
const BATCH_MESSAGE_ID_VERSION: (u64, u64) = (2, 14);
/// How long to wait for a new cluster to elect its JetStream leaders (a
/// cluster whose nodes all boot at once on busy machines can take a while).
const READY_WITHIN: Duration = Duration::from_secs(90);

/// A connection to the stream.
pub(crate) struct Connected {
    pub(crate) client: async_nats::Client,
    pub(crate) jetstream: jetstream::Context,
    pub(crate) stream: stream::Stream,
    pub(crate) atomic_batches: bool,
    pub(crate) batch_message_ids: bool,
    pub(crate) server_version: String,
    /// The stream's duplicate window (an existing stream keeps its own).
    pub(crate) duplicate_window: Duration,
}

/// Connects, refuses servers older than 2.10, and creates (or checks) the stream.
pub(crate) async fn connect(options: &NatsOptions) -> Result<Connected, StoreError> {
    let addresses = options
        .servers
        .split(',')
        .map(|address| address.trim().parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| {
            StoreError::Unavailable(format!(
                "invalid NATS address {:?}: {error}",
                redacted(&options.servers)
            ))
        })?;
    let client = connect_options(options, &addresses)
        .await?
        .name("accord-server")
        .request_timeout(Some(options.request_timeout))
        .connect(addresses)
        .await
        .map_err(|error| {
            StoreError::Unavailable(format!(
                "cannot connect to NATS at {}: {error}",
                redacted(&options.servers)
            ))
        })?;
    let server_version = client.server_info().version;
    let version = parse_version(&server_version);
    if version < MIN_VERSION {
        return Err(StoreError::Unavailable(format!(
            "nats-server {server_version} at {} is too old: Accord needs 2.10 or newer \
             (the per-subject expected sequence it relies on is not safe in a 2.9 cluster, \
             and 2.10 adds sync_interval: always)",
            redacted(&options.servers)
        )));
    }
    let atomic_batches = version >= ATOMIC_BATCH_VERSION;
    let batch_message_ids = version >= BATCH_MESSAGE_ID_VERSION;
    let mut jetstream = jetstream::new(client.clone());
    jetstream.set_timeout(options.request_timeout);
    let config = stream::Config {
        name: options.stream.clone(),
        subjects: stream_subjects(),
        num_replicas: options.replicas,
        storage: stream::StorageType::File,
        retention: stream::RetentionPolicy::Limits,
        duplicate_window: options.duplicate_window,
        allow_direct: true,
        allow_atomic_publish: atomic_batches,
        deny_delete: true,
        deny_purge: true,
        ..stream::Config::default()
    };
    let stream = ensure_stream(&jetstream, config).await?;
    let stream_config = &stream.cached_info().config;
    super::stream_check::check_stream(stream_config, options.replicas)?;
    if stream_config.num_replicas < 2 {
        tracing::warn!(
            stream = %stream_config.name,
            replicas = stream_config.num_replicas,
            "the stream is not replicated: an acknowledged append lives on one nats-server's disk \
             (durable through its power loss only with sync_interval: always), and is lost with that disk"
        );
    }
    let duplicate_window = stream_config.duplicate_window;
    Ok(Connected {
        duplicate_window,
        client,
        jetstream,
        stream,
        atomic_batches,
        batch_message_ids,
        server_version,
    })
}

/// Gets the stream, creating it if missing; waits while a new cluster
/// elects its leaders.
async fn ensure_stream(
    jetstream: &jetstream::Context,
    config: stream::Config,
) -> Result<stream::Stream, StoreError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        match jetstream.get_or_create_stream(config.clone()).await {
            Ok(stream) => {
                let existing = &stream.cached_info().config;
                if existing.subjects != config.subjects {
                    return Err(StoreError::Unavailable(format!(
                        "stream {} captures {:?}, Accord needs {:?}",
                        config.name, existing.subjects, config.subjects
                    )));
                }
                if config.allow_atomic_publish && !existing.allow_atomic_publish {
                    let mut updated = existing.clone();
                    updated.allow_atomic_publish = true;
                    jetstream.update_stream(updated).await.map_err(|error| {
                        StoreError::Unavailable(format!(
                            "cannot allow atomic batches on stream {}: {error}",
                            config.name
                        ))
                    })?;
                    return jetstream.get_stream(&config.name).await.map_err(|error| {
                        StoreError::failed(format!("stream {}", config.name), error)
                    });
                }
                return Ok(stream);
            }
            Err(error) if started.elapsed() < READY_WITHIN => {
                if started.elapsed() > Duration::from_secs(5) {
                    tracing::info!(%error, "waiting for JetStream to be ready");
                } else {
                    tracing::debug!(%error, "JetStream not ready yet");
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            Err(error) => {
                let out_of_resources = matches!(
                    error.kind(),
                    CreateStreamErrorKind::JetStream(refusal)
                        if refusal.error_code() == ErrorCode::INSUFFICIENT_RESOURCES
                );
                let hint = if out_of_resources {
                    format!(
                        " ({} replicas asked for: a cluster needs at least as many JetStream servers; give --nats-replicas 1 for a single nats-server)",
                        config.num_replicas
                    )
                } else {
                    String::new()
                };
                return Err(StoreError::Unavailable(format!(
                    "cannot create or open stream {}: {error}{hint}",
                    config.name
                )));
            }
        }
    }
}

/// The connection's credentials (a creds file, an nkey seed, or the user
/// and password or token in the server URLs) and TLS.
async fn connect_options(
    options: &NatsOptions,
    addresses: &[async_nats::ServerAddr],
) -> Result<async_nats::ConnectOptions, StoreError> {
    let security = &options.security;
    let unreadable = |what: &str, path: &std::path::Path, error: std::io::Error| {
        StoreError::Unavailable(format!(
            "cannot read the NATS {what} {}: {error}",
            path.display()
        ))
    };
    // async-nats does not take a user from the URLs by itself.
    let in_url = addresses
        .iter()
        .find_map(|address| address.username().map(|user| (user, address.password())));
    let ways = usize::from(security.creds_file.is_some())
        + usize::from(security.nkey_file.is_some())
        + usize::from(in_url.is_some());
    if ways > 1 {
        return Err(StoreError::Unavailable(
            "give one way to authenticate to NATS: a creds file, an nkey seed, or a user in the URLs"
                .into(),
        ));
    }
    let mut connect = if let Some(creds) = &security.creds_file {
        async_nats::ConnectOptions::with_credentials_file(creds.clone())
            .await
            .map_err(|error| unreadable("credentials file", creds, error))?
    } else if let Some(nkey) = &security.nkey_file {
        let seed = std::fs::read_to_string(nkey)
            .map_err(|error| unreadable("nkey seed file", nkey, error))?;
        async_nats::ConnectOptions::with_nkey(seed.trim().to_owned())
    } else {
        match in_url {
            Some((user, Some(password))) => async_nats::ConnectOptions::with_user_and_password(
                user.to_owned(),
                password.to_owned(),
            ),
            Some((token, None)) => async_nats::ConnectOptions::with_token(token.to_owned()),
            None => async_nats::ConnectOptions::new(),
        }
    };
    if let Some(ca) = &security.tls_ca {
        if !ca.is_file() {
            return Err(unreadable(
                "TLS authority",
                ca,
                std::io::Error::from(std::io::ErrorKind::NotFound),
            ));
        }
        connect = connect.add_root_certificates(ca.clone()).require_tls(true);
    }
    if let Some((cert, key)) = &security.tls_client {
        connect = connect.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(connect)
}

/// The server list with any password or token replaced, for messages.
pub fn redacted(servers: &str) -> String {
    servers
        .split(',')
        .map(|server| {
            let (scheme, rest) = server.split_once("//").unwrap_or(("", server));
            // The last `@` ends the credentials: a password may hold `@`.
            match rest.rsplit_once('@') {
                Some((credentials, host)) => match credentials.split_once(':') {
                    Some((user, _password)) => format!("{scheme}//{user}:***@{host}"),
                    None => format!("{scheme}//***@{host}"),
                },
                None => server.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `2.10.4` -> (2, 10); anything unreadable is (0, 0).
fn parse_version(version: &str) -> (u64, u64) {
    let mut parts = version.trim_start_matches('v').split('.').map(|part| {
        part.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u64>()
            .unwrap_or(0)
    });
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted_whatever_they_hold() {
        assert_eq!(
            redacted(
                "nats://user:p@ss@word@nats-1:4222,tls://token@nats-2:4222,nats://nats-3:4222"
            ),
            "nats://user:***@nats-1:4222,tls://***@nats-2:4222,nats://nats-3:4222"
        );
        assert!(!redacted("nats://u:s3cr@t@host:4222").contains("s3cr"));
    }

    #[test]
    fn versions_compare_by_major_and_minor() {
        assert_eq!(parse_version("2.15.1"), (2, 15));
        assert_eq!(parse_version("v2.9.25"), (2, 9));
        assert_eq!(parse_version("2.11.0-RC.2"), (2, 11));
        assert_eq!(parse_version("garbage"), (0, 0));
        assert!(parse_version("2.9.25") < MIN_VERSION);
        assert!(parse_version("2.10.0") >= MIN_VERSION);
        assert!(parse_version("2.12.0") >= ATOMIC_BATCH_VERSION);
    }

    #[test]
    fn passwords_never_reach_a_message() {
        assert_eq!(
            redacted("nats://accord:s3cret@10.0.0.1:4222,tls://10.0.0.2:4222"),
            "nats://accord:***@10.0.0.1:4222,tls://10.0.0.2:4222"
        );
        assert_eq!(redacted("nats://s3cret-token@host:1"), "nats://***@host:1");
        assert_eq!(redacted("nats://host:1"), "nats://host:1");
    }
}
