//! The web console in a real headless Chromium, against the real server
//! with the UNGA 80 facts loaded: what a person sees on each view, that it
//! follows appends without a reload, that tokens decide what is shown and
//! done, and that a phone-sized screen needs no sideways scrolling.

use accord_proto::v1;
use accord_server::auth::{TokenTable, new_token};
use accord_tests::browser::Browser;
use accord_tests::*;

fn console_url(server: &TestServer, path: &str) -> String {
    let addr = server
        .server()
        .console_addr()
        .expect("the console is served");
    format!("http://{addr}{path}")
}

/// Marks the page, to tell later that it was not reloaded.
async fn mark(browser: &Browser) {
    browser
        .eval("window.accordTestMark = 42; return true")
        .await;
}

async fn still_marked(browser: &Browser) -> bool {
    browser.eval("return window.accordTestMark === 42").await == serde_json::Value::Bool(true)
}

#[tokio::test]
async fn the_countries_view_answers_hub_or_market_and_follows_appends() {
    let _heavy = heavy().await;
    let server = TestServer::start().await;
    load_unga80(&server).await;
    let browser = Browser::start(1280, 900).await;
    browser.open(&console_url(&server, "/")).await;
    assert_eq!(
        browser
            .text("#countries tr[data-country=KZ] .localization")
            .await,
        "45 %"
    );
    assert_eq!(
        browser
            .text("#countries tr[data-country=UZ] .dependent")
            .await,
        "USD 8.5 bn"
    );
    let kz_reading = browser
        .text("#countries tr[data-country=KZ] td:last-child")
        .await;
    assert_eq!(kz_reading, "becoming a production hub");
    assert!(
        browser
            .eval("return document.querySelector('svg.chart g[data-country=UZ]') !== null")
            .await
            == serde_json::Value::Bool(true),
        "UZ is on the chart"
    );
    browser.screenshot("countries").await;
    // An agreement announced through gRPC changes the view, no reload.
    let before = browser
        .text("#countries tr[data-country=KZ] td:nth-of-type(1)")
        .await;
    mark(&browser).await;
    server
        .agreements()
        .announce(announce_wabtec("kz-console-extra"))
        .await
        .expect("announced");
    let expected = (before.parse::<u64>().expect("a count") + 1).to_string();
    browser
        .wait_until(
            "KZ with one more agreement",
            &format!(
                "return document.querySelector('#countries tr[data-country=KZ] td')?.textContent === '{expected}'"
            ),
        )
        .await;
    assert!(still_marked(&browser).await, "the page was not reloaded");
    browser.close().await;
}

#[tokio::test]
async fn the_log_tails_live_and_an_agreement_shows_its_timeline_in_order() {
    let _heavy = heavy().await;
    let server = TestServer::start().await;
    let head = load_unga80(&server).await;
    let browser = Browser::start(1280, 900).await;
    browser.open(&console_url(&server, "/log")).await;
    browser
        .wait_until(
            "the latest event first",
            &format!(
                "return document.querySelector('#log tbody tr')?.dataset.position === '{head}'"
            ),
        )
        .await;
    browser.screenshot("log").await;
    mark(&browser).await;
    let appended = server
        .agreements()
        .announce(announce_wabtec("kz-live-tail"))
        .await
        .expect("announced")
        .into_inner()
        .position;
    browser
        .wait_until(
            "the appended event at the top",
            &format!(
                "return document.querySelector('#log tbody tr')?.dataset.position === '{appended}'"
            ),
        )
        .await;
    assert!(still_marked(&browser).await, "the page was not reloaded");
    // Its link opens the agreement, whose timeline lists its events in order.
    browser
        .eval("document.querySelector('#log tbody tr a[href=\"/agreements/kz-wabtec-locomotives\"]').click(); return true")
        .await;
    browser
        .wait_until(
            "the agreement's timeline",
            "return document.querySelectorAll('#timeline li').length >= 3",
        )
        .await;
    let positions = browser
        .eval("return [...document.querySelectorAll('#timeline li')].map(li => Number(li.dataset.position))")
        .await;
    let positions: Vec<u64> = serde_json::from_value(positions).expect("positions");
    let mut sorted = positions.clone();
    sorted.sort_unstable();
    assert_eq!(positions, sorted, "in log order");
    assert!(
        browser.text("#view h1").await.contains("Wabtec"),
        "the agreement's title"
    );
    browser.screenshot("agreement").await;
    // As of its first event it was only announced.
    browser
        .open(&console_url(
            &server,
            &format!("/agreements/kz-wabtec-locomotives?as_of={}", positions[0]),
        ))
        .await;
    browser
        .wait_until(
            "the agreement as first announced",
            "return document.querySelectorAll('#timeline li').length === 1 && document.querySelector('.lede')?.textContent.includes('announced')",
        )
        .await;
    // The operations view, for the README.
    browser.open(&console_url(&server, "/operations")).await;
    browser
        .wait_until(
            "the operations view with its rate",
            "return !!document.getElementById('operations') && /events\\/s/.test(document.getElementById('rate').textContent)",
        )
        .await;
    browser.screenshot("operations").await;
    browser.close().await;
}

