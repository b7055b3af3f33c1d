//! Command-line flags, each also read from an `ACCORD_*` environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

/// How the server logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// Where the web console listens: an address, or none (`''`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsoleListen(pub Option<SocketAddr>);

impl std::str::FromStr for ConsoleListen {
    type Err = std::net::AddrParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "" => Ok(ConsoleListen(None)),
            address => address.parse().map(|address| ConsoleListen(Some(address))),
        }
    }
}

/// The server's configuration.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "accord-server",
    version,
    about = "Accord: an event-sourced record of international agreements, served over gRPC"
)]
pub struct Config {
    /// Address for gRPC (all services on one port).
    #[arg(long, env = "ACCORD_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Directory of the embedded event store (created if missing).
    #[arg(long, env = "ACCORD_DATA_DIR", default_value = "./accord-data")]
    pub data_dir: PathBuf,

    /// Address for Prometheus metrics at /metrics.
    #[arg(long, env = "ACCORD_METRICS_LISTEN", default_value = "127.0.0.1:9464")]
    pub metrics_listen: SocketAddr,

    /// Address of the web console (`''` to serve none).
    #[arg(long, env = "ACCORD_CONSOLE_LISTEN", default_value = "127.0.0.1:8080")]
    pub console_listen: ConsoleListen,

    /// Log format.
    #[arg(long, env = "ACCORD_LOG_FORMAT", value_enum, default_value = "human")]
    pub log_format: LogFormat,

    /// Largest request message in bytes; larger ones are INVALID_ARGUMENT.
    #[arg(long, env = "ACCORD_MAX_MESSAGE_BYTES", default_value_t = 4 * 1024 * 1024)]
    pub max_message_bytes: usize,

    /// Largest command in bytes, encoded (its event is as large); larger
    /// ones are INVALID_ARGUMENT. The windows and caches that hold recent
    /// events are bounded in bytes with it in mind.
    #[arg(long, env = "ACCORD_MAX_EVENT_BYTES", default_value_t = 64 * 1024)]
    pub max_event_bytes: usize,

    /// Most parked events one consumer group keeps; beyond it a `Park` is
    /// refused (the event goes out again) until parked events are replayed.
    #[arg(long, env = "ACCORD_MAX_PARKED_PER_GROUP", default_value_t = 10_000)]
    pub max_parked_per_group: usize,

    /// Most commands in one Execute; more is RESOURCE_EXHAUSTED.
    #[arg(long, env = "ACCORD_MAX_EXECUTE_COMMANDS", default_value_t = 1_000)]
    pub max_execute_commands: usize,

    /// Most open Subscribe and WatchAgreements streams; more is RESOURCE_EXHAUSTED.
    #[arg(long, env = "ACCORD_MAX_SUBSCRIPTIONS", default_value_t = 10_000)]
    pub max_subscriptions: usize,

