//! What the login tests share: the real backend in-process on the plain cluster with its real
//! HTTP listener, and the two ways consumers log in (the CLI's and the UI's), driven through a
//! browser that shows every hop.

#![allow(dead_code)]

use std::path::PathBuf;

use kube_bind_backend::app::{self, RunningBackend};
use kube_bind_backend::options::Options;
use kube_bind_e2e::harness::{Browser, Env, EnvSpec, Page, Workspace, apply, paths};
use serde_json::Value;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;
use url::Url;

static SPEC: EnvSpec = EnvSpec::plain(&["plain"]);
static CRDS: OnceCell<()> = OnceCell::const_new();

/// Where the CLI's loopback callback would listen; nothing needs to, the browser stops before it.
pub const CLI_CALLBACK: &str = "http://127.0.0.1:1/callback";

/// The plain cluster with the kube-bind CRDs installed.
pub async fn given_a_provider_cluster() -> anyhow::Result<(&'static Env, &'static Workspace)> {
    let env = Env::shared(&SPEC)?;
    let plain = env.workspace("plain")?;
    CRDS.get_or_try_init(|| async {
        apply::install_kube_bind_crds(&plain.client().await?, env.patience()).await?;
        anyhow::Ok(())
    })
    .await?;
    Ok((env, plain))
}

/// An RSA key for tests that restart the backend and expect tokens to stay valid.
pub fn test_signing_key() -> PathBuf {
    paths::repo_root().join("src/crypto/testdata/test-only-rsa2048-pkcs8.pem")
}

/// Fixed cookie keys (base64 of 32 bytes each), so cookies survive a restart.
pub const COOKIE_SIGNING_KEY: &str = "c2lnbmluZy1rZXktZm9yLXRlc3RzLW9ubHktMzJieXQ=";
pub const COOKIE_ENCRYPTION_KEY: &str = "ZW5jcnlwdGlvbi1rZXktZm9yLXRlc3RzLW9ubHktMzI=";

/// A backend listening on 127.0.0.1 (port from `--listen-address`, default a free one).
pub struct Backend {
    running: Option<RunningBackend>,
    shutdown: CancellationToken,
    pub url: String,
}

impl Backend {
    /// The real backend on `plain` with the embedded issuer and `extra` flags.
    pub async fn start(plain: &Workspace, extra: &[String]) -> anyhow::Result<Self> {
        let mut args = vec![
            "kube-bind-backend".to_owned(),
            "--kubeconfig".to_owned(),
            plain.kubeconfig.display().to_string(),
        ];
        if !extra.iter().any(|a| a.starts_with("--oidc-type")) {
            args.push("--oidc-type=embedded".to_owned());
        }
        if !extra.iter().any(|a| a.starts_with("--listen-address")) {
            args.push("--listen-address=127.0.0.1:0".to_owned());
        }
        args.extend(extra.iter().cloned());
        let options = Options::from_args(args)?;
        let shutdown = CancellationToken::new();
        let running = app::start(options, shutdown.clone()).await?;
        let url = format!("http://{}", running.local_addr());
        Ok(Self {
            running: Some(running),
            shutdown,
            url,
        })
    }

    pub fn port(&self) -> u16 {
        self.running
            .as_ref()
            .map(|r| r.local_addr().port())
            .unwrap_or_default()
    }

    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await?;
        }
        Ok(())
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// Starts a login the way the CLI does: `/api/exports`, then its `authenticatedURL` with the
/// CLI's parameters. Returns the backend's answer (a redirect into the issuer).
pub async fn start_cli_login(browser: &Browser, backend: &str) -> anyhow::Result<Page> {
    start_cli_login_to(browser, backend, "").await
}

/// [`start_cli_login`] for the logical cluster `cluster_id` (`kubectl bind login --cluster`).
pub async fn start_cli_login_to(
    browser: &Browser,
    backend: &str,
    cluster_id: &str,
) -> anyhow::Result<Page> {
    let exports = browser
        .get(&format!("{backend}/api/exports?cluster_id={cluster_id}"))
        .await?;
    anyhow::ensure!(exports.status == 200, "GET /api/exports: {}", exports.body);
    let provider: Value = serde_json::from_str(&exports.body)?;
    let authenticated = provider["authenticationMethods"][0]["oauth2CodeGrant"]["authenticatedURL"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("no authenticatedURL in {provider}"))?;
    let mut url = Url::parse(authenticated)?;
    url.query_pairs_mut()
        .append_pair("redirect_url", CLI_CALLBACK)
        .append_pair("session_id", "cli-session")
        .append_pair("client_type", "cli");
    if !cluster_id.is_empty() && !url.query_pairs().any(|(k, _)| k == "cluster_id") {
        url.query_pairs_mut().append_pair("cluster_id", cluster_id);
    }
    Ok(browser.get(url.as_str()).await?)
}

/// Logs `user` in through the embedded issuer's form, from `start` (a redirect into the issuer),
/// following redirects until the next target satisfies `stop` (not fetched).
pub async fn embedded_issuer_login(
    browser: &Browser,
    start: Page,
    user: &str,
    stop: impl Fn(&Url) -> bool,
) -> anyhow::Result<Page> {
    let page = browser.follow(start, &stop).await?;
    anyhow::ensure!(
        page.status == 200,
        "expected the login form, got {} {}",
        page.status,
        page.body
    );
    let mut form = page
        .form()
        .ok_or_else(|| anyhow::anyhow!("the issuer page has no form: {}", page.body))?;
    form.set("username", user);
    let submitted = browser.submit(&form).await?;
    Ok(browser.follow(submitted, &stop).await?)
}

/// The whole CLI login of `user`: the bearer token handed to the CLI's callback.
pub async fn cli_login(browser: &Browser, backend: &str, user: &str) -> anyhow::Result<String> {
    cli_login_to(browser, backend, user, "").await
}

/// [`cli_login`] for the logical cluster `cluster_id`.
pub async fn cli_login_to(
    browser: &Browser,
    backend: &str,
    user: &str,
    cluster_id: &str,
) -> anyhow::Result<String> {
    let start = start_cli_login_to(browser, backend, cluster_id).await?;
    let end = embedded_issuer_login(browser, start, user, is_cli_callback).await?;
    token_of(&end)
}

pub fn is_cli_callback(url: &Url) -> bool {
    url.as_str().starts_with(CLI_CALLBACK)
}

/// The `access_token` of the redirect to the CLI's callback.
pub fn token_of(page: &Page) -> anyhow::Result<String> {
    let location = page.location.as_ref().ok_or_else(|| {
        anyhow::anyhow!(
            "no redirect to the CLI callback: {} {}",
            page.status,
            page.body
        )
    })?;
    let pairs: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    anyhow::ensure!(
        pairs.get("token_type").map(String::as_str) == Some("Bearer"),
        "{location}"
    );
    pairs
        .get("access_token")
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("no access_token in {location}"))
}

/// `GET path` with a bearer token.
pub async fn get_with_token(browser: &Browser, url: &str, token: &str) -> anyhow::Result<Page> {
    Ok(browser
        .get_with(url, &[("authorization", &format!("Bearer {token}"))])
        .await?)
}

/// The error body's `code`, checking its shape on the way.
pub fn error_code(page: &Page) -> String {
    let body: Value = serde_json::from_str(&page.body)
        .unwrap_or_else(|_| panic!("not an error body ({}): {}", page.status, page.body));
    assert_eq!(body["kind"], "Error", "{body}");
    assert_eq!(body["apiVersion"], "kube-bind.io/v1alpha2", "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["code"].as_str().unwrap_or_default().to_owned()
}
