//! Driving headless Chromium through chromedriver (WebDriver) for the browser tests
//! (`browser.rs`, `pages.rs`): finding and starting the driver, a session with a fresh profile,
//! waiting for elements, clicks that load a page, screenshots.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)] // test code: a panic is a failure report

use fantoccini::{Client, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";

pub fn find_chromedriver() -> Option<PathBuf> {
    for p in ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"] {
        if Path::new(p).exists() {
            return Some(PathBuf::from(p));
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join("chromedriver"))
            .find(|p| p.exists())
    })
}

/// Kills chromedriver (and with it the browser) when the test ends, however it ends.
pub struct Driver {
    child: Child,
    pub profile: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub async fn start_driver(path: &Path) -> (Driver, String) {
    let port = free_port();
    let profile = std::env::temp_dir().join(format!("liaison-chromium-{}-{port}", std::process::id()));
    std::fs::create_dir_all(&profile).unwrap();
    let child = Command::new(path)
        .arg(format!("--port={port}"))
        .arg("--allowed-ips=127.0.0.1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", path.display()));
    let driver = Driver { child, profile };
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            return (driver, url);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("chromedriver did not listen on 127.0.0.1:{port} within 10 s");
}

pub async fn connect(url: &str, profile: &Path) -> Client {
    let args = [
        "--headless".to_string(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-dev-shm-usage".into(),
        "--window-size=1280,1100".into(),
        "--lang=en-US".into(),
        format!("--user-data-dir={}", profile.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({"binary": CHROMIUM, "args": args}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(url)
        .await
        .unwrap_or_else(|e| panic!("cannot open a Chromium session through chromedriver: {e}"))
}

/// Waits for an element; on failure shows the page the browser is on.
pub async fn element(c: &Client, css: &str) -> fantoccini::elements::Element {
    match c
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
    {
        Ok(el) => el,
        Err(e) => {
            let url = c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            let source = c.source().await.unwrap_or_default();
            panic!("no element {css} on {url}: {e}\n{source}");
        }
    }
}

pub async fn text_of(c: &Client, css: &str) -> String {
    element(c, css).await.text().await.unwrap()
}

/// Clicks something that loads a new page (every click in this test does: links and form
/// buttons) and waits until the new document has replaced the old one and finished loading, so
/// the next look at the page never sees the old one. Chromedriver does not always wait for the
/// navigation a form submission starts.
pub async fn click(c: &Client, css: &str) {
    let el = element(c, css).await;
    c.execute("window.__liaisonOldPage = true;", vec![])
        .await
        .unwrap_or_else(|e| panic!("cannot mark the page before clicking {css}: {e}"));
    el.click().await.unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
    let probe = "return window.__liaisonOldPage === undefined && document.readyState === 'complete';";
    for _ in 0..200 {
        // While the page changes the script may fail; that is "not yet".
        if let Ok(serde_json::Value::Bool(true)) = c.execute(probe, vec![]).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = c.current_url().await.map(|u| u.to_string()).unwrap_or_default();
    panic!("clicking {css} did not load a new page within 10 s (still on {url})");
}

pub async fn screenshot(c: &Client, name: &str) -> PathBuf {
    let png = c.screenshot().await.unwrap();
    let dir = std::env::var_os("LIAISON_SCREENSHOT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let path = dir.join(format!("liaison-ui-{name}-{}.png", std::process::id()));
    std::fs::write(&path, png).unwrap();
    eprintln!("screenshot: {}", path.display());
    path
}

/// The chromedriver to use, or `None` after a loud message when Chromium or chromedriver is
/// missing (a failure instead with `LIAISON_REQUIRE_BROWSER=1`, as CI sets).
pub fn driver_or_skip(what: &str) -> Option<PathBuf> {
    let required = std::env::var("LIAISON_REQUIRE_BROWSER").is_ok_and(|v| v == "1");
    let driver_path = find_chromedriver();
    if Path::new(CHROMIUM).exists() && driver_path.is_some() {
        return driver_path;
    }
    let msg = format!(
        "{what} SKIPPED: {CHROMIUM} exists: {}, chromedriver found: {}. \
         Install with `apt-get install -y chromium chromium-driver`.",
        Path::new(CHROMIUM).exists(),
        driver_path.is_some()
    );
    if required {
        panic!("{msg} (LIAISON_REQUIRE_BROWSER=1 makes this a failure)");
    }
    eprintln!("\n{}\n!!! {msg}\n{}\n", "!".repeat(100), "!".repeat(100));
    None
}

/// A screenshot of the whole page, not only the window: the window is made as tall as the
/// page for the picture, then put back. Written to `dir/name.png`.
pub async fn full_page(c: &Client, dir: &Path, name: &str) -> PathBuf {
    let (w, h) = c.get_window_size().await.unwrap();
    let height = c
        .execute("return Math.ceil(document.documentElement.scrollHeight);", vec![])
        .await
        .ok()
        .and_then(|v| v.as_u64())
        .unwrap_or(h)
        .clamp(600, 12_000);
    c.set_window_size(w as u32, height as u32).await.unwrap();
    let png = c.screenshot().await.unwrap();
    c.set_window_size(w as u32, h as u32).await.unwrap();
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    path
}
