//! The console against a careless or hostile client: a page that rebinds
//! its name to this machine, live pages opened at the start of a long log
//! and never read, one client taking every live-page slot.

use std::net::SocketAddr;
use std::time::Duration;

use accord_server::auth::new_token;
use accord_tests::child::ChildServer;
use accord_tests::crash_cycles::Random;
use accord_tests::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const SERVER: &str = env!("CARGO_BIN_EXE_accord-server-under-test");
const MIB: u64 = 1024 * 1024;

/// Sends `request` (whole, with `Connection: close`) and returns the answer.
async fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connects");
    stream.write_all(request.as_bytes()).await.expect("asks");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("answered");
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or_default()
}

fn get(path: &str, host: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

fn verify_action(host: &str) -> String {
    format!(
        "POST /action/verify HTTP/1.1\r\nHost: {host}\r\nx-accord-console: 1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

#[tokio::test]
async fn a_page_that_rebinds_its_name_to_the_console_is_refused() {
    let server = TestServer::start_with(|config| {
        config.console_hosts = vec!["Console.Example.ORG".into()];
    })
    .await;
    load_unga80(&server).await;
    let addr = server.server().console_addr().expect("console");
    for host in [
        "rebind.example",
        "rebind.example:8080",
        "localhost.rebind.example",
    ] {
        let answer = exchange(addr, &get("/fragment/", host)).await;
        assert_eq!(status_line(&answer), "HTTP/1.1 403 Forbidden", "{host}");
        assert!(answer.contains("--console-host"), "{answer}");
        assert!(!answer.contains("UZ"), "no view leaks: {answer}");
        let answer = exchange(addr, &verify_action(host)).await;
        assert_eq!(status_line(&answer), "HTTP/1.1 403 Forbidden", "{host}");
    }
    let answer = exchange(addr, "GET /fragment/ HTTP/1.0\r\n\r\n").await;
    assert_eq!(status_line(&answer), "HTTP/1.0 400 Bad Request");
    for host in [
        "localhost".to_owned(),
        addr.to_string(),
        format!("localhost:{}", addr.port()),
        "console.example.org".to_owned(),
    ] {
        let answer = exchange(addr, &get("/fragment/", &host)).await;
        assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{host}");
        assert!(answer.contains("UZ"), "{answer}");
    }
    let answer = exchange(addr, &verify_action("localhost")).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK", "{answer}");
    server.stop().await;
}

/// Opens `GET /live?after=N` (with `token`, if any).
async fn open_live(addr: SocketAddr, after: u64, token: Option<&str>) -> (TcpStream, String) {
    open_console_live(addr, &format!("after={after}"), token).await
}

/// Reads the feed until its first `head` frame; returns the `append`
/// frames before it.
async fn appends_until_head(stream: &mut TcpStream) -> usize {
    let mut text = Vec::new();
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let read = tokio::time::timeout(Duration::from_secs(120), stream.read(&mut buffer))
            .await
            .expect("the feed goes on")
            .expect("reads");
        assert!(read > 0, "the feed ended");
        text.extend_from_slice(&buffer[..read]);
        let seen = String::from_utf8_lossy(&text);
        if let Some(at) = seen.find("event: head") {
            return seen[..at].matches("event: append").count();
        }
    }
}

#[tokio::test]
async fn live_pages_opened_at_the_start_of_a_long_log_stay_small_and_stop_when_closed() {
    let _heavy = heavy().await;
    const EVENTS: usize = 40_000;
    const PAGES: usize = 8;
    let data_dir = tempfile::tempdir().expect("data dir");
    let server =
        ChildServer::start_with_args(std::path::Path::new(SERVER), data_dir.path(), &[]).await;
    let head = append_deliveries_at(server.grpc_addr(), "kz-long", EVENTS).await;
    let rss_before = server.rss_bytes();
    // Pages that never read, from the first position.
    let mut silent = Vec::new();
    for _ in 0..PAGES - 1 {
        let (page, status) = open_live(server.console_addr(), 0, None).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        silent.push(page);
    }
    // One that reads gets every event, in chunks, before the head.
    let (mut reading, status) = open_live(server.console_addr(), 0, None).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert_eq!(appends_until_head(&mut reading).await as u64, head);
    let grown = server.rss_bytes().saturating_sub(rss_before);
    println!(
        "{PAGES} live pages from position 0 of {head} events: the server grew {} MiB",
        grown / MIB
    );
    assert!(
        grown < 64 * MIB,
        "{PAGES} live pages grew the server by {} MiB",
        grown / MIB
    );
    // Closed pages stop at once and free their places.
    drop(silent);
    drop(reading);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while metric(server.metrics_addr(), "accord_console_live_pages").await > 0.0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "closed pages still open"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn one_client_cannot_take_every_live_page() {
    let (greedy, other) = (new_token(), new_token());
    let file = token_file(&[("greedy", "reader", &greedy), ("other", "reader", &other)]);
    let path = file.path().to_owned();
    let server = TestServer::start_with(move |config| {
        config.token_file = Some(path);
        config.max_subscriptions = 10;
        config.max_subscriptions_per_client = 3;
    })
    .await;
    let addr = server.server().console_addr().expect("console");
    let mut held = Vec::new();
    for _ in 0..3 {
        let (page, status) = open_live(addr, 0, Some(&greedy)).await;
        assert_eq!(status, "HTTP/1.1 200 OK");
        held.push(page);
    }
    let (mut refused, status) = open_live(addr, 0, Some(&greedy)).await;
    assert_eq!(status, "HTTP/1.1 429 Too Many Requests");
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), refused.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(
        answer.contains("--max-subscriptions-per-client"),
        "{answer}"
    );
    // Another client still gets its pages.
    let (_page, status) = open_live(addr, 0, Some(&other)).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    drop(held);
    server.stop().await;
}

/// Picks from `choices` with `random` (seeded: a failure repeats).
fn pick<'a>(random: &mut Random, choices: &[&'a str]) -> &'a str {
    choices[random.below(choices.len() as u64) as usize]
}

