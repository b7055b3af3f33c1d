//! Hostile networks, against the server as a child process (so that its
//! memory can be read): many idle connections, a flood of reset streams,
//! the HTTP/2 stream limit. The server keeps answering other clients, its
//! memory stays bounded, and its limits hold as the README says.

use std::time::Duration;

use accord_proto::v1::{self, admin_client::AdminClient};
use accord_tests::child::ChildServer;
use accord_tests::*;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const SERVER: &str = env!("CARGO_BIN_EXE_accord-server-under-test");
const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

async fn child(args: &[&str]) -> (tempfile::TempDir, ChildServer) {
    let data_dir = tempfile::tempdir().expect("data dir");
    let args: Vec<String> = args.iter().map(|arg| (*arg).to_owned()).collect();
    let server =
        ChildServer::start_with_args(std::path::Path::new(SERVER), data_dir.path(), &args).await;
    (data_dir, server)
}

/// A new client's `GetStats` on a connection of its own.
async fn new_client_served(server: &ChildServer) -> Result<u64, String> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", server.grpc_addr()))
        .map_err(|error| error.to_string())?
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(5))
        .connect()
        .await
        .map_err(|error| error.to_string())?;
    AdminClient::new(channel)
        .get_stats(v1::GetStatsRequest {})
        .await
        .map(|response| response.into_inner().head_position)
        .map_err(|status| status.to_string())
}

/// The value of the metric line starting with `name ` (0 when absent).
async fn metric(server: &ChildServer, name: &str) -> f64 {
    let text = scrape_metrics(server.metrics_addr()).await;
    text.lines()
        .find_map(|line| line.strip_prefix(&format!("{name} ")))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0.0)
}

/// Polls `name` until `done` holds for its value (connections are counted
/// by the server's accept loop, which runs on its own time).
async fn wait_for_metric(server: &ChildServer, name: &str, done: impl Fn(f64) -> bool) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let value = metric(server, name).await;
        if done(value) {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} stayed at {value}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// True when the server closes `connection` (EOF or reset) within `within`.
async fn closed_by_server(connection: &mut TcpStream, within: Duration) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(within, connection.read(&mut byte)).await,
        Ok(Ok(0) | Err(_))
    )
}

/// Raises this process's open-file limit to its hard limit (the server
/// child inherits it), and returns it.
fn raise_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit with a valid resource and a pointer to a live rlimit.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit);
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
    }
    limit.rlim_cur
}

#[tokio::test]
async fn idle_connections_are_capped_and_other_clients_are_served() {
    let _heavy = accord_tests::heavy().await;
    const CAP: usize = 2_500;
    const IDLE: usize = 2_000;
    let open_files = raise_open_files_limit();
    assert!(
        open_files > 2 * CAP as u64,
        "the test needs {} open files, the hard limit is {open_files}",
        2 * CAP
    );
    let (_dir, server) = child(&["--max-connections", &CAP.to_string()]).await;
    let rss_before = server.rss_bytes();
    // Half say nothing at all; half open HTTP/2 and make no call.
    let mut idle_tcp = Vec::new();
    for _ in 0..IDLE / 2 {
        idle_tcp.push(
            TcpStream::connect(server.grpc_addr())
                .await
                .expect("connects"),
        );
    }
    let mut idle_http2 = Vec::new();
    for _ in 0..IDLE / 2 {
        let tcp = TcpStream::connect(server.grpc_addr())
            .await
            .expect("connects");
        let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
        idle_http2.push((client, tokio::spawn(connection)));
    }
    wait_for_metric(&server, "accord_connections_open", |open| {
        open >= IDLE as f64
    })
    .await;
    assert_eq!(new_client_served(&server).await, Ok(0));
    let per_connection = server.rss_bytes().saturating_sub(rss_before) / IDLE as u64;
    println!("{IDLE} idle connections: {} KiB each", per_connection / KIB);
    assert!(
        per_connection < 64 * KIB,
        "{per_connection} bytes per idle connection"
    );

    // Beyond the cap, connections are closed as they are accepted.
    wait_for_metric(&server, "accord_connections_open", |open| {
        open == IDLE as f64
    })
    .await;
    let mut extra = Vec::new();
    for _ in 0..(CAP - IDLE) + 100 {
        extra.push(
            TcpStream::connect(server.grpc_addr())
                .await
                .expect("the kernel accepts"),
        );
    }
    let refused = wait_for_metric(&server, "accord_connections_refused_total", |refused| {
        refused >= 100.0
    })
    .await;
    assert_eq!(refused, 100.0);
    let closed = futures_util::future::join_all(
        extra
            .iter_mut()
            .map(|connection| closed_by_server(connection, Duration::from_secs(3))),
    )
    .await;
    assert_eq!(closed.iter().filter(|closed| **closed).count(), 100);
    assert!(new_client_served(&server).await.is_err(), "at the cap");

    // Room again once idle connections go.
    drop(extra);
    drop(idle_tcp);
    wait_for_metric(&server, "accord_connections_open", |open| open < CAP as f64).await;
    assert_eq!(new_client_served(&server).await, Ok(0));
    drop(idle_http2);
    server.terminate().await;
}