    /// Most open streams on one client connection; more is RESOURCE_EXHAUSTED.
    #[arg(
        long,
        env = "ACCORD_MAX_SUBSCRIPTIONS_PER_CONNECTION",
        default_value_t = 1_000
    )]
    pub max_subscriptions_per_connection: usize,

    /// Most open streams of one client (a token, or on an open server an
    /// address); more is RESOURCE_EXHAUSTED.
    #[arg(
        long,
        env = "ACCORD_MAX_SUBSCRIPTIONS_PER_CLIENT",
        default_value_t = 2_000
    )]
    pub max_subscriptions_per_client: usize,

    /// Most open gRPC client connections; more are closed as they are
    /// accepted. Default: 10,000, or less when the open-file limit leaves
    /// less (see the README's descriptor budget).
    #[arg(long, env = "ACCORD_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,

    /// Most open console connections; more are closed as they are accepted.
    /// Default: 1,024, or an eighth of what the open-file limit leaves.
    #[arg(long, env = "ACCORD_MAX_CONSOLE_CONNECTIONS")]
    pub max_console_connections: Option<usize>,

    /// Host names the console answers to besides the loopback names
    /// (`localhost`, `127.0.0.1`, `[::1]`), comma-separated: a request
    /// naming any other host (DNS rebinding) is refused.
    #[arg(
        long = "console-host",
        env = "ACCORD_CONSOLE_HOSTS",
        value_delimiter = ','
    )]
    pub console_hosts: Vec<String>,

    /// Most calls in flight on one HTTP/2 connection (SETTINGS_MAX_CONCURRENT_STREAMS).
    #[arg(long, env = "ACCORD_MAX_CONCURRENT_STREAMS", default_value_t = 2_000)]
    pub max_concurrent_streams: u32,

    /// Seconds a client has to finish its TLS handshake.
    #[arg(long, env = "ACCORD_TLS_HANDSHAKE_TIMEOUT_SECS", default_value_t = 10)]
    pub tls_handshake_timeout_secs: u64,

    /// Seconds between HTTP/2 pings on a quiet connection; a peer that does
    /// not answer within 20 s is disconnected.
    #[arg(long, env = "ACCORD_KEEPALIVE_SECS", default_value_t = 60)]
    pub keepalive_secs: u64,

    /// Token file (lines of `NAME ROLES blake3:HEX`); without it every call is let through.
    #[arg(long, env = "ACCORD_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,

    /// Allow what is unsafe beyond loopback: an open gRPC port, tokens in
    /// clear text, a metrics port on another interface (never in production).
    #[arg(long, env = "ACCORD_INSECURE")]
    pub insecure: bool,

    /// PEM certificate (chain) to serve gRPC over TLS; needs --tls-key.
    #[arg(long, env = "ACCORD_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of --tls-cert.
    #[arg(long, env = "ACCORD_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// PEM certificate authority whose client certificates are required (mutual TLS).
    #[arg(long, env = "ACCORD_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,

    /// File of the Ed25519 key that signs the log's checkpoints (see
    /// `accordctl new-signing-key`); default `DATA_DIR/signing-key`, created
    /// at first start. Keep it outside the data directory to protect the log
    /// against someone who can write that directory.
    #[arg(long, env = "ACCORD_SIGNING_KEY")]
    pub signing_key: Option<PathBuf>,

    /// Public keys (64 hex digits) whose checkpoints are accepted besides
    /// the server's own: a key signed with before a rotation, or the key of
    /// a server whose exports are imported here.
    #[arg(
        long = "trusted-key",
        env = "ACCORD_TRUSTED_KEYS",
        value_delimiter = ','
    )]
    pub trusted_keys: Vec<String>,

    /// The log's name in its signed checkpoints (the C2SP checkpoint's
    /// origin line and the signature's key name); default
    /// `accord/<host name>`. Witnesses and auditors know the log by it.
    #[arg(long, env = "ACCORD_LOG_ORIGIN")]
    pub log_origin: Option<String>,

    /// A witness to submit each new checkpoint to, C2SP tlog-witness:
    /// `NAME=PUBLIC_KEY@URL` (like
    /// `witness.example.org=<64 hex digits>@http://witness.example.org:7380`);
    /// repeatable.
    #[arg(long = "witness", env = "ACCORD_WITNESSES", value_delimiter = ',')]
    pub witnesses: Vec<String>,

    /// Cosignatures a checkpoint needs to count as witnessed
    /// (`accord_witness_quorum_met`); default: every witness.
    #[arg(long, env = "ACCORD_WITNESS_QUORUM")]
    pub witness_quorum: Option<usize>,

    /// Sign a log that holds records but no checkpoint, as it is found (once,
    /// after upgrading from Accord 0.1); without it such a log is refused.
    #[arg(long, env = "ACCORD_ADOPT_UNSIGNED_LOG")]
    pub adopt_unsigned_log: bool,

    /// Bytes of the store's page cache.
    #[arg(long, env = "ACCORD_CACHE_BYTES", default_value_t = accord_store::DEFAULT_CACHE_BYTES)]
    pub cache_bytes: u64,

    /// Records of the embedded log's index tail written to disk at a time:
    /// more means fewer, larger index writes and more records to read again
    /// at an open after a crash.
    #[arg(long, env = "ACCORD_INDEX_WINDOW_RECORDS", default_value_t = accord_store::DEFAULT_WINDOW_RECORDS)]
    pub index_window_records: usize,

    /// Where the event log lives: `sled` (embedded, in --data-dir) or a
    /// NATS JetStream cluster, `nats://HOST:PORT[,nats://HOST:PORT...]`
    /// (`tls://` for TLS).
    #[arg(long, env = "ACCORD_STORE", default_value = "sled")]
    pub store: String,

    /// The JetStream stream holding the log (with --store nats://).
    #[arg(long, env = "ACCORD_NATS_STREAM", default_value = "ACCORD")]
    pub nats_stream: String,

    /// Copies of the stream the NATS cluster keeps (3 for a cluster; 1 for a single nats-server).
    #[arg(long, env = "ACCORD_NATS_REPLICAS", default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub nats_replicas: u8,

    /// NATS credentials file (JWT and nkey seed); a user and password go in
    /// the --store URLs instead (`nats://USER:PASSWORD@HOST:PORT`).
    #[arg(long, env = "ACCORD_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,

    /// File holding an nkey seed to authenticate to NATS with.
    #[arg(long, env = "ACCORD_NATS_NKEY")]
    pub nats_nkey: Option<PathBuf>,

    /// PEM authority to trust for the NATS servers' certificates; TLS to
    /// NATS is then required.
    #[arg(long, env = "ACCORD_NATS_TLS_CA")]
    pub nats_tls_ca: Option<PathBuf>,

    /// PEM client certificate for NATS servers that verify clients (with --nats-tls-key).
    #[arg(long, env = "ACCORD_NATS_TLS_CERT", requires = "nats_tls_key")]
    pub nats_tls_cert: Option<PathBuf>,

    /// PEM key of --nats-tls-cert.
    #[arg(long, env = "ACCORD_NATS_TLS_KEY", requires = "nats_tls_cert")]
    pub nats_tls_key: Option<PathBuf>,
}

