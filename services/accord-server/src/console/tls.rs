//! TLS for the console when the gRPC port has it: the same certificate and
//! key, and the same client authority when clients must show certificates.

use std::sync::Arc;

use rustls::server::WebPkiClientVerifier;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::server_error::ServerError;

fn invalid(what: &std::path::Path, error: impl std::fmt::Display) -> ServerError {
    ServerError::Config(format!("console TLS: {}: {error}", what.display()))
}

fn certificates(path: &std::path::Path) -> Result<Vec<CertificateDer<'static>>, ServerError> {
    CertificateDer::pem_file_iter(path)
        .map_err(|error| invalid(path, error))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|error| invalid(path, error))
}

/// The acceptor, if the configuration gives the gRPC port TLS.
pub(crate) fn acceptor(config: &Config) -> Result<Option<TlsAcceptor>, ServerError> {
    let (Some(cert), Some(key)) = (&config.tls_cert, &config.tls_key) else {
        return Ok(None);
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|error| invalid(cert, error))?;
    let builder = match &config.tls_client_ca {
        Some(client_ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for certificate in certificates(client_ca)? {
                roots
                    .add(certificate)
                    .map_err(|error| invalid(client_ca, error))?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map_err(|error| invalid(client_ca, error))?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let key = PrivateKeyDer::from_pem_file(key).map_err(|error| invalid(key, error))?;
    let mut tls = builder
        .with_single_cert(certificates(cert)?, key)
        .map_err(|error| invalid(cert, error))?;
    tls.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(tls))))
}