struct Tokens {
    reader: String,
    operator: String,
    _file: tempfile::NamedTempFile,
}

fn tokens() -> Tokens {
    let (reader, operator) = (new_token(), new_token());
    let file = tempfile::NamedTempFile::new().expect("token file");
    let text = [
        TokenTable::line_for("analyst", "reader", &reader),
        TokenTable::line_for("ops", "operator,reader", &operator),
    ]
    .join("\n");
    std::fs::write(file.path(), text).expect("written");
    Tokens {
        reader,
        operator,
        _file: file,
    }
}

async fn sign_in(browser: &Browser, token: &str) {
    browser
        .wait_until(
            "the sign-in form",
            "return !document.getElementById('login').hidden",
        )
        .await;
    browser
        .eval(&format!(
            "document.getElementById('token').value = '{token}'; document.getElementById('login').requestSubmit(); return true"
        ))
        .await;
}

#[tokio::test]
async fn a_reader_token_looks_and_only_an_operator_token_acts() {
    let _heavy = heavy().await;
    let tokens = tokens();
    let path = tokens._file.path().to_path_buf();
    let server = TestServer::start_with(|config| config.token_file = Some(path)).await;
    let browser = Browser::start(1280, 900).await;
    browser.open(&console_url(&server, "/operations")).await;
    // Without a token the console shows nothing but the sign-in form (once
    // the page's script has run: under load it runs after `open` returns).
    browser
        .wait_until(
            "the sign-in form",
            "return !document.getElementById('login').hidden",
        )
        .await;
    assert_eq!(
        browser
            .eval("return document.getElementById('view').hidden")
            .await,
        serde_json::Value::Bool(true)
    );
    sign_in(&browser, "not-a-token").await;
    browser
        .wait_until(
            "a refusal of the bad token",
            "return document.getElementById('login-error').textContent.includes('not accepted')",
        )
        .await;
    sign_in(&browser, &tokens.reader).await;
    browser
        .wait_until(
            "the operations view",
            "return !!document.getElementById('operations')",
        )
        .await;
    assert_eq!(
        browser
            .eval("return document.querySelectorAll('button[data-action]').length")
            .await,
        serde_json::json!(0),
        "no action a reader cannot do is shown"
    );
    // Even asked directly, a reader's rebuild is refused.
    let status = browser
        .eval(&format!(
            "return fetch('/action/rebuild', {{method: 'POST', headers: {{'x-accord-console': '1', authorization: 'Bearer {}'}}}}).then(r => r.status)",
            tokens.reader
        ))
        .await;
    assert_eq!(status, serde_json::json!(403));
    // The token lives in the tab's session storage, not in a cookie.
    assert_eq!(
        browser.eval("return document.cookie").await,
        serde_json::json!("")
    );
    // An operator sees the actions and verifies the log from the page.
    browser.eval("sessionStorage.clear(); return true").await;
    browser.open(&console_url(&server, "/operations")).await;
    sign_in(&browser, &tokens.operator).await;
    browser
        .wait_until(
            "the operator's actions",
            "return document.querySelectorAll('button[data-action]').length === 2",
        )
        .await;
    browser
        .eval("document.querySelector('button[data-action=verify]').click(); return true")
        .await;
    browser
        .wait_until(
            "a finished verification",
            "return document.getElementById('action-status').textContent.includes('The log is sound')",
        )
        .await;
    // The rebuild, too, runs from the page with its progress.
    browser
        .eval("document.querySelector('button[data-action=rebuild]').click(); return true")
        .await;
    browser
        .wait_until(
            "a finished rebuild",
            "return document.getElementById('action-status').textContent.includes('Read models rebuilt')",
        )
        .await;
    // A request from another site (no console header) cannot act.
    let cross = browser
        .eval(&format!(
            "return fetch('/action/rebuild', {{method: 'POST', headers: {{authorization: 'Bearer {}'}}}}).then(r => r.status)",
            tokens.operator
        ))
        .await;
    assert_eq!(cross, serde_json::json!(403));
    browser.close().await;
}

