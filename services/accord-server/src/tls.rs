//! The gRPC port's TLS settings from the configuration.

use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::Config;
use crate::server_error::ServerError;

/// The TLS settings, if the configuration asks for TLS.
pub(crate) fn tls_config(config: &Config) -> Result<Option<ServerTlsConfig>, ServerError> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        if config.tls_cert.is_some() || config.tls_key.is_some() || config.tls_client_ca.is_some() {
            return Err(ServerError::Config(
                "TLS needs both --tls-cert and --tls-key".into(),
            ));
        }
        return Ok(None);
    };
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|error| {
            ServerError::Config(format!("cannot read {}: {error}", path.display()))
        })
    };
    let identity = Identity::from_pem(read(cert)?, read(key)?);
    let mut tls = ServerTlsConfig::new().identity(identity);
    if let Some(client_ca) = &config.tls_client_ca {
        tls = tls.client_ca_root(Certificate::from_pem(read(client_ca)?));
    }
    Ok(Some(tls))
}
