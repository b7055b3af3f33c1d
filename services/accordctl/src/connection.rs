//! A channel to a running server, or to one started in this process on the
//! data directory of a stopped server.

use std::path::Path;

use accord_server::{Config, RunningServer};
use tonic::transport::Channel;

/// Where the commands send their calls.
pub(crate) struct Connection {
    channel: Channel,
    embedded: Option<RunningServer>,
}

impl Connection {
    /// Connects to `server`, or opens `data_dir` in process when given.
    pub(crate) async fn open(server: &str, data_dir: Option<&Path>) -> Result<Self, String> {
        let Some(data_dir) = data_dir else {
            let channel = tonic::transport::Endpoint::from_shared(server.to_owned())
                .map_err(|error| format!("bad server address {server:?}: {error}"))?
                .connect()
                .await
                .map_err(|error| format!("cannot reach the server at {server}: {error}"))?;
            return Ok(Self {
                channel,
                embedded: None,
            });
        };
        if !data_dir.join("log").is_dir() {
            return Err(format!(
                "{} is not an Accord data directory (no log/ inside)",
                data_dir.display()
            ));
        }
        let embedded = accord_server::start(Config::ephemeral(data_dir))
            .await
            .map_err(|error| format!("cannot open {}: {error}", data_dir.display()))?;
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", embedded.grpc_addr()))
                .map_err(|error| error.to_string())?
                .connect()
                .await
                .map_err(|error| error.to_string())?;
        Ok(Self {
            channel,
            embedded: Some(embedded),
        })
    }

    /// The channel.
    pub(crate) fn channel(&self) -> Channel {
        self.channel.clone()
    }

    /// Stops the in-process server, if any, flushing what it wrote.
    pub(crate) async fn close(self) {
        if let Some(embedded) = self.embedded
            && let Err(error) = embedded.shutdown().await
        {
            eprintln!("accordctl: closing the data directory: {error}");
        }
    }
}
