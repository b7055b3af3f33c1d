//! The second peer: UmaDB (crates.io `umadb`), a Rust gRPC event store with
//! group commit that calls `fdatasync` before it answers an append on Linux
//! (`umadb-core` 0.7.8, `Pager::fsync`, called by `Mvcc::commit`). Installed
//! with `cargo install` into `target/bench-tools` when missing, started on a
//! free loopback port with a temporary database, driven over its own gRPC
//! API (`umadb.v1.DCB`), whose messages the bench declares below with
//! UmaDB's field numbers.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Request, Status};

/// The version the bench compares with.
const VERSION: &str = "0.7.8";

/// The UmaDB messages the bench sends and reads (`umadb/v1/umadb.proto`).
pub(crate) mod wire {
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Event {
        #[prost(string, tag = "1")]
        pub(crate) event_type: String,
        #[prost(string, repeated, tag = "2")]
        pub(crate) tags: Vec<String>,
        #[prost(bytes = "vec", tag = "3")]
        pub(crate) data: Vec<u8>,
        #[prost(string, tag = "4")]
        pub(crate) uuid: String,
        #[prost(message, repeated, tag = "5")]
        pub(crate) metadata: Vec<MetadataEntry>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct MetadataEntry {
        #[prost(string, tag = "1")]
        pub(crate) key: String,
        #[prost(string, tag = "2")]
        pub(crate) value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct QueryItem {
        #[prost(string, repeated, tag = "1")]
        pub(crate) types: Vec<String>,
        #[prost(string, repeated, tag = "2")]
        pub(crate) tags: Vec<String>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct Query {
        #[prost(message, repeated, tag = "1")]
        pub(crate) items: Vec<QueryItem>,
    }

    /// Fails the append if an event matching the query was appended after
    /// position `after`: a per-stream expected version, in DCB terms.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct AppendCondition {
        #[prost(message, optional, tag = "1")]
        pub(crate) fail_if_events_match: Option<Query>,
        #[prost(uint64, optional, tag = "2")]
        pub(crate) after: Option<u64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct AppendRequest {
        #[prost(message, repeated, tag = "1")]
        pub(crate) events: Vec<Event>,
        #[prost(message, optional, tag = "2")]
        pub(crate) condition: Option<AppendCondition>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct AppendResponse {
        #[prost(uint64, tag = "1")]
        pub(crate) position: u64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct SequencedEvent {
        #[prost(uint64, tag = "1")]
        pub(crate) position: u64,
        #[prost(message, optional, tag = "2")]
        pub(crate) event: Option<Event>,
    }

    /// Reads from `start` (the first event when absent) to the head.
    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct ReadRequest {
        #[prost(message, optional, tag = "1")]
        pub(crate) query: Option<Query>,
        #[prost(uint64, optional, tag = "2")]
        pub(crate) start: Option<u64>,
        #[prost(uint32, optional, tag = "6")]
        pub(crate) batch_size: Option<u32>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct ReadResponse {
        #[prost(message, repeated, tag = "1")]
        pub(crate) events: Vec<SequencedEvent>,
        #[prost(uint64, optional, tag = "2")]
        pub(crate) head: Option<u64>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct HeadRequest {}

    #[derive(Clone, PartialEq, prost::Message)]
    pub(crate) struct HeadResponse {
        #[prost(uint64, optional, tag = "1")]
        pub(crate) position: Option<u64>,
    }
}

/// A UmaDB server of the bench's own.
pub(crate) struct UmaDb {
    child: Child,
    port: u16,
    scratch: tempfile::TempDir,
}

fn tools_root() -> Result<PathBuf, String> {
    // The bench runs from the workspace (its README command); its tools go
    // beside the build's other outputs.
    let current = std::env::current_dir().map_err(|error| error.to_string())?;
    Ok(current.join("target").join("bench-tools"))
}

fn binary() -> Result<PathBuf, String> {
    Ok(tools_root()?.join("bin").join("umadb"))
}

/// Installs UmaDB into `target/bench-tools` unless it is there (its build
/// needs `protoc`: Debian's `protobuf-compiler`, installed when missing).
pub(crate) fn ensure_installed() -> Result<(), String> {
    let binary = binary()?;
    if binary.exists() {
        return Ok(());
    }
    if nats_process::on_path("protoc").is_none() {
        eprintln!(
            "accord-bench: installing protobuf-compiler (apt-get), which UmaDB's build needs"
        );
        let status = std::process::Command::new("sh")
            .args([
                "-c",
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq protobuf-compiler",
            ])
            .status()
            .map_err(|error| format!("cannot run apt-get: {error}"))?;
        if !status.success() {
            return Err("apt-get install protobuf-compiler failed".into());
        }
    }
    eprintln!("accord-bench: installing umadb {VERSION} into target/bench-tools (cargo install)");
    let status = std::process::Command::new("cargo")
        .args([
            "install",
            "umadb",
            "--version",
            VERSION,
            "--locked",
            "--root",
        ])
        .arg(tools_root()?)
        .status()
        .map_err(|error| format!("cannot run cargo install: {error}"))?;
    if !status.success() || !binary.exists() {
        return Err(format!("cargo install umadb --version {VERSION} failed"));
    }
    Ok(())
}

impl UmaDb {
    /// Starts UmaDB on a temporary database and waits until it answers.
    pub(crate) async fn start() -> Result<Self, String> {
        let scratch = tempfile::Builder::new()
            .prefix("accord-bench-umadb")
            .tempdir_in("/var/tmp")
            .map_err(|error| error.to_string())?;
        let port = crate::process::free_port()?;
        let child = Command::new(binary()?)
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--db-path")
            .arg(scratch.path().join("uma.db"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("cannot start umadb: {error}"))?;
        let umadb = Self {
            child,
            port,
            scratch,
        };
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(channel) = umadb.connect().await
                && head(channel).await.is_ok()
            {
                return Ok(umadb);
            }
            if tokio::time::Instant::now() > deadline {
                return Err("umadb did not answer within 30 s".into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A new connection.
    pub(crate) async fn connect(&self) -> Result<Channel, String> {
        Channel::from_shared(format!("http://127.0.0.1:{}", self.port))
            .map_err(|error| error.to_string())?
            .connect()
            .await
            .map_err(|error| error.to_string())
    }

    /// CPU seconds and peak RSS of the server.
    pub(crate) fn usage(&self) -> (f64, u64) {
        let Some(pid) = self.child.id() else {
            return (0.0, 0);
        };
        (
            crate::process::cpu_seconds_of(pid),
            crate::process::status_kib_of(pid, "VmHWM:") * 1024,
        )
    }

    /// Bytes of its database on disk.
    pub(crate) fn bytes(&self) -> u64 {
        crate::process::directory_bytes(self.scratch.path())
    }

    /// Stops the server.
    pub(crate) async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on the pid of a child this process started.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}

async fn unary<In, Out>(channel: Channel, path: &'static str, message: In) -> Result<Out, Status>
where
    In: prost::Message + Send + Sync + 'static,
    Out: prost::Message + Default + Send + Sync + 'static,
{
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    grpc.unary(
        Request::new(message),
        PathAndQuery::from_static(path),
        tonic_prost::ProstCodec::default(),
    )
    .await
    .map(tonic::Response::into_inner)
}

/// The position of the last event.
pub(crate) async fn head(channel: Channel) -> Result<Option<u64>, Status> {
    let response: wire::HeadResponse =
        unary(channel, "/umadb.v1.DCB/Head", wire::HeadRequest {}).await?;
    Ok(response.position)
}

/// Reads every event from the first to the head; how many there were.
pub(crate) async fn read_all(channel: Channel) -> Result<u64, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(error.to_string()))?;
    let mut stream = grpc
        .server_streaming(
            Request::new(wire::ReadRequest::default()),
            PathAndQuery::from_static("/umadb.v1.DCB/Read"),
            tonic_prost::ProstCodec::<wire::ReadRequest, wire::ReadResponse>::default(),
        )
        .await?
        .into_inner();
    let mut read = 0;
    while let Some(response) = stream.message().await? {
        read += response.events.len() as u64;
    }
    Ok(read)
}

/// Appends `request`; the position of its last event.
pub(crate) async fn append(channel: Channel, request: wire::AppendRequest) -> Result<u64, Status> {
    let response: wire::AppendResponse = unary(channel, "/umadb.v1.DCB/Append", request).await?;
    Ok(response.position)
}
