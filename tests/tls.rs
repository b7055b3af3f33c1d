//! TLS through the real server, with certificates made in the test: the
//! server's own, and client certificates when it asks for them.

use std::path::{Path, PathBuf};

use accord_proto::v1::{self, admin_client::AdminClient};
use accord_server::Config;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};

/// A certificate authority, and PEM files of what it signed.
struct Pki {
    dir: tempfile::TempDir,
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("written");
    path
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("dir");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca =
        CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("key")).expect("CA");
    let server_key = KeyPair::generate().expect("key");
    let server_cert = CertificateParams::new(vec!["localhost".to_owned()])
        .expect("params")
        .signed_by(&server_key, &ca)
        .expect("server certificate");
    let client_key = KeyPair::generate().expect("key");
    let client_cert = CertificateParams::new(vec!["importer".to_owned()])
        .expect("params")
        .signed_by(&client_key, &ca)
        .expect("client certificate");
    write(dir.path(), "server.pem", &server_cert.pem());
    write(dir.path(), "server.key", &server_key.serialize_pem());
    write(dir.path(), "ca.pem", &ca.pem());
    Pki {
        ca_pem: ca.pem(),
        client_cert_pem: client_cert.pem(),
        client_key_pem: client_key.serialize_pem(),
        dir,
    }
}

fn tls_config(pki: &Pki, data_dir: &Path, require_client_certificates: bool) -> Config {
    let mut config = Config::ephemeral(data_dir);
    config.tls_cert = Some(pki.dir.path().join("server.pem"));
    config.tls_key = Some(pki.dir.path().join("server.key"));
    if require_client_certificates {
        config.tls_client_ca = Some(pki.dir.path().join("ca.pem"));
    }
    config
}

async fn tls_channel(
    addr: std::net::SocketAddr,
    pki: &Pki,
    identity: bool,
) -> Result<Channel, tonic::transport::Error> {
    let mut tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    if identity {
        tls = tls.identity(Identity::from_pem(
            &pki.client_cert_pem,
            &pki.client_key_pem,
        ));
    }
    Endpoint::from_shared(format!("https://{addr}"))?
        .tls_config(tls)?
        .connect()
        .await
}

async fn head(channel: Channel) -> Result<u64, tonic::Status> {
    Ok(AdminClient::new(channel)
        .get_stats(v1::GetStatsRequest {})
        .await?
        .into_inner()
        .head_position)
}

