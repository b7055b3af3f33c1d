//! The server as a child process, to be killed with SIGKILL or stopped with SIGTERM.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Log lines kept for a failure's report.
const RECENT_LOG_LINES: usize = 50;

/// A server process on `127.0.0.1:0`.
pub struct ChildServer {
    child: Child,
    grpc_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    console_addr: Option<SocketAddr>,
    /// The last lines the server logged after it listened.
    recent_log: Arc<Mutex<VecDeque<String>>>,
    /// Started under a wrapper (such as strace) in its own process group,
    /// which signals go to as a whole.
    group: bool,
    /// What the server logged before it listened (JSON lines).
    startup_log: Vec<String>,
}

impl ChildServer {
    /// Starts `binary` on `data_dir` and waits until it logs its address.
    pub async fn start(binary: &Path, data_dir: &Path) -> Self {
        Self::start_with_args(binary, data_dir, &[]).await
    }

    /// Starts `binary` on `data_dir` with more flags (`--store nats://...`).
    pub async fn start_with_args(binary: &Path, data_dir: &Path, args: &[String]) -> Self {
        Self::start_under(&[], binary, data_dir, args).await
    }

    /// Starts `binary` under `wrapper` (a program and its arguments, such as
    /// `strace -f -o FILE`), in a process group of its own; no wrapper when empty.
    pub async fn start_under(
        wrapper: &[String],
        binary: &Path,
        data_dir: &Path,
        args: &[String],
    ) -> Self {
        let mut command = match wrapper.split_first() {
            Some((program, wrapper_args)) => {
                let mut command = Command::new(program);
                command.args(wrapper_args).arg(binary).process_group(0);
                command
            }
            None => Command::new(binary),
        };
        let mut child = command
            .args(args)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--metrics-listen")
            .arg("127.0.0.1:0")
            .arg("--console-listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--log-format")
            .arg("json")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .expect("server process starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let mut startup_log = Vec::new();
        let grpc_addr = loop {
            let line = lines
                .next_line()
                .await
                .expect("reads server output")
                .expect("server exited before listening");
            let Ok(entry) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            startup_log.push(line);
            if let Some(addr) = entry.get("grpc_addr").and_then(|addr| addr.as_str()) {
                let parsed = |field: &str| {
                    entry
                        .get(field)
                        .and_then(|addr| addr.as_str())
                        .and_then(|addr| addr.parse().ok())
                };
                break (
                    addr.parse().expect("a socket address"),
                    parsed("metrics_addr"),
                    parsed("console_addr"),
                );
            }
        };
        let (grpc_addr, metrics_addr, console_addr) = grpc_addr;
        // Keep reading so that the server never blocks on a full pipe; the
        // last lines are kept for a failure's report.
        let recent_log = Arc::new(Mutex::new(VecDeque::new()));
        let kept = recent_log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let mut kept = kept.lock().expect("log lines");
                if kept.len() == RECENT_LOG_LINES {
                    kept.pop_front();
                }
                kept.push_back(line);
            }
        });
        Self {
            child,
            grpc_addr,
            metrics_addr,
            console_addr,
            recent_log,
            group: !wrapper.is_empty(),
            startup_log,
        }
    }

    /// The lines the server logged until it listened.
    pub fn startup_log(&self) -> &[String] {
        &self.startup_log
    }

    /// The gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The console's address, as the server logged it.
    pub fn console_addr(&self) -> SocketAddr {
        self.console_addr
            .expect("the server logged its console address")
    }

    /// The metrics address, as the server logged it.
    pub fn metrics_addr(&self) -> SocketAddr {
        self.metrics_addr
            .expect("the server logged its metrics address")
    }

    /// The server's resident memory now, in bytes (`VmRSS`).
    pub fn rss_bytes(&self) -> u64 {
        let pid = self.child.id().expect("process is running");
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("reads status");
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|value| {
                value
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
            .map(|kib| kib * 1024)
            .expect("VmRSS")
    }

    /// Sends `signal` (SIGSTOP to pause the process, SIGCONT to resume it).
    pub fn signal(&self, signal: libc::c_int) {
        let pid = self.child.id().expect("process is running") as libc::pid_t;
        // SAFETY: kill(2) with a pid this test owns and a valid signal number.
        let sent = unsafe { libc::kill(pid, signal) };
        assert_eq!(sent, 0, "signal {signal} sent");
    }

    /// Kills the process with SIGKILL and reaps it.
    pub async fn kill(mut self) {
        self.child.start_kill().expect("sends SIGKILL");
        self.child.wait().await.expect("reaps the process");
    }

    /// Sends SIGTERM and returns how the process exited.
    pub async fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().expect("process is running") as libc::pid_t;
        // A wrapper's whole group: the server under it gets the signal too.
        let target = if self.group { -pid } else { pid };
        // SAFETY: kill(2) with a pid or group this test owns and a valid signal number.
        let sent = unsafe { libc::kill(target, libc::SIGTERM) };
        assert_eq!(sent, 0, "SIGTERM sent");
        let status = self.child.wait().await.expect("reaps the process");
        if !status.success() {
            // Give the reader a moment to take the last lines off the pipe.
            tokio::task::yield_now().await;
            for line in self.recent_log.lock().expect("log lines").iter() {
                eprintln!("server log: {line}");
            }
        }
        status
    }
}
