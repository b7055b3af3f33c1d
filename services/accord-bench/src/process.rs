//! The server under test as a child process, with its CPU, memory and disk.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use nats_process::{NatsCluster, NatsNode};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Which event log the server under test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    /// The embedded sled log.
    Sled,
    /// A NATS JetStream stream on one node (R1) or three (R3).
    Nats(usize),
}

impl Backend {
    /// `sled`, `nats-1`, `nats-3`.
    pub(crate) fn label(self) -> String {
        match self {
            Backend::Sled => "sled".into(),
            Backend::Nats(nodes) => format!("nats-{nodes}"),
        }
    }

    /// Reads a label.
    pub(crate) fn parse(label: &str) -> Result<Self, String> {
        match label {
            "sled" => Ok(Backend::Sled),
            "nats-1" => Ok(Backend::Nats(1)),
            "nats-3" => Ok(Backend::Nats(3)),
            other => Err(format!("unknown backend {other:?}: sled, nats-1 or nats-3")),
        }
    }
}

/// The server binary and the log it runs on.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) binary: PathBuf,
    pub(crate) backend: Backend,
}

/// A running `accord-server`, with the nats-server processes of its log.
pub(crate) struct ServerProcess {
    child: Child,
    pid: u32,
    grpc_addr: SocketAddr,
    metrics_addr: SocketAddr,
    console_addr: Option<SocketAddr>,
    data_dir: PathBuf,
    nats: Vec<NatsNode>,
}

impl ServerProcess {
    /// Starts the target's server on `data_dir` with ephemeral loopback
    /// ports; for NATS, starts fresh nats-server processes first.
    pub(crate) async fn start(target: &Target, data_dir: &Path) -> Result<Self, String> {
        let nats = match target.backend {
            Backend::Sled => Vec::new(),
            Backend::Nats(1) => vec![NatsNode::single().await],
            Backend::Nats(_) => NatsCluster::three().await.nodes,
        };
        let binary = &target.binary;
        let mut command = Command::new(binary);
        if !nats.is_empty() {
            let urls: Vec<&str> = nats.iter().map(NatsNode::url).collect();
            command
                .arg("--store")
                .arg(urls.join(","))
                .arg("--nats-replicas")
                .arg(nats.len().to_string());
        }
        let mut child = command
            .args([
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
                "--console-listen",
                "127.0.0.1:0",
                "--log-format",
                "json",
            ])
            .arg("--data-dir")
            .arg(data_dir)
            .env("RUST_LOG", "warn,accord_server=info")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("cannot start {}: {error}", binary.display()))?;
        let pid = child.id().ok_or("server exited at once")?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let (grpc_addr, metrics_addr, console_addr) = loop {
            let line = lines
                .next_line()
                .await
                .map_err(|error| error.to_string())?
                .ok_or("server exited before listening")?;
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            let address = |field: &str| -> Option<Result<SocketAddr, String>> {
                let addr = entry.get(field)?.as_str()?;
                Some(
                    addr.parse()
                        .map_err(|error| format!("bad address {addr}: {error}")),
                )
            };
            if let (Some(grpc), Some(metrics)) = (address("grpc_addr"), address("metrics_addr")) {
                let console = address("console_addr").and_then(Result::ok);
                break (grpc?, metrics?, console);
            }
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            child,
            pid,
            grpc_addr,
            metrics_addr,
            console_addr,
            data_dir: data_dir.to_path_buf(),
            nats,
        })
    }

    /// The gRPC address.
    pub(crate) fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The web console's address.
    pub(crate) fn console_addr(&self) -> Result<SocketAddr, String> {
        self.console_addr
            .ok_or_else(|| "the server did not log a console address".to_owned())
    }

    /// The server's Prometheus exposition (`GET /metrics`).
    pub(crate) async fn metrics(&self) -> Result<String, String> {
        http_get(self.metrics_addr, "/metrics").await
    }

    /// CPU seconds (user + system) the server has used so far.
    pub(crate) fn cpu_seconds(&self) -> f64 {
        cpu_seconds_of(self.pid)
    }

    /// Resident memory now, in bytes.
    pub(crate) fn rss_bytes(&self) -> u64 {
        status_kib_of(self.pid, "VmRSS:") * 1024
    }

    /// Peak resident memory, in bytes.
    pub(crate) fn peak_rss_bytes(&self) -> u64 {
        status_kib_of(self.pid, "VmHWM:") * 1024
    }

    /// CPU seconds the nats-server processes have used so far.
    pub(crate) fn nats_cpu_seconds(&self) -> f64 {
        self.nats
            .iter()
            .filter_map(NatsNode::pid)
            .map(cpu_seconds_of)
            .sum()
    }

    /// Bytes of one copy of the event log (read models excluded, as the
    /// peer has none): sled's log directory, or one NATS node's store
    /// (a three-node cluster keeps three such copies).
    pub(crate) fn log_bytes(&self) -> u64 {
        match self.nats.first() {
            Some(node) => directory_bytes(node.dir()),
            None => directory_bytes(&self.data_dir.join("log")),
        }
    }

    /// Stops the server with SIGTERM and waits for it; then the NATS
    /// processes (killed when dropped).
    /// Kills the server with SIGKILL, as a crash would.
    pub(crate) async fn kill(mut self) -> Result<(), String> {
        // SAFETY: kill(2) on the pid of a child this process started.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGKILL) };
        self.child.wait().await.map_err(|error| error.to_string())?;
        Ok(())
    }

    pub(crate) async fn stop(mut self) -> Result<(), String> {
        // SAFETY: kill(2) on the pid of a child this process started.
        unsafe { libc::kill(self.pid as libc::pid_t, libc::SIGTERM) };
        let status = self.child.wait().await.map_err(|error| error.to_string())?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("server exited with {status}"))
        }
    }
}

