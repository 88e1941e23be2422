//! A real browser for e2e tests: headless Chromium driven over WebDriver by a `chromedriver` the
//! harness starts on a free loopback port, with screenshots kept in
//! `target/e2e-artifacts/<test>/`. (`browser.rs` is the other browser: an HTTP client with a
//! cookie jar that shows every redirect; this one runs the pages' HTML, forms and scripts.)
//!
//! ```no_run
//! # async fn demo(backend: &str) -> Result<(), kube_bind_e2e::harness::HarnessError> {
//! use kube_bind_e2e::harness::chromium::Chromium;
//! let chromium = Chromium::start("a_test_name").await?;
//! chromium.goto(&format!("{backend}/")).await?;
//! chromium.wait_for("main#login-page", Chromium::PATIENCE).await;
//! chromium.screenshot("login-page").await?;
//! chromium.close().await;
//! # Ok(()) }
//! ```

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    path::{Path, PathBuf},
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
    time::Duration,
};

use fantoccini::{Client, ClientBuilder, Locator, elements::Element, error::CmdError};
use hyper_util::client::legacy::connect::HttpConnector;
use serde_json::{Value, json};

use super::{HarnessError, child::ChildProcess, child::free_port, paths};

/// Debian's chromium (`hack/lib/tools.sh` installs it); `KB_CHROMIUM` names another.
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long chromedriver gets to answer `/status` after it starts.
const DRIVER_START: Duration = Duration::from_secs(30);
/// How long the session's DELETE gets when the browser is dropped (it quits Chromium).
const QUIT_GRACE: Duration = Duration::from_secs(5);
/// The window's size (width, height), as `--window-size` starts it.
const WINDOW: (u32, u32) = (1280, 900);
/// The tallest full-page screenshot; longer pages are cut there.
const MAX_SHOT_HEIGHT: u32 = 6000;
/// How many characters of the page source a failed wait shows.
const SOURCE_EXCERPT: usize = 2000;

/// Headless Chromium in a WebDriver session, for one test.
///
/// NOTE: dropping it ends the session (which makes chromedriver quit Chromium) and then stops
/// chromedriver by its pid; [`Chromium::close`] does the same and waits for it.
pub struct Chromium {
    test: String,
    client: Option<Client>,
    session: Option<String>,
    driver: ChildProcess,
    driver_port: u16,
    profile: PathBuf,
    artifacts: PathBuf,
    shots: AtomicU32,
}

impl Chromium {
    /// A patience for page loads and redirects through the backend and the issuer.
    pub const PATIENCE: Duration = Duration::from_secs(30);