#[tokio::test]
async fn a_phone_width_needs_no_sideways_scrolling() {
    let _heavy = heavy().await;
    let server = TestServer::start().await;
    load_unga80(&server).await;
    let browser = Browser::phone(390, 844).await;
    for (path, ready) in [
        ("/", "#countries"),
        ("/agreements", "#agreements"),
        ("/agreements/kz-wabtec-locomotives", "#timeline"),
        ("/log", "#log"),
        ("/operations", "#operations"),
    ] {
        browser.open(&console_url(&server, path)).await;
        browser
            .wait_until(
                ready,
                &format!("return !!document.querySelector('{ready}')"),
            )
            .await;
        assert_eq!(
            browser.eval("return window.innerWidth").await,
            serde_json::json!(390),
            "a 390 px wide screen"
        );
        assert_eq!(
            browser.eval("return window.innerWidth").await,
            serde_json::json!(390),
            "a 390 px wide screen"
        );
        let overflow = browser
            .eval("return document.documentElement.scrollWidth - window.innerWidth")
            .await;
        assert!(
            overflow.as_i64().is_some_and(|overflow| overflow <= 0),
            "{path} scrolls sideways by {overflow} px"
        );
        if path == "/" {
            browser.screenshot("phone-countries").await;
        }
    }
    browser.close().await;
}

#[tokio::test]
async fn a_lost_connection_is_shown_and_the_page_resumes_without_missing_an_event() {
    let _heavy = heavy().await;
    let server = TestServer::start().await;
    let head = load_unga80(&server).await;
    let proxy =
        accord_tests::proxy::CuttableProxy::start(server.server().console_addr().expect("console"))
            .await;
    let browser = Browser::start(1280, 900).await;
    browser.open(&format!("http://{}/log", proxy.addr())).await;
    browser
        .wait_until(
            "the log, live",
            &format!(
                "return document.querySelector('#log tbody tr')?.dataset.position === '{head}' && document.getElementById('connection').textContent === 'Live'"
            ),
        )
        .await;
    mark(&browser).await;
    proxy.cut();
    browser
        .wait_until(
            "that the connection was lost",
            "return document.getElementById('connection').textContent.includes('Connection lost')",
        )
        .await;
    // Appended while the page cannot hear.
    let missed = server
        .agreements()
        .announce(announce_wabtec("kz-while-offline"))
        .await
        .expect("announced")
        .into_inner()
        .position;
    proxy.reopen();
    browser
        .wait_until(
            "the event appended while offline, and the page live again",
            &format!(
                "return document.querySelector('#log tbody tr')?.dataset.position === '{missed}' && document.getElementById('connection').textContent === 'Live'"
            ),
        )
        .await;
    let rows = browser
        .eval(&format!(
            "return document.querySelectorAll('#log tbody tr[data-position=\"{missed}\"]').length"
        ))
        .await;
    assert_eq!(rows, serde_json::json!(1), "shown once");
    assert!(still_marked(&browser).await, "the page was not reloaded");
    browser.close().await;
}