#[tokio::test]
async fn the_server_speaks_tls_and_nothing_else() {
    let pki = pki();
    let data_dir = tempfile::tempdir().expect("data dir");
    let server = accord_server::start(tls_config(&pki, data_dir.path(), false))
        .await
        .expect("starts");
    let channel = tls_channel(server.grpc_addr(), &pki, false)
        .await
        .expect("TLS handshake");
    assert_eq!(head(channel).await.expect("served over TLS"), 0);
    let plaintext = Endpoint::from_shared(format!("http://{}", server.grpc_addr()))
        .expect("endpoint")
        .connect()
        .await;
    let refused = match plaintext {
        Err(_) => true,
        Ok(channel) => head(channel).await.is_err(),
    };
    assert!(refused, "plaintext gRPC must not be served");
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn client_certificates_are_required_when_a_client_ca_is_given() {
    let pki = pki();
    let data_dir = tempfile::tempdir().expect("data dir");
    let server = accord_server::start(tls_config(&pki, data_dir.path(), true))
        .await
        .expect("starts");
    let without = match tls_channel(server.grpc_addr(), &pki, false).await {
        Err(_) => true,
        Ok(channel) => head(channel).await.is_err(),
    };
    assert!(without, "a client without a certificate is refused");
    let with = tls_channel(server.grpc_addr(), &pki, true)
        .await
        .expect("mutual TLS handshake");
    assert_eq!(head(with).await.expect("served"), 0);
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn unreadable_certificates_stop_the_start() {
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut config = Config::ephemeral(data_dir.path());
    config.tls_cert = Some(PathBuf::from("/nonexistent/cert.pem"));
    config.tls_key = Some(PathBuf::from("/nonexistent/key.pem"));
    let error = match accord_server::start(config).await {
        Ok(_) => panic!("must not start"),
        Err(error) => error.to_string(),
    };
    assert!(error.contains("/nonexistent/cert.pem"), "{error}");
}

#[tokio::test]
async fn accordctl_speaks_tls_with_the_servers_authority() {
    let pki = pki();
    let data_dir = tempfile::tempdir().expect("data dir");
    let server = accord_server::start(tls_config(&pki, data_dir.path(), true))
        .await
        .expect("starts");
    let url = format!("https://localhost:{}", server.grpc_addr().port());
    let client_cert = write(pki.dir.path(), "client.pem", &pki.client_cert_pem);
    let client_key = write(pki.dir.path(), "client.key", &pki.client_key_pem);
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_accordctl-under-test"))
        .args(["--server", &url, "--tls-ca"])
        .arg(pki.dir.path().join("ca.pem"))
        .arg("--tls-cert")
        .arg(&client_cert)
        .arg("--tls-key")
        .arg(&client_key)
        .args(["stats", "--json"])
        .output()
        .await
        .expect("runs");
    assert!(output.status.success(), "{output:?}");
    let stats: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(stats["headPosition"], "0");
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn a_tls_handshake_never_finished_is_cut_off_and_others_are_served() {
    use tokio::io::AsyncReadExt;

    let pki = pki();
    let data_dir = tempfile::tempdir().expect("data dir");
    let mut config = tls_config(&pki, data_dir.path(), false);
    config.tls_handshake_timeout_secs = 1;
    let server = accord_server::start(config).await.expect("starts");
    // Connections that say nothing, and one that starts a handshake and stops.
    let mut silent = Vec::new();
    for _ in 0..50 {
        silent.push(
            tokio::net::TcpStream::connect(server.grpc_addr())
                .await
                .expect("connects"),
        );
    }
    // A TLS 1.3 ClientHello record header announcing more than it sends.
    use tokio::io::AsyncWriteExt;
    silent[0]
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .expect("writes");
    // Meanwhile a real client is served.
    let channel = tls_channel(server.grpc_addr(), &pki, false)
        .await
        .expect("TLS handshake");
    assert_eq!(head(channel).await.expect("served"), 0);
    // Each silent connection is closed by the server (the bound here only
    // keeps a broken server from hanging the test; the timeout is 1 s).
    for mut connection in silent {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            connection.read(&mut byte),
        )
        .await
        .expect("the server closes a connection that never finishes its handshake");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    }
    server.shutdown().await.expect("stops");
}

#[tokio::test]
async fn the_console_speaks_tls_when_grpc_does() {
    use rustls_pki_types::pem::PemObject;
    let pki = pki();
    let data_dir = tempfile::tempdir().expect("data dir");
    let server = accord_server::start(tls_config(&pki, data_dir.path(), false))
        .await
        .expect("starts");
    let console = server.console_addr().expect("console");
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls_pki_types::CertificateDer::from_pem_slice(pki.ca_pem.as_bytes()).expect("CA"))
        .expect("root");
    let client = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));
    let tcp = tokio::net::TcpStream::connect(console)
        .await
        .expect("connects");
    let tls = connector
        .connect("localhost".try_into().expect("name"), tcp)
        .await
        .expect("TLS handshake with the console");
    let answer = accord_tests::http_get(tls, "/fragment/")
        .await
        .expect("answered");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("<h1>Countries</h1>"), "{answer}");
    // Plain HTTP on the console's port gets no page.
    let plain = tokio::net::TcpStream::connect(console)
        .await
        .expect("connects");
    let answer = accord_tests::http_get(plain, "/fragment/")
        .await
        .unwrap_or_default();
    assert!(!answer.contains("Countries"), "{answer}");
    server.shutdown().await.expect("stops");
}
