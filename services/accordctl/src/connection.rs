//! A channel to a running server, or to one started in this process on the
//! data directory of a stopped server.

use std::path::{Path, PathBuf};

use accord_server::{Config, RunningServer};
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

/// The channel every command calls through, with the bearer token attached.
pub(crate) type Grpc = InterceptedService<Channel, BearerToken>;

/// Adds `authorization: Bearer TOKEN` to every call when a token is given.
#[derive(Clone)]
pub(crate) struct BearerToken(Option<MetadataValue<tonic::metadata::Ascii>>);

impl Interceptor for BearerToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// True when `server` is a plain `http://` address of a host other than
/// loopback: what is sent to it can be read on the way.
pub(crate) fn sends_in_clear_text(server: &str) -> bool {
    let Ok(uri) = server.parse::<tonic::codegen::http::Uri>() else {
        return false;
    };
    if uri.scheme_str() != Some("http") {
        return false;
    }
    let host = uri.host().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|address| address.is_loopback());
    !loopback
}

/// TLS files for an https:// server.
pub(crate) struct Tls {
    pub(crate) ca: Option<std::path::PathBuf>,
    pub(crate) cert: Option<std::path::PathBuf>,
    pub(crate) key: Option<std::path::PathBuf>,
}

impl Tls {
    fn client_config(&self) -> Result<tonic::transport::ClientTlsConfig, String> {
        let read = |path: &Path| {
            std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
        };
        let mut config = tonic::transport::ClientTlsConfig::new();
        if let Some(ca) = &self.ca {
            config = config.ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?));
        }
        if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
            config = config.identity(tonic::transport::Identity::from_pem(
                read(cert)?,
                read(key)?,
            ));
        }
        Ok(config)
    }
}

/// The data directory of a stopped server, and the keys its log is signed with.
pub(crate) struct Offline<'a> {
    pub(crate) data_dir: &'a Path,
    pub(crate) signing_key: Option<PathBuf>,
    pub(crate) trusted_keys: Vec<String>,
}

/// Where the commands send their calls.
pub(crate) struct Connection {
    channel: Grpc,
    embedded: Option<RunningServer>,
}

impl Connection {
    /// Connects to `server`, or opens a stopped server's data directory in
    /// process when given.
    pub(crate) async fn open(
        server: &str,
        offline: Option<Offline<'_>>,
        token: Option<&str>,
        tls: Tls,
    ) -> Result<Self, String> {
        let bearer = match token {
            Some(token) => Some(
                format!("Bearer {token}")
                    .parse()
                    .map_err(|_| "the token has characters a header cannot carry".to_owned())?,
            ),
            None => None,
        };
        let bearer = BearerToken(bearer);
        let Some(offline) = offline else {
            let mut endpoint = tonic::transport::Endpoint::from_shared(server.to_owned())
                .map_err(|error| format!("bad server address {server:?}: {error}"))?;
            if server.starts_with("https://") {
                endpoint = endpoint
                    .tls_config(tls.client_config()?)
                    .map_err(|error| format!("TLS: {error}"))?;
            }
            let channel = endpoint
                .connect()
                .await
                .map_err(|error| format!("cannot reach the server at {server}: {error}"))?;
            return Ok(Self {
                channel: InterceptedService::new(channel, bearer),
                embedded: None,
            });
        };
        let data_dir = offline.data_dir;
        if !data_dir.join("log").is_dir() {
            return Err(format!(
                "{} is not an Accord data directory (no log/ inside)",
                data_dir.display()
            ));
        }
        let mut config = Config::ephemeral(data_dir);
        // The key must exist: a stopped server's log is never signed with a
        // key made up here.
        config.signing_key = Some(
            offline
                .signing_key
                .unwrap_or_else(|| data_dir.join("signing-key")),
        );
        config.trusted_keys = offline.trusted_keys;
        let embedded = accord_server::start(config)
            .await
            .map_err(|error| format!("cannot open {}: {error}", data_dir.display()))?;
        let channel =
            tonic::transport::Endpoint::from_shared(format!("http://{}", embedded.grpc_addr()))
                .map_err(|error| error.to_string())?
                .connect()
                .await
                .map_err(|error| error.to_string())?;
        Ok(Self {
            channel: InterceptedService::new(channel, bearer),
            embedded: Some(embedded),
        })
    }

    /// The channel.
    pub(crate) fn channel(&self) -> Grpc {
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

#[cfg(test)]
mod tests {
    use super::sends_in_clear_text;

    #[test]
    fn only_plain_http_beyond_loopback_is_clear_text() {
        for server in [
            "http://10.0.0.5:50051",
            "http://accord.example.org:50051",
            "http://[2001:db8::1]:50051",
        ] {
            assert!(sends_in_clear_text(server), "{server}");
        }
        for server in [
            "http://127.0.0.1:50051",
            "http://127.8.9.10:1",
            "http://localhost:50051",
            "http://[::1]:50051",
            "https://accord.example.org:50051",
        ] {
            assert!(!sends_in_clear_text(server), "{server}");
        }
    }
}