#[tokio::test]
async fn the_log_filters_by_type_and_a_keyboard_alone_gets_around() {
    use fantoccini::key::Key;
    let _heavy = heavy().await;
    let server = TestServer::start().await;
    load_unga80(&server).await;
    let browser = Browser::start(1280, 900).await;
    browser.open(&console_url(&server, "/")).await;
    browser
        .wait_until(
            "the countries view",
            "return !!document.getElementById('countries')",
        )
        .await;
    // Tab from the top reaches the skip link first, then the views.
    let body = browser
        .client
        .find(fantoccini::Locator::Css("body"))
        .await
        .expect("body");
    body.send_keys(&Key::Tab).await.expect("tab");
    let focused = browser
        .eval("return document.activeElement.className")
        .await;
    assert_eq!(
        focused,
        serde_json::json!("skip"),
        "the skip link comes first"
    );
    browser
        .eval("document.querySelector('nav a[href=\"/log\"]').focus(); return true")
        .await;
    let active = browser.client.active_element().await.expect("focused");
    active.send_keys(&Key::Enter).await.expect("enter");
    browser
        .wait_until(
            "the log, opened with Enter",
            "return !!document.getElementById('log')",
        )
        .await;
    // Only signed events, and only new signed ones come live.
    browser
        .open(&console_url(&server, "/log?type=agreement.signed"))
        .await;
    browser
        .wait_until(
            "the signed events only",
            "const rows = [...document.querySelectorAll('#log tbody tr')]; return rows.length === 2 && rows.every(row => row.cells[2].textContent === 'agreement.signed') && document.getElementById('connection').textContent === 'Live'",
        )
        .await;
    let mut client = server.agreements();
    client
        .announce(announce_wabtec("kz-filtered"))
        .await
        .expect("announced");
    let signed = client
        .sign(sign("kz-filtered"))
        .await
        .expect("signed")
        .into_inner()
        .position;
    browser
        .wait_until(
            "the new signature at the top, the announcement left out",
            &format!(
                "const rows = [...document.querySelectorAll('#log tbody tr')]; return rows.length === 3 && rows[0].dataset.position === '{signed}'"
            ),
        )
        .await;
    browser.close().await;
}

#[tokio::test]
async fn the_agreements_list_filters_and_pages() {
    let _heavy = heavy().await;
    let server = TestServer::start().await;
    load_unga80(&server).await;
    let mut client = server.agreements();
    for index in 0..30 {
        client
            .announce(announce_wabtec(&format!("kz-paged-{index:02}")))
            .await
            .expect("announced");
    }
    let browser = Browser::start(1280, 900).await;
    browser.open(&console_url(&server, "/agreements")).await;
    browser
        .wait_until("the list", "return !!document.getElementById('agreements')")
        .await;
    // Filter through the form, as a person does.
    browser
        .eval("document.querySelector('input[name=buyer]').value = 'kz'; document.querySelector('select[name=stage]').value = 'announced'; document.querySelector('form.filters').requestSubmit(); return true")
        .await;
    let only_kz_announced = "const rows = [...document.querySelectorAll('#agreements tbody tr')]; return rows.length > 0 && rows.every(row => row.cells[1].textContent === 'KZ' && row.cells[4].textContent === 'announced')";
    browser
        .wait_until(
            "25 announced KZ agreements and a next page",
            &format!("return location.search.includes('buyer=kz') && document.querySelectorAll('#agreements tbody tr').length === 25 && !!document.querySelector('a[rel=next]') && (() => {{ {only_kz_announced} }})()"),
        )
        .await;
    browser
        .eval("document.querySelector('a[rel=next]').click(); return true")
        .await;
    browser
        .wait_until(
            "the other 5 on the next page, and no further page",
            &format!("return document.querySelectorAll('#agreements tbody tr').length === 5 && !document.querySelector('a[rel=next]') && (() => {{ {only_kz_announced} }})()"),
        )
        .await;
    browser.close().await;
}