impl Config {
    /// Returns the defaults with the given data directory and ephemeral
    /// loopback ports: for tests, and for tools that open a stopped
    /// server's data directory in process.
    pub fn ephemeral(data_dir: impl Into<PathBuf>) -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            data_dir: data_dir.into(),
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            console_listen: ConsoleListen(Some(SocketAddr::from(([127, 0, 0, 1], 0)))),
            log_format: LogFormat::Human,
            max_message_bytes: 4 * 1024 * 1024,
            max_event_bytes: 64 * 1024,
            max_parked_per_group: 10_000,
            max_execute_commands: 1_000,
            max_subscriptions: 10_000,
            max_subscriptions_per_connection: 1_000,
            max_subscriptions_per_client: 2_000,
            max_connections: None,
            max_console_connections: None,
            console_hosts: Vec::new(),
            max_concurrent_streams: 2_000,
            tls_handshake_timeout_secs: 10,
            keepalive_secs: 60,
            token_file: None,
            insecure: false,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            signing_key: None,
            trusted_keys: Vec::new(),
            log_origin: None,
            witnesses: Vec::new(),
            witness_quorum: None,
            adopt_unsigned_log: false,
            cache_bytes: 64 * 1024 * 1024,
            index_window_records: accord_store::DEFAULT_WINDOW_RECORDS,
            store: "sled".into(),
            nats_stream: "ACCORD".into(),
            nats_replicas: 1,
            nats_creds: None,
            nats_nkey: None,
            nats_tls_ca: None,
            nats_tls_cert: None,
            nats_tls_key: None,
        }
    }
}
