//! The peer: PostgreSQL as a Message-DB-style event store (a messages table
//! with a global position, a unique stream version and a unique event id; a
//! `write_message` function that takes an advisory lock per stream and checks
//! the expected version), started from Debian's packages on a loopback port
//! and its own data directory, with `synchronous_commit = on`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio_postgres::{Client, NoTls};

const SCHEMA: &str = r#"
CREATE TABLE messages (
  global_position bigserial PRIMARY KEY,
  position bigint NOT NULL,
  time timestamp NOT NULL DEFAULT (now() AT TIME ZONE 'utc'),
  stream_name text NOT NULL,
  type text NOT NULL,
  data jsonb,
  metadata jsonb,
  id uuid NOT NULL
);
CREATE UNIQUE INDEX messages_id ON messages (id);
CREATE UNIQUE INDEX messages_stream ON messages (stream_name, position);

CREATE FUNCTION write_message(
  _id varchar, _stream_name varchar, _type varchar, _data jsonb, _metadata jsonb,
  _expected_version bigint DEFAULT NULL
) RETURNS bigint AS $$
DECLARE
  _stream_version bigint;
  _next_position bigint;
BEGIN
  PERFORM pg_advisory_xact_lock(hashtext(_stream_name));
  SELECT max(position) INTO _stream_version FROM messages WHERE stream_name = _stream_name;
  IF _stream_version IS NULL THEN _stream_version := -1; END IF;
  IF _expected_version IS NOT NULL AND _expected_version != _stream_version THEN
    RAISE EXCEPTION 'Wrong expected version: % (Stream: %, Stream Version: %)',
      _expected_version, _stream_name, _stream_version;
  END IF;
  _next_position := _stream_version + 1;
  INSERT INTO messages (id, stream_name, position, type, data, metadata)
    VALUES (_id::uuid, _stream_name, _next_position, _type, _data, _metadata);
  RETURN _next_position;
END;
$$ LANGUAGE plpgsql;
"#;

/// A PostgreSQL server of the bench's own.
pub(crate) struct Postgres {
    child: Child,
    port: u16,
    data_dir: PathBuf,
    _scratch: tempfile::TempDir,
}

fn binaries() -> Result<PathBuf, String> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| "PostgreSQL is not installed: apt-get install -y postgresql".to_owned())?
        .flatten()
        .map(|entry| entry.path().join("bin"))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions
        .pop()
        .ok_or_else(|| "no initdb under /usr/lib/postgresql".to_owned())
}

/// Installs PostgreSQL from Debian's packages when it is missing.
pub(crate) fn ensure_installed() -> Result<(), String> {
    if binaries().is_ok() {
        return Ok(());
    }
    eprintln!("accord-bench: installing PostgreSQL from Debian's packages");
    let status = std::process::Command::new("sh")
        .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql"])
        .status()
        .map_err(|error| format!("cannot run apt-get: {error}"))?;
    if !status.success() {
        return Err("apt-get install postgresql failed".into());
    }
    binaries().map(|_| ())
}

/// Runs a command as the `postgres` user when this process is root (PostgreSQL refuses root).
fn as_postgres(program: &Path) -> Command {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

impl Postgres {
    /// Initialises a cluster in a temporary directory and starts it.
    pub(crate) async fn start() -> Result<Self, String> {
        let bin = binaries()?;
        let scratch = tempfile::Builder::new()
            .prefix("accord-bench-pg")
            .tempdir_in("/var/tmp")
            .map_err(|error| error.to_string())?;
        let data_dir = scratch.path().join("data");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            let status = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(scratch.path())
                .status()
                .map_err(|error| error.to_string())?;
            if !status.success() {
                return Err("cannot hand the scratch directory to the postgres user".into());
            }
        }
        let initdb = as_postgres(&bin.join("initdb"))
            .args([
                "--auth=trust",
                "--username=bench",
                "--encoding=UTF8",
                "--no-instructions",
                "-D",
            ])
            .arg(&data_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .await
            .map_err(|error| format!("initdb: {error}"))?;
        if !initdb.status.success() {
            return Err(format!(
                "initdb failed: {}",
                String::from_utf8_lossy(&initdb.stderr)
            ));
        }
        let port = crate::process::free_port()?;
        let child = as_postgres(&bin.join("postgres"))
            .arg("-D")
            .arg(&data_dir)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "synchronous_commit=on",
                "-c",
                "fsync=on",
            ])
            .args([
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=256MB",
                "-c",
            ])
            .arg(format!(
                "unix_socket_directories={}",
                scratch.path().display()
            ))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|error| format!("postgres: {error}"))?;
        let postgres = Self {
            child,
            port,
            data_dir,
            _scratch: scratch,
        };
        // Ready when it accepts a connection: bounded retries, not a fixed sleep.
        let mut attempts = 0;
        let client = loop {
            match postgres.connect().await {
                Ok(client) => break client,
                Err(error) if attempts < 300 => {
                    attempts += 1;
                    let _ = error;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err(error) => return Err(format!("postgres did not start: {error}")),
            }
        };
        client
            .batch_execute(SCHEMA)
            .await
            .map_err(|error| format!("schema: {error}"))?;
        Ok(postgres)
    }

    /// A new client connection.
    pub(crate) async fn connect(&self) -> Result<Client, String> {
        let (client, connection) = tokio_postgres::connect(
            &format!(
                "host=127.0.0.1 port={} user=bench dbname=postgres",
                self.port
            ),
            NoTls,
        )
        .await
        .map_err(|error| error.to_string())?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// CPU seconds and summed peak RSS of the server's processes.
    pub(crate) fn usage(&self) -> (f64, u64) {
        let Some(root) = self.child.id() else {
            return (0.0, 0);
        };
        let mut cpu = 0.0;
        let mut peak = 0;
        for pid in std::iter::once(root).chain(descendants_of(root)) {
            // Backends that exited are counted in their parent's reaped-children time.
            cpu += crate::process::cpu_seconds_with_reaped_children_of(pid);
            peak += crate::process::status_kib_of(pid, "VmHWM:") * 1024;
        }
        (cpu, peak)
    }

    /// Bytes of the messages table with its indexes.
    pub(crate) async fn table_bytes(&self) -> Result<(u64, u64), String> {
        let client = self.connect().await?;
        let row = client
            .query_one(
                "SELECT pg_total_relation_size('messages')::bigint, count(*)::bigint FROM messages",
                &[],
            )
            .await
            .map_err(|error| error.to_string())?;
        let bytes: i64 = row.get(0);
        let count: i64 = row.get(1);
        Ok((bytes as u64, count as u64))
    }

    /// Stops the server.
    pub(crate) async fn stop(mut self) {
        if let Some(pid) = self.child.id() {
            // SAFETY: kill(2) on the pid of a child this process started; SIGINT is a fast shutdown.
            unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
        }
        let _ = tokio::time::timeout(Duration::from_secs(30), self.child.wait()).await;
        let _ = &self.data_dir;
    }
}

fn descendants_of(root: u32) -> Vec<u32> {
    let mut found = Vec::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        let children = children_of(parent);
        frontier.extend(&children);
        found.extend(children);
    }
    found
}

fn children_of(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|stat| {
                    stat.rsplit_once(')')
                        .map(|(_, rest)| rest.split_whitespace().nth(1).map(str::to_owned))
                })
                .flatten()
                .and_then(|ppid| ppid.parse::<u32>().ok())
                == Some(parent)
        })
        .collect()
}