    /// Starts chromedriver and opens a session of headless Chromium for the test `test` (its
    /// screenshots go to `target/e2e-artifacts/<test>/`, emptied first).
    pub async fn start(test: &str) -> Result<Self, HarnessError> {
        let logs = paths::log_dir();
        let artifacts = paths::artifact_dir(test);
        // A rerun's pictures replace the last run's, never sit next to them.
        if artifacts.exists() {
            std::fs::remove_dir_all(&artifacts).map_err(|e| HarnessError::io(&artifacts, e))?;
        }
        std::fs::create_dir_all(&artifacts).map_err(|e| HarnessError::io(&artifacts, e))?;
        let profile = logs.join(format!("chromium-{test}-profile"));
        if profile.exists() {
            std::fs::remove_dir_all(&profile).map_err(|e| HarnessError::io(&profile, e))?;
        }
        std::fs::create_dir_all(&profile).map_err(|e| HarnessError::io(&profile, e))?;

        let driver_port = free_port()?;
        let mut command = Command::new("chromedriver");
        command.args([
            format!("--port={driver_port}"),
            "--allowed-ips=127.0.0.1".to_owned(),
        ]);
        let log = logs.join(format!("chromedriver-{test}.log"));
        let mut driver =
            ChildProcess::spawn("chromedriver", command, &log).map_err(|e| match e {
                HarnessError::Start { what, log } => HarnessError::Start {
                    what: format!(
                        "{what} (hack/test.sh installs it: Debian's chromium-driver, with chromium)"
                    ),
                    log,
                },
                other => other,
            })?;
        let webdriver = format!("http://127.0.0.1:{driver_port}");
        wait_until_ready(&mut driver, &webdriver).await?;

        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities(&chromium_binary(), &profile))
            .connect(&webdriver)
            .await
            .map_err(|e| HarnessError::Start {
                what: format!("no WebDriver session of {}: {e}", chromium_binary()),
                log: log.clone(),
            })?;
        let session = client.session_id().await.map_err(cmd_error)?;
        let chromium = Self {
            test: test.to_owned(),
            client: Some(client),
            session,
            driver,
            driver_port,
            profile,
            artifacts,
            shots: AtomicU32::new(0),
        };
        println!(
            "chromium: session for {test} on chromedriver :{driver_port} (log {}), screenshots in {}",
            log.display(),
            chromium.artifacts.display()
        );
        Ok(chromium)
    }

    fn client(&self) -> Result<&Client, HarnessError> {
        self.client
            .as_ref()
            .ok_or_else(|| HarnessError::Other("the Chromium session is closed".to_owned()))
    }

    /// Navigates to `url` and waits until the page has loaded.
    pub async fn goto(&self, url: &str) -> Result<(), HarnessError> {
        println!("chromium: goto {url}");
        self.client()?.goto(url).await.map_err(cmd_error)
    }

    /// The element `css` selects, if the page has one now.
    pub async fn find(&self, css: &str) -> Result<Element, HarnessError> {
        self.client()?
            .find(Locator::Css(css))
            .await
            .map_err(|e| HarnessError::Other(format!("no element {css:?}: {e}")))
    }

    /// Every element `css` selects now.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>, HarnessError> {
        self.client()?
            .find_all(Locator::Css(css))
            .await
            .map_err(|e| HarnessError::Other(format!("finding {css:?}: {e}")))
    }

    /// The attribute `name` of the element `css` selects (`None` when it has none).
    pub async fn attr(&self, css: &str, name: &str) -> Result<Option<String>, HarnessError> {
        self.find(css).await?.attr(name).await.map_err(cmd_error)
    }

    /// The text of the element `css` selects, as in the document (`textContent`: also when
    /// hidden, e.g. inside a closed `<details>`, and with a `<pre>`'s whitespace kept).
    pub async fn text_content(&self, css: &str) -> Result<String, HarnessError> {
        let text = self
            .find(css)
            .await?
            .prop("textContent")
            .await
            .map_err(cmd_error)?;
        Ok(text.unwrap_or_default())
    }

    /// Where the element `css` selects is drawn: (x, y, width, height) in CSS pixels.
    pub async fn rect(&self, css: &str) -> Result<(f64, f64, f64, f64), HarnessError> {
        self.find(css).await?.rectangle().await.map_err(cmd_error)
    }

    /// Types `value` into the input `css` selects, replacing what it held.
    pub async fn fill(&self, css: &str, value: &str) -> Result<(), HarnessError> {
        println!("chromium: fill {css} with {value:?}");
        let input = self.find(css).await?;
        input.clear().await.map_err(cmd_error)?;
        input.send_keys(value).await.map_err(cmd_error)
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) -> Result<(), HarnessError> {
        println!("chromium: click {css}");
        self.find(css).await?.click().await.map_err(cmd_error)
    }

    /// Waits up to `timeout` until the page has an element `css` selects.
    ///
    /// # Panics
    /// When it does not come, naming the selector, the page's URL and the start of its source:
    /// an assertion of the test, as `assert!` is.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Element {
        println!("chromium: wait for {css}");
        let found = match self.client() {
            Ok(client) => client
                .wait()
                .at_most(timeout)
                .for_element(Locator::Css(css))
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match found {
            Ok(element) => element,
            Err(error) => {
                let url = match self.current_url().await {
                    Ok(url) => url.to_string(),
                    Err(e) => format!("(no URL: {e})"),
                };
                let source = match self.source().await {
                    Ok(source) => excerpt(&source, SOURCE_EXCERPT),
                    Err(e) => format!("(no source: {e})"),
                };
                panic!(
                    "no {css:?} within {}s ({error}) at {url}; page source:\n{source}",
                    timeout.as_secs()
                )
            }
        }
    }

    /// The URL of the page shown now.
    pub async fn current_url(&self) -> Result<url::Url, HarnessError> {
        self.client()?.current_url().await.map_err(cmd_error)
    }

    /// The source of the page shown now (the DOM as serialized by the browser).
    pub async fn source(&self) -> Result<String, HarnessError> {
        self.client()?.source().await.map_err(cmd_error)
    }

    /// Saves the viewport as `target/e2e-artifacts/<test>/<nn>-<name>.png` (nn counts this
    /// test's screenshots) and prints the path.
    ///
    /// The whole page, not only the viewport: the window is made as tall as the page for the
    /// shot (up to [`MAX_SHOT_HEIGHT`]) and set back to [`WINDOW`] afterwards.
    pub async fn screenshot(&self, name: &str) -> Result<PathBuf, HarnessError> {
        let client = self.client()?;
        let heights = client
            .execute(
                "return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight];",
                vec![],
            )
            .await
            .map_err(cmd_error)?;
        let page = heights[0].as_u64().unwrap_or(u64::from(WINDOW.1));
        let frame = heights[1].as_u64().unwrap_or(0);
        let tall = u32::try_from(page + frame)
            .unwrap_or(MAX_SHOT_HEIGHT)
            .clamp(WINDOW.1, MAX_SHOT_HEIGHT);
        client
            .set_window_size(WINDOW.0, tall)
            .await
            .map_err(cmd_error)?;
        let shot = client.screenshot().await.map_err(cmd_error);
        let restored = client
            .set_window_size(WINDOW.0, WINDOW.1)
            .await
            .map_err(cmd_error);
        let png = shot?;
        restored?;
        let n = self.shots.fetch_add(1, Ordering::Relaxed) + 1;
        let path = self.artifacts.join(format!("{n:02}-{name}.png"));
        std::fs::write(&path, png).map_err(|e| HarnessError::io(&path, e))?;
        println!("chromium: screenshot {}", path.display());
        Ok(path)
    }

    /// Ends the session (Chromium quits) and stops chromedriver.
    pub async fn close(mut self) {
        if let Some(client) = self.client.take()
            && let Err(e) = client.close().await
        {
            println!("chromium: closing the session of {}: {e}", self.test);
        }
        self.session = None;
        self.driver.stop().await;
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        // Drop cannot await the client: the session's DELETE by hand, so chromedriver quits
        // Chromium before it is stopped itself (a stopped chromedriver leaves its browser running).
        if let Some(session) = self.session.take() {
            delete_session(self.driver_port, &session);
        }
        self.client = None;
        let _ = std::fs::remove_dir_all(&self.profile);
        // `driver` is stopped by its own drop, by pid.
    }
}