/// Opens `GET /live` and returns the connection and its status line.
async fn open_live(addr: std::net::SocketAddr) -> (tokio::net::TcpStream, String) {
    open_console_live(addr, "", None).await
}

#[tokio::test]
async fn live_pages_are_bounded_and_a_closed_one_frees_its_place() {
    let server = TestServer::start_with(|config| config.max_subscriptions = 2).await;
    let addr = server.server().console_addr().expect("console");
    let (first, status) = open_live(addr).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (_second, status) = open_live(addr).await;
    assert_eq!(status, "HTTP/1.1 200 OK");
    let (_third, status) = open_live(addr).await;
    assert_eq!(status, "HTTP/1.1 429 Too Many Requests");
    let metrics = scrape_metrics(server.server().metrics_addr()).await;
    assert!(
        metrics
            .lines()
            .any(|line| line == "accord_console_live_pages 2"),
        "{metrics}"
    );
    drop(first);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_again, status) = open_live(addr).await;
        if status == "HTTP/1.1 200 OK" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place was never freed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// `GET path` from the console at `addr`: the status line and the whole answer.
async fn fragment(addr: std::net::SocketAddr, path: &str) -> (String, String) {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let answer = http_get(stream, path).await.expect("answered");
    let status = answer.lines().next().unwrap_or_default().to_owned();
    (status, answer)
}

#[tokio::test]
async fn a_long_timeline_shows_its_latest_events_and_says_so() {
    let server = TestServer::start().await;
    let head = append_deliveries(&server, "kz-long", 1_100).await;
    // The read models have applied it all.
    server
        .agreements()
        .get_agreement(v1::GetAgreementRequest {
            agreement_id: "kz-long".into(),
            min_position: head,
            as_of_position: 0,
        })
        .await
        .expect("projected");
    let addr = server.server().console_addr().expect("console");
    let (status, page) = fragment(addr, "/fragment/agreements/kz-long").await;
    assert!(status.contains(" 200 "), "{status}");
    assert_eq!(page.matches("<li data-position=").count(), 1_000);
    assert!(
        page.contains(&format!("<li data-position=\"{head}\">")),
        "the latest is shown"
    );
    assert!(
        page.contains("102 earlier ones are not shown"),
        "it says so"
    );
    let (_, short) = fragment(addr, "/fragment/agreements/kz-long?as_of=50").await;
    assert_eq!(short.matches("<li data-position=").count(), 50);
    assert!(!short.contains("earlier ones"));
}

#[tokio::test]
async fn the_console_serves_a_node_on_nats() {
    let nats = accord_tests::nats::NatsNode::single().await;
    let url = nats.url().to_owned();
    let server = TestServer::start_with(move |config| {
        config.store = url;
        config.nats_replicas = 1;
    })
    .await;
    load_unga80(&server).await;
    let addr = server.server().console_addr().expect("console");
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (status, page) = fragment(addr, "/fragment/").await;
        assert!(status.contains(" 200 "), "{status}");
        if page.contains("<td class=\"num localization\">45 %</td>") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{page}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The operations view lists the cluster's consumer groups with their lag.
    accord_proto::v1::consumer_groups_client::ConsumerGroupsClient::new(server.channel())
        .create_consumer_group(v1::CreateConsumerGroupRequest {
            name: "billing".into(),
            settings: Some(v1::ConsumerGroupSettings::default()),
        })
        .await
        .expect("group created");
    let (status, page) = fragment(addr, "/fragment/operations").await;
    assert!(status.contains(" 200 "), "{status}");
    let row = page
        .split("<tr>")
        .find(|row| row.contains("<th scope=\"row\">billing</th>"))
        .unwrap_or_else(|| panic!("no row of the group: {page}"));
    let head = server.head().await;
    assert!(
        row.contains(&format!("<td class=\"num\">{head}</td>")),
        "its lag is the whole log ({head}): {row}"
    );
}