/// `GET path` from `addr` over a fresh connection (HTTP/1.1,
/// `Connection: close`): the whole answer, status line included.
pub(crate) async fn http_get(addr: SocketAddr, path: &str) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let failed = |error: std::io::Error| format!("GET {path} from {addr}: {error}");
    let mut stream = tokio::net::TcpStream::connect(addr).await.map_err(failed)?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .map_err(failed)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.map_err(failed)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

/// Bytes of every file under `path`.
pub(crate) fn directory_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .map(|entry| match entry.metadata() {
            Ok(metadata) if metadata.is_dir() => directory_bytes(&entry.path()),
            Ok(metadata) => metadata.len(),
            Err(_) => 0,
        })
        .sum()
}

/// The CPU time (user + system) the load generator itself uses from
/// `start` on: its clients' share of the two cores, which bounds what any
/// server can reach. Reported as `load_generator_cpu_seconds`.
pub(crate) struct LoadGeneratorCpu {
    before: f64,
}

impl LoadGeneratorCpu {
    /// Starts counting.
    pub(crate) fn start() -> Self {
        Self {
            before: cpu_seconds_of(std::process::id()),
        }
    }

    /// Adds the CPU seconds used since `start` to a scenario's figures.
    pub(crate) fn record(&self, extra: &mut BTreeMap<String, f64>) {
        let used = cpu_seconds_of(std::process::id()) - self.before;
        extra.insert("load_generator_cpu_seconds".into(), used);
    }
}

/// CPU seconds (user + system) process `pid` has used.
pub(crate) fn cpu_seconds_of(pid: u32) -> f64 {
    cpu_ticks_of(pid, false)
}

/// CPU seconds of `pid` and of its children that have exited and been waited for.
pub(crate) fn cpu_seconds_with_reaped_children_of(pid: u32) -> f64 {
    cpu_ticks_of(pid, true)
}

fn cpu_ticks_of(pid: u32, with_reaped_children: bool) -> f64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0.0;
    };
    // Fields after the command name, which is in parentheses; utime and
    // stime are fields 14 and 15 of the line, 11 and 12 after the name.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |index: usize| {
        fields
            .get(index)
            .and_then(|value| value.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // SAFETY: sysconf has no preconditions.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let children = if with_reaped_children {
        ticks(13) + ticks(14)
    } else {
        0.0
    };
    (ticks(11) + ticks(12) + children) / ticks_per_second.max(1.0)
}

/// A `/proc/PID/status` figure in KiB.
pub(crate) fn status_kib_of(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix(field))
                .and_then(|value| value.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// A loopback port free now, for a peer that cannot be told to pick one and
/// say which (PostgreSQL, UmaDB).
pub(crate) fn free_port() -> Result<u16, String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|error| error.to_string())?;
    listener
        .local_addr()
        .map(|addr| addr.port())
        .map_err(|error| error.to_string())
}
