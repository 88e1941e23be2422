//! The embedded development OIDC issuer (`--oidc-type embedded`): discovery, JWKS, an
//! authorization endpoint with a one-field login page, a token endpoint and userinfo. The backend
//! talks to it over HTTP exactly as to any other issuer.
//!
//! Any username is accepted and no password is checked: it is for development and tests only.
//!
//! NOTE: the issuer keeps no state at all. The pending login (between the login page and its form
//! post), the authorization code and the access token are values sealed with the configured
//! [`Sealer`]; ID tokens are signed with the configured [`SigningKey`]. Replicas sharing the key
//! material therefore agree, and a restart keeps pending logins and codes valid.
//!
//! NOTE: because nothing is remembered, an authorization code can be redeemed more than once
//! during its 60-second life (RFC 6749 §4.1.2 asks for single use). Each redemption still needs
//! the client secret and the PKCE verifier the code is bound to, so only the client that started
//! the login can redeem it; refusing replay would need shared state (e.g. a used-code set), which
//! this issuer deliberately has none of.

mod authorize;
mod discovery;
mod error;
mod page;
mod params;
mod token;
mod userinfo;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::crypto::{Sealer, SigningKey};

/// The largest form body or query string accepted.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// How long the login page may stay open before its form is refused.
const PENDING_TTL: Duration = Duration::from_secs(10 * 60);
/// How long an authorization code may wait before it is exchanged.
const CODE_TTL: Duration = Duration::from_secs(60);

/// Seal purposes: a value sealed for one is never accepted as another.
const PENDING_PURPOSE: &str = "kube-bind oidc-issuer pending-authorization";
const CODE_PURPOSE: &str = "kube-bind oidc-issuer authorization-code";
const ACCESS_TOKEN_PURPOSE: &str = "kube-bind oidc-issuer access-token";

/// Scopes granted when asked for; others are ignored, as OpenID Connect Core §3.1.2.1 allows.
const SUPPORTED_SCOPES: &[&str] = &["openid", "profile", "email"];
/// The domain of the `email` claim (`<username>@kube-bind.local`): a name, not a mailbox.
const EMAIL_DOMAIN: &str = "kube-bind.local";

/// What the issuer is told at start.
pub struct IssuerConfig {
    /// E.g. `http://127.0.0.1:8080/oidc`: the `iss` of every token and the base of every endpoint
    /// URL in discovery.
    pub issuer_url: String,
    pub client_id: String,
    pub client_secret: String,
    /// The registered callbacks; an authorization request must name one exactly.
    pub redirect_uris: Vec<String>,
    /// Signs ID tokens; published in the JWKS.
    pub key: SigningKey,
    /// Seals pending logins, authorization codes and access tokens.
    pub sealer: Sealer,
    /// Lifetime of ID and access tokens.
    pub id_token_ttl: Duration,
}

impl fmt::Debug for IssuerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuerConfig")
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uris", &self.redirect_uris)
            .field("key", &self.key)
            .field("sealer", &self.sealer)
            .field("id_token_ttl", &self.id_token_ttl)
            .finish()
    }
}

/// The issuer's routes, relative to the issuer URL: mount with `.nest("/oidc", router(config))`.
pub fn router(config: IssuerConfig) -> Router {
    let issuer = Arc::new(Issuer::new(config));
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::configuration),
        )
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .route("/keys", get(discovery::jwks))
        .route(
            "/authorize",
            get(authorize::show_login).post(authorize::submit_login),
        )
        .route("/token", axum::routing::post(token::exchange))
        .route(
            "/userinfo",
            get(userinfo::userinfo).post(userinfo::userinfo),
        )
        .layer(DefaultBodyLimit::max(MAX_REQUEST_BYTES))
        .with_state(issuer)
}

/// What the handlers share; immutable after start.
struct Issuer {
    /// The issuer URL without a trailing slash.
    issuer: String,
    client_id: String,
    client_secret_sha256: [u8; 32],
    redirect_uris: Vec<String>,
    key: SigningKey,
    sealer: Sealer,
    token_ttl: Duration,
}

impl Issuer {
    fn new(config: IssuerConfig) -> Self {
        Self {
            issuer: config.issuer_url.trim_end_matches('/').to_string(),
            client_id: config.client_id,
            client_secret_sha256: Sha256::digest(config.client_secret.as_bytes()).into(),
            redirect_uris: config.redirect_uris,
            key: config.key,
            sealer: config.sealer,
            token_ttl: config.id_token_ttl,
        }
    }

    /// The absolute URL of an endpoint (`path` starts with `/`).
    fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.issuer)
    }

    fn is_registered_redirect(&self, redirect_uri: &str) -> bool {
        self.redirect_uris.iter().any(|r| r == redirect_uri)
    }

    /// Constant-time check of the client credentials; comparing digests also hides the length.
    fn client_authenticates(&self, client_id: &str, client_secret: &str) -> bool {
        let id_ok = Sha256::digest(client_id.as_bytes())
            .as_slice()
            .ct_eq(Sha256::digest(self.client_id.as_bytes()).as_slice());
        let secret_ok = Sha256::digest(client_secret.as_bytes())
            .as_slice()
            .ct_eq(&self.client_secret_sha256);
        (id_ok & secret_ok).into()
    }
}

/// The requested scopes this issuer grants, in request order, without duplicates.
fn granted_scopes(requested: &str) -> Vec<&'static str> {
    let mut granted = Vec::new();
    for scope in requested.split(' ') {
        if let Some(known) = SUPPORTED_SCOPES.iter().find(|s| **s == scope)
            && !granted.contains(known)
        {
            granted.push(*known);
        }
    }
    granted
}

#[cfg(test)]
mod interop_tests;
#[cfg(test)]
mod tests;
