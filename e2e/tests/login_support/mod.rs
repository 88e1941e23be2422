//! What the login tests share: the real backend (from `controller_support`) with its HTTP
//! listener, and the two ways consumers log in (the CLI's and the UI's), driven through a
//! browser that shows every hop.

#![allow(dead_code)]

use std::path::PathBuf;

use kube_bind_e2e::harness::kubectl::kubectl;
use kube_bind_e2e::harness::{Browser, Page, Workspace, apply, paths};
use serde_json::{Value, json};
use url::Url;

pub use crate::controller_support::Backend;

/// Where the CLI's loopback callback would listen; nothing needs to, the browser stops before it.
pub const CLI_CALLBACK: &str = "http://127.0.0.1:1/callback";

/// A template `name` consumers can bind: `resource.group` at `version`, claiming the core
/// configmaps labelled `app=<name>`. Bind only copies it, so the CRD need not exist.
pub async fn given_a_template(
    plain: &Workspace,
    name: &str,
    group: &str,
    resource: &str,
    version: &str,
) -> anyhow::Result<()> {
    apply::apply(
        &plain.client().await?,
        &json!({
            "apiVersion": "kube-bind.io/v1alpha2",
            "kind": "APIServiceExportTemplate",
            "metadata": {"name": name},
            "spec": {
                "description": format!("{resource} for tests"),
                "scope": "Namespaced",
                "resources": [{"group": group, "resource": resource, "versions": [version]}],
                "permissionClaims": [{"group": "", "resource": "configmaps", "selector": {"labelSelector": {"matchLabels": {"app": name}}}}],
            }
        }),
    )
    .await?;
    Ok(())
}

/// An RSA key for tests that restart the backend and expect tokens to stay valid.
pub fn test_signing_key() -> PathBuf {
    paths::repo_root().join("src/crypto/testdata/test-only-rsa2048-pkcs8.pem")
}

/// Fixed cookie keys (base64 of 32 bytes each), so cookies survive a restart.
pub const COOKIE_SIGNING_KEY: &str = "c2lnbmluZy1rZXktZm9yLXRlc3RzLW9ubHktMzJieXQ=";
pub const COOKIE_ENCRYPTION_KEY: &str = "ZW5jcnlwdGlvbi1rZXktZm9yLXRlc3RzLW9ubHktMzI=";

/// The real backend on `plain` (kubernetes provider) with `extra` flags.
pub async fn start_backend(plain: &Workspace, extra: &[String]) -> anyhow::Result<Backend> {
    Backend::start_with(
        [
            "--kubeconfig".to_owned(),
            plain.kubeconfig.display().to_string(),
        ]
        .into_iter()
        .chain(extra.iter().cloned()),
    )
    .await
}

/// Stops `backend` and starts it again on the same port with the same `extra` flags.
pub async fn restart_backend(
    backend: Backend,
    plain: &Workspace,
    extra: &[String],
) -> anyhow::Result<Backend> {
    let port = backend.port();
    backend.stop().await?;
    let mut flags = extra.to_vec();
    flags.push(format!("--listen-address=127.0.0.1:{port}"));
    start_backend(plain, &flags).await
}

/// Key material fixed across restarts: cookie keys and the bearer-token key.
pub fn fixed_keys() -> Vec<String> {
    vec![
        format!("--cookie-signing-key={COOKIE_SIGNING_KEY}"),
        format!("--cookie-encryption-key={COOKIE_ENCRYPTION_KEY}"),
        format!("--jwt-signing-key-file={}", test_signing_key().display()),
    ]
}

/// What the consumer does with a bind response, as upstream's CLI: writes the kubeconfig, checks
/// it may create export requests (in `namespace`, or its context's), and creates the first one.
pub fn consumer_creates_the_request(
    name: &str,
    response: &Value,
    namespace: Option<&str>,
) -> anyhow::Result<std::path::PathBuf> {
    use base64::Engine as _;
    let kubeconfig = base64::engine::general_purpose::STANDARD
        .decode(response["kubeconfig"].as_str().unwrap_or_default())?;
    let logs = paths::log_dir();
    let path = logs.join(format!("{name}.kubeconfig"));
    std::fs::write(&path, &kubeconfig)?;
    let mut can_i = vec![
        "auth",
        "can-i",
        "create",
        "apiserviceexportrequests.kube-bind.io",
    ];
    if let Some(namespace) = namespace {
        can_i.extend(["-n", namespace]);
    }
    let can = kubectl(&path, &can_i, &logs)?;
    anyhow::ensure!(
        can.stdout.trim() == "yes",
        "can-i create requests: {} {}",
        can.stdout,
        can.stderr
    );
    let manifest = logs.join(format!("{name}-request.json"));
    std::fs::write(&manifest, serde_json::to_vec(&response["requests"][0])?)?;
    let created = kubectl(
        &path,
        &["create", "-f", &manifest.display().to_string()],
        &logs,
    )?;
    anyhow::ensure!(created.success, "creating the request: {}", created.stderr);
    Ok(path)
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