/// A query value: empty, numbers at the edges, percent-escapes (some
/// broken), non-ASCII, long.
fn query_value(random: &mut Random) -> String {
    match random.below(9) {
        0 => String::new(),
        1 => u64::MAX.to_string(),
        2 => "-1".into(),
        3 => "18446744073709551616".into(),
        4 => "%ff%fe%00%".into(),
        5 => "%E2%82%AC%20KZ".into(),
        6 => "x".repeat(random.below(20_000) as usize),
        7 => pick(
            random,
            &[
                "KZ",
                "UZ",
                "agreement.signed",
                "AGREEMENT_STAGE_SIGNED",
                "rail",
            ],
        )
        .into(),
        _ => random.below(100).to_string(),
    }
}

#[tokio::test]
async fn arbitrary_query_strings_never_fail_the_console() {
    const REQUESTS: usize = 400;
    let server = TestServer::start().await;
    load_unga80(&server).await;
    let addr = server.server().console_addr().expect("console");
    let seed = accord_tests::crash_cycles::seed_from_env();
    println!("ACCORD_CRASH_SEED={seed}");
    let mut random = Random(seed);
    let keys = [
        "after",
        "type",
        "agreement",
        "country",
        "buyer",
        "supplier",
        "sector",
        "stage",
        "page",
        "as_of",
        "",
        "=",
        "type[]",
    ];
    let paths = [
        "/fragment/log",
        "/fragment/agreements",
        "/fragment/agreements/kz-wabtec-locomotives",
        "/fragment/agreements/%00..%2f",
        "/fragment/",
        "/fragment/operations",
        "/live",
    ];
    let mut statuses = std::collections::BTreeMap::new();
    for _ in 0..REQUESTS {
        let path = pick(&mut random, &paths);
        let pairs = random.below(4);
        let query: Vec<String> = (0..pairs)
            .map(|_| format!("{}={}", pick(&mut random, &keys), query_value(&mut random)))
            .collect();
        let request = format!(
            "GET {path}?{} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            query.join("&")
        );
        let mut stream = TcpStream::connect(addr).await.expect("connects");
        stream.write_all(request.as_bytes()).await.expect("asks");
        let mut head = vec![0u8; 12];
        stream.read_exact(&mut head).await.expect("answers");
        let status = String::from_utf8_lossy(&head[9..12]).into_owned();
        assert!(
            !status.starts_with('5'),
            "{status} for {}",
            &request[..request.len().min(300)]
        );
        *statuses.entry(status).or_insert(0) += 1;
    }
    println!("{REQUESTS} random queries: {statuses:?}");
    assert!(statuses.keys().any(|status| status == "200"));
    assert!(statuses.keys().any(|status| status == "400"));
    let answer = exchange(addr, &get("/fragment/", "localhost")).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
    server.stop().await;
}

#[tokio::test]
async fn a_timeline_of_large_events_is_bounded_in_bytes_and_says_what_it_leaves_out() {
    const LOCALIZATIONS: u64 = 120;
    let server = TestServer::start().await;
    let mut agreements = signed_agreement(&server, "kz-large").await;
    // Each about 60 KB, under the 64 KiB event limit: 7 MB in all (the
    // same transfers each time: an agreement lists at most 100 different).
    for index in 0..LOCALIZATIONS {
        let mut request = localize("kz-large", &format!("large-{index}"));
        request.technology_transfer = (0..30)
            .map(|entry| format!("{entry}-{}", "t".repeat(1_990)))
            .collect();
        agreements
            .record_localization(request)
            .await
            .expect("localized");
    }
    let total = LOCALIZATIONS + 2;
    // The read models have applied it all.
    agreements
        .get_agreement(accord_proto::v1::GetAgreementRequest {
            agreement_id: "kz-large".into(),
            min_position: total,
            as_of_position: 0,
        })
        .await
        .expect("projected");
    let addr = server.server().console_addr().expect("console");
    let answer = exchange(addr, &get("/fragment/agreements/kz-large", "localhost")).await;
    assert_eq!(status_line(&answer), "HTTP/1.1 200 OK");
    let shown = answer.matches("<li data-position=").count() as u64;
    assert!(
        (10..total).contains(&shown),
        "{shown} of {total} events shown"
    );
    assert!(
        answer.contains(&format!("<li data-position=\"{total}\">")),
        "the latest is shown"
    );
    assert!(
        answer.contains(&format!("{} earlier ones are not shown", total - shown)),
        "it says how many it leaves out"
    );
    assert!(answer.len() < 8 * 1024 * 1024, "{} bytes", answer.len());
    server.stop().await;
}