/// Chromium's binary: `KB_CHROMIUM`, else Debian's.
fn chromium_binary() -> String {
    std::env::var("KB_CHROMIUM").unwrap_or_else(|_| CHROMIUM.to_owned())
}

/// The session's capabilities: headless Chromium with a profile of its own.
fn capabilities(binary: &str, profile: &Path) -> serde_json::Map<String, Value> {
    let args = [
        "--headless=new".to_owned(),
        // Root in a container has no user namespace for the sandbox.
        "--no-sandbox".to_owned(),
        "--disable-gpu".to_owned(),
        // /dev/shm is small in containers; Chromium crashes on large pages otherwise.
        "--disable-dev-shm-usage".to_owned(),
        format!("--user-data-dir={}", profile.display()),
        format!("--window-size={},{}", WINDOW.0, WINDOW.1),
    ];
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {"binary": binary, "args": args},
    });
    match capabilities {
        Value::Object(map) => map,
        _ => serde_json::Map::new(),
    }
}

/// Waits until chromedriver answers `/status` with `ready`, or fails early if it exits.
async fn wait_until_ready(driver: &mut ChildProcess, webdriver: &str) -> Result<(), HarnessError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| HarnessError::Other(format!("an HTTP client: {e}")))?;
    let status = format!("{webdriver}/status");
    let deadline = tokio::time::Instant::now() + DRIVER_START;
    let mut last = "nothing yet".to_owned();
    while tokio::time::Instant::now() < deadline {
        if driver.exited() {
            return Err(driver.gone());
        }
        match http.get(&status).send().await {
            Ok(answer) => match answer.json::<Value>().await {
                Ok(body) if body["value"]["ready"] == true => return Ok(()),
                Ok(body) => last = format!("not ready: {body}"),
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(HarnessError::Start {
        what: format!(
            "chromedriver at {webdriver} not ready after {}s: {last}",
            DRIVER_START.as_secs()
        ),
        log: driver.log().to_path_buf(),
    })
}

/// `DELETE /session/<id>` on chromedriver over a plain socket, best effort within
/// [`QUIT_GRACE`]: the synchronous way to end a session from `Drop`.
fn delete_session(port: u16, session: &str) {
    let Ok(mut stream) = TcpStream::connect_timeout(
        &std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        QUIT_GRACE,
    ) else {
        return;
    };
    let _ = stream.set_read_timeout(Some(QUIT_GRACE));
    let _ = stream.set_write_timeout(Some(QUIT_GRACE));
    let request = format!(
        "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).is_ok() {
        // Read to the end: chromedriver answers once Chromium has quit.
        let _ = stream.read_to_end(&mut Vec::new());
    }
}

fn cmd_error(e: CmdError) -> HarnessError {
    HarnessError::Other(format!("WebDriver: {e}"))
}

/// The first `max` characters of `text`, marked when cut.
fn excerpt(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}\n[… {} more bytes]", &text[..at], text.len() - at),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_excerpt_is_cut_at_a_character_and_says_so() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("ééé", 2), "éé\n[… 2 more bytes]");
    }

    #[test]
    fn the_session_asks_for_headless_chromium_with_its_own_profile() {
        let caps = capabilities("/bin/chromium", Path::new("/tmp/p"));
        let options = &caps["goog:chromeOptions"];
        assert_eq!(options["binary"], "/bin/chromium");
        let args: Vec<_> = options["args"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(args.contains(&"--headless=new"), "{args:?}");
        assert!(args.contains(&"--user-data-dir=/tmp/p"), "{args:?}");
    }
}
