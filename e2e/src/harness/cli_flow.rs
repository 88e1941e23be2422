//! The CLI's login and bind through one URL, hop by hop: `/api/exports`, its authenticated URL
//! (`/api/authorize`), the embedded issuer's form and its POST, `/api/callback`, then `/api/bind`
//! with the bearer token. Each hop notes the replica that answered it when haproxy names it
//! ([`SERVED_BY`], see `harness::haproxy`). [`run`] drives many of them at once: the load of the
//! replicas test and bench.

use std::time::{Duration, Instant};

use futures::StreamExt as _;
use serde_json::{Value, json};
use url::Url;

use super::{Browser, HarnessError, Page};

/// The response header haproxy sets to the name of the replica that answered.
pub const SERVED_BY: &str = "x-served-by";
/// Where the CLI's loopback callback would listen; nothing needs to, the flow stops before it.
pub const CLI_CALLBACK: &str = "http://127.0.0.1:1/callback";
/// More hops than this and the login is going in circles.
const MAX_HOPS: usize = 10;

/// One login and bind that succeeded.
#[derive(Debug, Clone)]
pub struct LoginAndBind {
    pub token: String,
    /// The `/api/bind` response.
    pub bind: Value,
    /// Per hop: the path asked and the replica that answered (empty without haproxy).
    pub hops: Vec<(String, String)>,
}

impl LoginAndBind {
    /// The replica that answered the first hop of `path` (e.g. `/api/authorize`).
    pub fn served(&self, path: &str) -> Option<&str> {
        self.hops
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, s)| s.as_str())
    }

    /// Whether more than one replica answered this login's hops.
    pub fn crossed_replicas(&self) -> bool {
        self.hops.iter().any(|(_, s)| s != &self.hops[0].1)
    }
}

fn fail(user: &str, what: impl std::fmt::Display) -> HarnessError {
    HarnessError::Other(format!("login and bind of {user}: {what}"))
}

fn note(hops: &mut Vec<(String, String)>, page: &Page) {
    let served = page
        .headers
        .get(SERVED_BY)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    hops.push((page.url.path().to_owned(), served.to_owned()));
}

/// Logs `user` in through `base` as the CLI does (embedded issuer) and binds `template` in the
/// logical cluster `cluster_id` ("" for the kubernetes provider).
pub async fn login_and_bind(
    base: &str,
    user: &str,
    template: &str,
    cluster_id: &str,
) -> Result<LoginAndBind, HarnessError> {
    let browser = Browser::new()?;
    let mut hops = Vec::new();
    let exports = browser
        .get(&format!("{base}/api/exports?cluster_id={cluster_id}"))
        .await?;
    note(&mut hops, &exports);
    if exports.status != 200 {
        return Err(fail(
            user,
            format!("GET /api/exports: {} {}", exports.status, exports.body),
        ));
    }
    let provider: Value = serde_json::from_str(&exports.body)
        .map_err(|e| fail(user, format!("/api/exports is not JSON: {e}")))?;
    let authenticated = provider["authenticationMethods"][0]["oauth2CodeGrant"]["authenticatedURL"]
        .as_str()
        .ok_or_else(|| fail(user, format!("no authenticatedURL in {provider}")))?;
    let mut url = Url::parse(authenticated).map_err(|e| fail(user, e))?;
    url.query_pairs_mut()
        .append_pair("redirect_url", CLI_CALLBACK)
        .append_pair("session_id", "cli-session")
        .append_pair("client_type", "cli");
    let mut page = browser.get(url.as_str()).await?;
    note(&mut hops, &page);
    let mut submitted = false;
    let callback = loop {
        if hops.len() > MAX_HOPS {
            return Err(fail(
                user,
                format!("more than {MAX_HOPS} hops, last {}", page.url),
            ));
        }
        match (&page.location, page.form()) {
            (Some(next), _) if next.as_str().starts_with(CLI_CALLBACK) => break next.clone(),
            (Some(next), _) => page = browser.get(next.as_str()).await?,
            (None, Some(mut form)) if page.status == 200 && !submitted => {
                form.set("username", user);
                submitted = true;
                page = browser.submit(&form).await?;
            }
            _ => {
                return Err(fail(
                    user,
                    format!("{} answered {} {}", page.url, page.status, page.body),
                ));
            }
        }
        note(&mut hops, &page);
    };
    let token = callback
        .query_pairs()
        .find(|(k, _)| k == "access_token")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| fail(user, format!("no access_token in {callback}")))?;
    let bound = browser
        .post_json(
            &format!("{base}/api/bind?cluster_id={cluster_id}"),
            &json!({"metadata": {"name": template}, "templateRef": {"name": template}}),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await?;
    note(&mut hops, &bound);
    if bound.status != 200 {
        return Err(fail(
            user,
            format!("POST /api/bind: {} {}", bound.status, bound.body),
        ));
    }
    let bind = serde_json::from_str(&bound.body)
        .map_err(|e| fail(user, format!("/api/bind is not JSON: {e}")))?;
    Ok(LoginAndBind { token, bind, hops })
}

/// What [`run`] did.
#[derive(Debug)]
pub struct Load {
    pub done: Vec<LoginAndBind>,
    pub failed: Vec<HarnessError>,
    pub elapsed: Duration,
}

impl Load {
    /// Logins and binds per second.
    pub fn rate(&self) -> f64 {
        self.done.len() as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// `count` logins and binds of `template` through `base`, `concurrency` at a time, user
/// `<user_prefix>-<i>` each.
pub async fn run(
    base: &str,
    user_prefix: &str,
    template: &str,
    count: usize,
    concurrency: usize,
) -> Load {
    let started = Instant::now();
    let results: Vec<_> = futures::stream::iter(0..count)
        .map(|i| {
            let user = format!("{user_prefix}-{i}");
            async move { login_and_bind(base, &user, template, "").await }
        })
        .buffer_unordered(concurrency.max(1))
        .collect()
        .await;
    let elapsed = started.elapsed();
    let (mut done, mut failed) = (Vec::new(), Vec::new());
    for result in results {
        match result {
            Ok(ok) => done.push(ok),
            Err(e) => failed.push(e),
        }
    }
    Load {
        done,
        failed,
        elapsed,
    }
}