#[tokio::test]
async fn a_flood_of_reset_streams_is_absorbed_or_cut_off() {
    let _heavy = accord_tests::heavy().await;
    const RESETS: usize = 20_000;
    let (_dir, server) = child(&[]).await;
    let rss_before = server.rss_bytes();
    let tcp = TcpStream::connect(server.grpc_addr())
        .await
        .expect("connects");
    let (client, connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
    let connection = tokio::spawn(connection);
    let mut sent = 0;
    let mut client = Some(client);
    while sent < RESETS {
        let Some(Ok(mut ready)) = (match client.take() {
            Some(client) => Some(client.ready().await),
            None => None,
        }) else {
            break;
        };
        let request = http::Request::post(format!(
            "http://{}/accord.v1.EventLog/Subscribe",
            server.grpc_addr()
        ))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(())
        .expect("request");
        let Ok((_response, mut stream)) = ready.send_request(request, false) else {
            break;
        };
        stream.send_reset(h2::Reason::CANCEL);
        sent += 1;
        client = Some(ready);
    }
    drop(client);
    let ended = tokio::time::timeout(Duration::from_secs(60), connection)
        .await
        .expect("the flooding connection ends")
        .expect("connection task");
    println!("{sent} streams opened and reset; the connection ended with {ended:?}");
    // Served meanwhile and after; nothing held by the reset streams.
    assert_eq!(new_client_served(&server).await, Ok(0));
    wait_for_metric(&server, "accord_subscriptions_active", |active| {
        active == 0.0
    })
    .await;
    let grown = server.rss_bytes().saturating_sub(rss_before);
    println!("memory after the flood: +{} MiB", grown / MIB);
    assert!(
        grown < 64 * MIB,
        "+{grown} bytes after {sent} reset streams"
    );
    server.terminate().await;
}

#[tokio::test]
async fn the_http2_stream_limit_is_advertised() {
    let (_dir, server) = child(&["--max-concurrent-streams", "64"]).await;
    let tcp = TcpStream::connect(server.grpc_addr())
        .await
        .expect("connects");
    let (client, mut connection) = h2::client::handshake(tcp).await.expect("HTTP/2");
    // The server's SETTINGS arrive with its first frames.
    let mut client = client;
    let request = http::Request::post(format!(
        "http://{}/accord.v1.Admin/GetStats",
        server.grpc_addr()
    ))
    .header("content-type", "application/grpc")
    .header("te", "trailers")
    .body(())
    .expect("request");
    client = client.ready().await.expect("ready");
    let (response, mut body) = client.send_request(request, false).expect("sent");
    body.send_data(bytes::Bytes::from_static(&[0, 0, 0, 0, 0]), true)
        .expect("empty message");
    let response = tokio::select! {
        response = response => response.expect("answered"),
        _ = &mut connection => panic!("the connection ended"),
    };
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(connection.max_concurrent_send_streams(), 64);
    drop(client);
    server.terminate().await;
}

/// Starts the server with its open-file limit at `limit` (soft and hard, so
/// that it cannot raise it).
async fn child_with_open_files(limit: u64) -> (tempfile::TempDir, ChildServer) {
    let data_dir = tempfile::tempdir().expect("data dir");
    let wrapper = [
        "sh".to_owned(),
        "-c".to_owned(),
        format!("ulimit -n {limit} && exec \"$@\""),
        "sh".to_owned(),
    ];
    let server =
        ChildServer::start_under(&wrapper, std::path::Path::new(SERVER), data_dir.path(), &[])
            .await;
    (data_dir, server)
}

#[tokio::test]
async fn a_flood_of_idle_connections_under_1024_descriptors_leaves_appends_working() {
    let _heavy = accord_tests::heavy().await;
    const FLOOD: usize = 1_250;
    raise_open_files_limit();
    let (_dir, server) = child_with_open_files(1_024).await;
    let channel = connect(server.grpc_addr()).await;
    let mut agreements =
        accord_proto::v1::agreement_service_client::AgreementServiceClient::new(channel.clone());
    agreements
        .announce(announce_wabtec("kz-flood"))
        .await
        .expect("announced before the flood");
    // Both ports flooded with idle connections, more than the budget holds.
    // As an attacker would: every connection at once, whatever comes of each.
    let attempts = (0..FLOOD).flat_map(|_| [server.grpc_addr(), server.console_addr()]);
    let flood: Vec<TcpStream> = futures_util::future::join_all(
        attempts.map(|addr| tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(addr))),
    )
    .await
    .into_iter()
    .filter_map(|connected| connected.ok()?.ok())
    .collect();
    // Appends on the connection already open keep succeeding: the group
    // commit needs no descriptor the flood could take.
    agreements
        .sign(sign("kz-flood"))
        .await
        .expect("signed during the flood");
    let mut head = 2;
    for delivery in 1..=19 {
        head = agreements
            .record_delivery(deliver("kz-flood", &format!("flood-{delivery}"), 1))
            .await
            .expect("appended during the flood")
            .into_inner()
            .position;
    }
    assert_eq!(head, 21);
    assert_eq!(verify_clean(channel.clone()).await, 21);
    // The caps held: past them connections were closed as accepted.
    wait_for_metric(&server, "accord_connections_refused_total", |refused| {
        refused > 0.0
    })
    .await;
    let console_refused = scrape_metrics(server.metrics_addr()).await;
    assert!(
        console_refused.lines().any(|line| line
            .starts_with("accord_http_connections_refused_total{port=\"console\"}")
            && !line.ends_with(" 0")),
        "{console_refused}"
    );
    assert_eq!(metric(&server, "accord_open_files_limit").await, 1_024.0);
    drop(flood);
    // Once the flood is gone, new clients are served again.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while new_client_served(&server).await != Ok(21) {
        assert!(tokio::time::Instant::now() < deadline, "never served again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn the_console_cuts_off_a_connection_that_says_nothing() {
    let (_dir, server) = child(&[]).await;
    let mut silent = TcpStream::connect(server.console_addr())
        .await
        .expect("connects");
    assert!(
        closed_by_server(&mut silent, Duration::from_secs(30)).await,
        "a connection that sends no request is closed after the header timeout"
    );
    // Half a request line, then nothing: closed too (slowloris).
    let mut slow = TcpStream::connect(server.console_addr())
        .await
        .expect("connects");
    tokio::io::AsyncWriteExt::write_all(&mut slow, b"GET / HTTP/1.1\r\nHost: local")
        .await
        .expect("writes");
    assert!(closed_by_server(&mut slow, Duration::from_secs(30)).await);
    assert!(server.terminate().await.success());
}
