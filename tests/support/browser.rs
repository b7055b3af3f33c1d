//! A real headless Chromium driven over WebDriver (Debian's `chromium` and
//! `chromium-driver`; `ACCORD_CHROMIUM` and `ACCORD_CHROMEDRIVER` name
//! others): the console is tested the way a person uses it.

use std::process::Stdio;
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// How long a page has to show what a test waits for.
pub const PATIENCE: Duration = Duration::from_secs(30);

fn program(variable: &str, default: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| default.to_owned())
}

/// A browser session and the chromedriver behind it.
pub struct Browser {
    driver: Child,
    /// The WebDriver session.
    pub client: Client,
}

impl Browser {
    /// Starts chromedriver on a port of its choosing and a headless
    /// Chromium `width` × `height` pixels.
    pub async fn start(width: u32, height: u32) -> Self {
        Self::start_with(width, height, None).await
    }

    /// A phone's screen (`width` × `height` CSS pixels, as Chromium's
    /// device emulation gives it: a desktop window cannot be that narrow).
    pub async fn phone(width: u32, height: u32) -> Self {
        let metrics = serde_json::json!({
            "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2, "touch": true },
        });
        Self::start_with(width.max(500), height, Some(metrics)).await
    }

    /// Starts chromedriver on a port of its choosing; returns it and the
    /// port. A driver that exits before it says its port (rarely, under
    /// load) is started again, up to three times.
    async fn driver() -> (Child, String) {
        let mut said = Vec::new();
        for _ in 0..3 {
            let mut driver = Command::new(program("ACCORD_CHROMEDRIVER", "chromedriver"))
                .arg("--port=0")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .expect("chromedriver starts (scripts/test installs chromium-driver)");
            let mut errors = BufReader::new(driver.stderr.take().expect("stderr")).lines();
            let mut lines = BufReader::new(driver.stdout.take().expect("stdout")).lines();
            let port = loop {
                match lines.next_line().await {
                    Ok(Some(line)) => {
                        if let Some(rest) = line.split("started successfully on port ").nth(1) {
                            break Some(rest.trim_end_matches('.').to_owned());
                        }
                        said.push(line);
                    }
                    _ => break None,
                }
            };
            if let Some(port) = port {
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                tokio::spawn(async move { while let Ok(Some(_)) = errors.next_line().await {} });
                return (driver, port);
            }
            while let Ok(Some(line)) = errors.next_line().await {
                said.push(line);
            }
            said.push(format!("exited: {:?}", driver.wait().await));
        }
        panic!("chromedriver never said its port: {said:#?}");
    }

    async fn start_with(width: u32, height: u32, emulation: Option<serde_json::Value>) -> Self {
        let (driver, port) = Self::driver().await;
        let mut options = serde_json::json!({
                "binary": program("ACCORD_CHROMIUM", "/usr/bin/chromium"),
                "args": [
                    "--headless=new",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-dev-shm-usage",
                    format!("--window-size={width},{height}"),
                ],
        });
        if let Some(emulation) = emulation {
            options["mobileEmulation"] = emulation;
        }
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("goog:chromeOptions".into(), options);
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
            .expect("a browser session");
        Self { driver, client }
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) {
        self.client.goto(url).await.expect("opens the page");
    }

    /// Runs `script` (a function body) and returns what it returns.
    pub async fn eval(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, Vec::new())
            .await
            .expect("script runs")
    }

    /// Waits until `script` returns true.
    pub async fn wait_until(&self, what: &str, script: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if self.eval(script).await == serde_json::Value::Bool(true) {
                return;
            }
            if tokio::time::Instant::now() > deadline {
                let text = self.eval("return document.body.innerText").await;
                panic!("the page never showed {what}; it shows: {text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The text of the first element matching `css`, once there is one.
    pub async fn text(&self, css: &str) -> String {
        let element = self
            .client
            .wait()
            .at_most(PATIENCE)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|error| panic!("no {css} on the page: {error}"));
        element.text().await.expect("text")
    }

    /// Saves a screenshot as `name`.png under `target/console-screenshots`.
    pub async fn screenshot(&self, name: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/console-screenshots");
        std::fs::create_dir_all(&dir).expect("screenshot directory");
        std::fs::write(dir.join(format!("{name}.png")), png).expect("screenshot written");
    }

    /// Ends the session and the driver.
    pub async fn close(mut self) {
        let _ = self.client.close().await;
        let _ = self.driver.kill().await;
    }
}
