//! End-to-end test support: starts the real server (in this process, or as a
//! child process that can be killed), connects the generated clients, and
//! builds requests from the UNGA 80 facts.

pub mod browser;
pub mod child;
pub mod crash_cycles;
pub mod proxy;
pub mod raw_call;
pub mod requests;
pub use rfc9162_oracle as rfc9162;

use accord_proto::v1::admin_client::AdminClient;
use accord_proto::v1::agreement_service_client::AgreementServiceClient;
use accord_proto::v1::event_log_client::EventLogClient;
use accord_server::{Config, RunningServer};
use tokio_stream::StreamExt;
use tonic::transport::Channel;

pub use nats_process as nats;
pub use raw_call::raw_call;
pub use requests::*;

/// A server running in this process on `127.0.0.1:0` with its own data directory.
pub struct TestServer {
    server: Option<RunningServer>,
    data_dir: tempfile::TempDir,
    channel: Channel,
    /// The configuration it was started with; restarts use it again.
    config: Config,
}

impl TestServer {
    /// Starts a server on a fresh data directory.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a server on a fresh data directory, with `adjust` applied to its config.
    pub async fn start_with(adjust: impl FnOnce(&mut Config)) -> Self {
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        Self::start_in(data_dir, adjust).await
    }

    /// Starts a server that accepts the signed checkpoints of `public_keys`
    /// (the exports of those servers) besides its own.
    pub async fn start_trusting(public_keys: &[String]) -> Self {
        let public_keys = public_keys.to_vec();
        Self::start_with(move |config| config.trusted_keys = public_keys).await
    }

    /// Every record of the log, as `ExportLog` streams them (the last one
    /// carries the signed checkpoint).
    pub async fn export(&self) -> Vec<accord_proto::v1::ExportedRecord> {
        let mut stream = self
            .admin()
            .export_log(accord_proto::v1::ExportLogRequest { from_position: 1 })
            .await
            .expect("export")
            .into_inner();
        let mut records = Vec::new();
        while let Some(record) = tokio_stream::StreamExt::next(&mut stream).await {
            records.push(record.expect("record"));
        }
        records
    }

    /// The public key of this server's checkpoint signing key, in hex (for
    /// another server's `--trusted-key`).
    pub fn public_key(&self) -> String {
        public_key_of(self.data_dir())
    }

    /// Starts a server on `data_dir` (which may hold data already), with
    /// `adjust` applied to its config.
    pub async fn start_in(data_dir: tempfile::TempDir, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::ephemeral(data_dir.path());
        adjust(&mut config);
        let server = accord_server::start(config.clone())
            .await
            .expect("server starts");
        let channel = connect(server.grpc_addr()).await;
        Self {
            server: Some(server),
            data_dir,
            channel,
            config,
        }
    }

    /// Changes the configuration that later restarts use.
    pub fn adjust_config(&mut self, adjust: impl FnOnce(&mut Config)) {
        adjust(&mut self.config);
    }

    /// Stops the server gracefully and starts a new one on the same data
    /// directory with the same configuration.
    pub async fn restart(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        let server = accord_server::start(self.config.clone())
            .await
            .expect("server restarts");
        self.channel = connect(server.grpc_addr()).await;
        self.server = Some(server);
    }

    /// Stops the server, deletes its read models, and starts it again: the
    /// read models are rebuilt from the log.
    pub async fn restart_with_fresh_read_models(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        std::fs::remove_dir_all(self.data_dir.path().join("read-models"))
            .expect("read models removed");
        self.restart().await;
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
    }

    /// Stops the server gracefully, then runs `after` while its data
    /// directory still exists.
    pub async fn stop_then(mut self, after: impl FnOnce()) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        after();
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.data_dir.path()
    }

    /// Stops the server, runs `change` on its stopped data directory, and starts it again.
    pub async fn restart_after(&mut self, change: impl FnOnce(&std::path::Path)) {
        if let Some(server) = self.server.take() {
            server.shutdown().await.expect("clean shutdown");
        }
        change(self.data_dir.path());
        self.restart().await;
    }

    /// The running server.
    pub fn server(&self) -> &RunningServer {
        self.server.as_ref().expect("server is running")
    }

    /// A client of `AgreementService`.
    pub fn agreements(&self) -> AgreementServiceClient<Channel> {
        AgreementServiceClient::new(self.channel.clone())
    }

    /// A client of `EventLog`.
    pub fn event_log(&self) -> EventLogClient<Channel> {
        EventLogClient::new(self.channel.clone())
    }

    /// A client of `Admin`.
    pub fn admin(&self) -> AdminClient<Channel> {
        AdminClient::new(self.channel.clone())
    }

    /// The channel, for other clients (health, reflection).
    pub fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// The head position as `GetStats` reports it.
    pub async fn head(&self) -> u64 {
        self.admin()
            .get_stats(accord_proto::v1::GetStatsRequest {})
            .await
            .expect("stats")
            .into_inner()
            .head_position
    }

    /// Every event in the log, through `ReadLog`.
    pub async fn read_all(&self) -> Vec<accord_proto::v1::RecordedEvent> {
        read_all(self.event_log()).await
    }
}

/// One heavy test at a time: the tests that form three-node NATS clusters,
/// import 50,000 records or open thousands of connections each take a
/// permit, so that a cluster's leader election does not starve behind
/// another heavy test on a two-core machine (seen: no JetStream leader
/// within 90 s).
pub async fn heavy() -> tokio::sync::SemaphorePermit<'static> {
    static HEAVY: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);
    HEAVY
        .acquire()
        .await
        .expect("the semaphore is never closed")
}

