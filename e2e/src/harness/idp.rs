//! An external OpenID provider for login tests: panva's certified `oidc-provider` under node
//! (`hack/tools/oidc-provider/server.mjs`, packages installed by `hack/lib/tools.sh`), with one
//! confidential client and development login and consent pages that take any name and password.

use std::{path::PathBuf, process::Command, time::Duration};

use url::Url;

use super::{
    Browser, HarnessError, Page,
    child::{ChildProcess, free_port},
    paths,
};

/// How long [`ExternalIdp::start`] waits for discovery to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Form submissions [`ExternalIdp::log_in`] makes at most (login, consent, and some slack).
const MAX_FORMS: usize = 4;

/// The password the login form gets (the development login accepts any).
const PASSWORD: &str = "any-password";

/// A running provider; stopped by its pid when dropped.
#[derive(Debug)]
pub struct ExternalIdp {
    issuer: Url,
    process: ChildProcess,
}

impl ExternalIdp {
    /// Starts the provider on a free port with one client (`client_secret_basic` or
    /// `client_secret_post`, code flow with S256 PKCE, scopes `openid profile email`) and waits
    /// until its discovery document answers. Installs the node packages first if this lock file
    /// has not been installed on the machine yet.
    pub async fn start(
        client_id: &str,
        client_secret: &str,
        redirect_uris: &[String],
    ) -> Result<Self, HarnessError> {
        let modules = installed_packages()?;
        let port = free_port()?;
        let issuer = Url::parse(&format!("http://127.0.0.1:{port}"))
            .map_err(|e| HarnessError::Other(format!("issuer URL: {e}")))?;
        let mut command = Command::new("node");
        command
            .arg(tool_source().join("server.mjs"))
            .env("PORT", port.to_string())
            .env("CLIENT_ID", client_id)
            .env("CLIENT_SECRET", client_secret)
            .env("REDIRECT_URIS", redirect_uris.join(","))
            .env("NODE_MODULES_DIR", modules);
        let log = paths::log_dir().join(format!("oidc-provider-{port}.log"));
        let mut process = ChildProcess::spawn("oidc-provider (node)", command, &log)?;

        let discovery = format!("{issuer}.well-known/openid-configuration");
        process
            .wait_until_answering(format!("{discovery} to answer"), &discovery, START_TIMEOUT)
            .await?;
        Ok(Self { issuer, process })
    }

    /// `http://127.0.0.1:<port>`: the issuer as discovery and the tokens' `iss` spell it (what
    /// a relying party is configured with).
    pub fn issuer_url(&self) -> String {
        self.issuer.as_str().trim_end_matches('/').to_string()
    }

    pub async fn stop(mut self) {
        self.process.stop().await;
    }

    /// Logs `username` in, from `start` (a page that redirects into this provider, e.g. the
    /// backend's `/api/authorize` answer): follows into the provider, submits its login form
    /// (any password) and its consent form, and follows the redirects until `stop` matches the
    /// next target. Returns that last page; its `location` is the target (e.g. the callback URL
    /// with `code` and `state`), not fetched.
    pub async fn log_in(
        &self,
        browser: &Browser,
        start: Page,
        username: &str,
        stop: impl Fn(&Url) -> bool,
    ) -> Result<Page, HarnessError> {
        let mut page = browser.follow(start, &stop).await?;
        for _ in 0..MAX_FORMS {
            if page.location.as_ref().is_some_and(&stop) {
                return Ok(page);
            }
            let Some(mut form) = page.form().filter(|f| self.serves(&f.action)) else {
                return Err(self.unexpected(&page, "a login or consent form of the provider"));
            };
            if form.get("login").is_some() {
                form.set("login", username).set("password", PASSWORD);
            }
            page = browser.submit(&form).await?;
            page = browser.follow(page, &stop).await?;
        }
        Err(self.unexpected(&page, "the redirect that ends the login"))
    }

    fn serves(&self, url: &Url) -> bool {
        url.origin() == self.issuer.origin()
    }

    fn unexpected(&self, page: &Page, wanted: &str) -> HarnessError {
        let body: String = page.body.chars().take(400).collect();
        HarnessError::Other(format!(
            "logging in at {}: expected {wanted}, got HTTP {} from {} (location {:?}): {body}",
            self.issuer,
            page.status,
            page.url,
            page.location.as_ref().map(Url::as_str),
        ))
    }
}

/// `hack/tools/oidc-provider`: package.json, package-lock.json, server.mjs.
fn tool_source() -> PathBuf {
    paths::repo_root().join("hack/tools/oidc-provider")
}

/// The `node_modules` of this lock file: `$KB_CACHE/oidc-provider/<lock hash>/node_modules` (as
/// `oidc_provider_dir` in hack/lib/tools.sh computes it), installed through that script when
/// missing.
fn installed_packages() -> Result<PathBuf, HarnessError> {
    let lock = tool_source().join("package-lock.json");
    let bytes = std::fs::read(&lock).map_err(|e| HarnessError::io(&lock, e))?;
    let digest = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
    let hash: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let dir = paths::cache_dir().join("oidc-provider").join(hash);
    if !dir.join(".installed").exists() {
        let log = paths::log_dir().join("oidc-provider-install.log");
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent).map_err(|e| HarnessError::io(parent, e))?;
        }
        let out = std::fs::File::create(&log).map_err(|e| HarnessError::io(&log, e))?;
        let err = out.try_clone().map_err(|e| HarnessError::io(&log, e))?;
        let status = Command::new("bash")
            .arg("-c")
            .arg("set -euo pipefail; source hack/lib/log.sh; source hack/lib/tools.sh; oidc_provider_install")
            .current_dir(paths::repo_root())
            .stdout(out)
            .stderr(err)
            .status()
            .map_err(|e| HarnessError::io(&PathBuf::from("bash"), e))?;
        if !status.success() || !dir.join(".installed").exists() {
            return Err(HarnessError::Command {
                what: "installing oidc-provider (hack/lib/tools.sh oidc_provider_install)".into(),
                log,
            });
        }
    }
    Ok(dir.join("node_modules"))
}
