//! The file-descriptor budget: every connection the server accepts holds a
//! descriptor, and so does every file the store opens. At start the soft
//! limit is raised to the hard one, a reserve is kept for the store, and the
//! connection caps of the three ports are derived from what is left, so
//! that no flood of connections can take the descriptors a group commit
//! needs.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

use crate::config::Config;
use crate::server_error::ServerError;

/// Descriptors kept for everything that is not a client connection: the
/// store's files and directories (log, read models, groups, blobs as sled
/// reads them), NATS connections, the listeners, the runtime.
pub(crate) const RESERVE: usize = 256;
/// Most connections to `/metrics` (a scraper or two; a few more to spare).
const METRICS_CONNECTIONS: usize = 32;
/// Default cap on the console's connections.
const CONSOLE_CONNECTIONS: usize = 1_024;
/// Default cap on gRPC connections (memory: ~33 KiB each when idle).
const GRPC_CONNECTIONS: usize = 10_000;

/// How many connections each port takes at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ConnectionCaps {
    /// The process's open-file limit after raising it.
    pub open_files: usize,
    /// gRPC connections (`--max-connections`).
    pub grpc: usize,
    /// Console connections (`--max-console-connections`).
    pub console: usize,
    /// `/metrics` connections.
    pub metrics: usize,
}

/// Raises the soft open-file limit to the hard limit and returns it.
pub(crate) fn raise_open_files_limit() -> usize {
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if limit.current != limit.maximum
        && let Err(error) = setrlimit(Resource::Nofile, raised)
    {
        tracing::warn!(%error, "cannot raise the open-file limit to its hard limit");
    }
    let now = getrlimit(Resource::Nofile).current;
    now.map_or(usize::MAX, |value| {
        usize::try_from(value).unwrap_or(usize::MAX)
    })
}

/// The caps for `config` within `open_files` descriptors: each port's
/// configured cap, or its share of what the reserve leaves; refused when
/// the configured caps do not fit.
pub(crate) fn caps(config: &Config, open_files: usize) -> Result<ConnectionCaps, ServerError> {
    let available = open_files.saturating_sub(RESERVE);
    if available < 16 {
        return Err(ServerError::Config(format!(
            "the open-file limit is {open_files}, which leaves no room for connections beside the {RESERVE} the store keeps: raise it (ulimit -n)"
        )));
    }
    let metrics = METRICS_CONNECTIONS.min(available / 16).max(1);
    let console = match (config.console_listen.0, config.max_console_connections) {
        (None, _) => 0,
        (Some(_), Some(cap)) => cap,
        (Some(_), None) => CONSOLE_CONNECTIONS.min(available / 8).max(1),
    };
    let grpc = config.max_connections.unwrap_or_else(|| {
        GRPC_CONNECTIONS.min(available.saturating_sub(metrics + console).max(1))
    });
    if grpc + console + metrics > available {
        return Err(ServerError::Config(format!(
            "--max-connections {grpc} and --max-console-connections {console} (with {metrics} for /metrics) need more descriptors than the open-file limit {open_files} leaves beside the {RESERVE} the store keeps: lower them or raise the limit"
        )));
    }
    Ok(ConnectionCaps {
        open_files,
        grpc,
        console,
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config::ephemeral("/nonexistent")
    }

    #[test]
    fn the_caps_fit_the_budget_whatever_it_is() {
        for open_files in [300, 1_024, 4_096, 20_000, 1 << 20] {
            let caps = caps(&config(), open_files).expect("caps");
            assert!(
                caps.grpc + caps.console + caps.metrics + RESERVE <= open_files,
                "{caps:?}"
            );
            assert!(caps.grpc >= 1 && caps.console >= 1 && caps.metrics >= 1);
        }
        let small = caps(&config(), 1_024).expect("caps");
        assert_eq!((small.grpc, small.console, small.metrics), (640, 96, 32));
        let large = caps(&config(), 1 << 20).expect("caps");
        assert_eq!((large.grpc, large.console), (10_000, 1_024));
    }

    #[test]
    fn configured_caps_beyond_the_budget_are_refused() {
        let mut too_many = config();
        too_many.max_connections = Some(10_000);
        let refused = caps(&too_many, 1_024).expect_err("refused");
        assert!(
            refused.to_string().contains("open-file limit 1024"),
            "{refused}"
        );
        assert!(caps(&config(), 100).is_err());
        let mut fits = config();
        fits.max_connections = Some(500);
        fits.max_console_connections = Some(100);
        let caps = caps(&fits, 1_024).expect("fits");
        assert_eq!((caps.grpc, caps.console), (500, 100));
    }
}