/// The public key of the signing key in `data_dir` (the default place).
pub fn public_key_of(data_dir: &std::path::Path) -> String {
    let secret = accord_server::signing_key::read(&data_dir.join("signing-key"))
        .expect("the server's signing key");
    accord_server::hex::encode(&accord_store::CheckpointKeys::new(secret, []).public_key())
}

/// Copies the directory `from` to `to` (created if missing), recursively.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("creates the copy");
    for entry in std::fs::read_dir(from).expect("lists") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copies");
        }
    }
}

/// The server flags that put a node on the one-node NATS at `url` (R1).
pub fn single_nats_args(url: &str) -> Vec<String> {
    ["--store", url, "--nats-replicas", "1"]
        .map(str::to_owned)
        .to_vec()
}

/// Asserts that `events` sit at positions 1, 2, 3, ... with no gap.
pub fn assert_gap_free(events: &[accord_proto::v1::RecordedEvent], context: &str) {
    for (index, event) in events.iter().enumerate() {
        assert_eq!(
            event.position,
            index as u64 + 1,
            "{context}: positions are gap-free from 1"
        );
    }
}

/// Every event by the command id that appended it.
pub fn events_by_command(
    events: &[accord_proto::v1::RecordedEvent],
) -> std::collections::HashMap<&str, &accord_proto::v1::RecordedEvent> {
    events
        .iter()
        .map(|event| {
            let command_id = event
                .metadata
                .as_ref()
                .expect("metadata")
                .command_id
                .as_str();
            (command_id, event)
        })
        .collect()
}

/// Connects a channel to `addr`.
pub async fn connect(addr: std::net::SocketAddr) -> Channel {
    tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("valid endpoint")
        .connect()
        .await
        .expect("connects")
}

/// Every event in the log behind `client`, through `ReadLog`.
pub async fn read_all(mut client: EventLogClient<Channel>) -> Vec<accord_proto::v1::RecordedEvent> {
    let mut stream = client
        .read_log(accord_proto::v1::ReadLogRequest::default())
        .await
        .expect("read log")
        .into_inner();
    let mut events = Vec::new();
    while let Some(event) = stream.next().await {
        events.push(event.expect("event"));
    }
    events
}

/// The Prometheus text the server exports at `addr`.
pub async fn scrape_metrics(addr: std::net::SocketAddr) -> String {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let response = http_get(stream, "/metrics").await.expect("answered");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    response
}

/// The value of the unlabelled series `name` the server at `addr` exports
/// (0 when it exports none yet).
pub async fn metric(addr: std::net::SocketAddr, name: &str) -> f64 {
    scrape_metrics(addr)
        .await
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Sends `GET path` (HTTP/1.1, `Connection: close`) over `stream` and
/// returns the whole answer, status line and headers included.
pub async fn http_get<S>(mut stream: S, path: &str) -> std::io::Result<String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Runs `VerifyLog` to the end, asserts it found no problem, and returns the
/// records it checked.
pub async fn verify_clean(channel: Channel) -> u64 {
    let mut stream = accord_proto::v1::admin_client::AdminClient::new(channel)
        .verify_log(accord_proto::v1::VerifyLogRequest {})
        .await
        .expect("verify")
        .into_inner();
    let mut last = None;
    while let Some(progress) = stream.next().await {
        last = Some(progress.expect("progress"));
    }
    let last = last.expect("a final report");
    assert!(last.done);
    assert!(
        last.problems.is_empty(),
        "VerifyLog found {:?}",
        last.problems
    );
    last.checked
}

/// Opens the console's live feed `GET /live?QUERY` at `addr` (with `token`
/// as bearer, if any) and returns the connection once the answer's status
/// line is read, and that line.
pub async fn open_console_live(
    addr: std::net::SocketAddr,
    query: &str,
    token: Option<&str>,
) -> (tokio::net::TcpStream, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let authorization = token
        .map(|token| format!("Authorization: Bearer {token}\r\n"))
        .unwrap_or_default();
    stream
        .write_all(
            format!("GET /live?{query} HTTP/1.1\r\nHost: localhost\r\n{authorization}\r\n")
                .as_bytes(),
        )
        .await
        .expect("asks");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).await.expect("answers");
        head.push(byte[0]);
    }
    (stream, String::from_utf8_lossy(&head).trim().to_owned())
}

/// A token file holding `(name, roles, token)` lines (the server's
/// `--token-file`); it is removed when dropped.
pub fn token_file(tokens: &[(&str, &str, &str)]) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("token file");
    let text = tokens
        .iter()
        .map(|(name, roles, token)| accord_server::auth::TokenTable::line_for(name, roles, token))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(file.path(), text).expect("written");
    file
}

/// The server's health for `service` as a load balancer sees it.
pub async fn serving(server: &TestServer, service: &str) -> bool {
    use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus};
    tonic_health::pb::health_client::HealthClient::new(server.channel())
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await
        .is_ok_and(|response| response.into_inner().status == ServingStatus::Serving as i32)
}

/// Polls the health of `service` until it is `wanted` (the server checks
/// what health reports every second).
pub async fn wait_for_service_health(server: &TestServer, service: &str, wanted: bool) {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while serving(server, service).await != wanted {
        assert!(
            tokio::time::Instant::now() < deadline,
            "health of {service:?} never became {}",
            if wanted { "SERVING" } else { "NOT_SERVING" }
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Sends `GET path` as HTTP/1.0 (so that a streamed body comes whole, ended
/// by the close) to `addr`; returns the status and the body's bytes.
pub async fn http_get_body(addr: std::net::SocketAddr, path: &str) -> (u16, Vec<u8>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .expect("sends");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("reads");
    let split = answer
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .expect("an HTTP answer");
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|status| status.parse().ok())
        .expect("a status");
    (status, answer[split + 4..].to_vec())
}
