//! Who is calling: the OIDC login (authorization code + PKCE against any issuer, the embedded one
//! included), the sessions it creates, and the credentials that carry them — a sealed cookie for
//! the web UI, an RS256 bearer token for the CLI.
//!
//! Nothing here lives only in one process unless `--session-store memory` says so: pending logins
//! travel sealed in a cookie, sessions in the cookie, token or Redis, so any replica sharing the
//! key material can finish any login and serve any request.

mod bearer;
mod login;
mod oidc;
mod redirect;
mod session;
pub mod setup;
mod store;

use std::time::{Duration, SystemTime};

pub use bearer::{BearerClaims, BearerError, BearerTokens};
pub use login::{ClientType, LoginParams, PendingLogin};
pub use oidc::{OidcClient, OidcError, OidcSettings, PendingAuthorization};
pub use redirect::{RedirectError, RedirectPolicy};
pub use session::{LoggedInUser, LoginFor, Session};
pub use store::{MemoryStore, RedisStore, SessionStore, StoreError};

use crate::crypto::Sealer;

/// How long a started login may take before its callback (the browser's round trip through the
/// issuer, including typing a password).
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(600);

/// Everything the login and the authenticated routes need.
#[derive(Debug)]
pub struct Auth {
    pub oidc: OidcClient,
    pub sealer: Sealer,
    pub tokens: BearerTokens,
    pub store: SessionStore,
    pub redirects: RedirectPolicy,
    /// Lifetime of a session, its UI cookie and its bearer token (`--token-expiry`).
    pub session_lifetime: Duration,
}

impl Auth {
    /// Seals `session` into the value of the UI cookie `name`.
    pub fn seal_session(&self, name: &str, session: &Session) -> Result<String, String> {
        self.sealer
            .seal_json(name, session, session.expires())
            .map_err(|e| e.to_string())
    }

    /// Opens a UI cookie; `None` for anything tampered, foreign or expired.
    pub fn open_session(&self, name: &str, value: &str) -> Option<Session> {
        self.sealer
            .open_json::<Session>(name, value, SystemTime::now())
            .ok()
    }
}

impl std::fmt::Debug for SessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Memory(_) => "SessionStore::Memory",
            Self::Redis(_) => "SessionStore::Redis",
            Self::Cookie => "SessionStore::Cookie",
        })
    }
}

/// The UI session cookie of a cluster: upstream's `kube-bind` or `kube-bind-<cluster_id>`.
pub fn session_cookie_name(cluster_id: &str) -> String {
    if cluster_id.is_empty() {
        "kube-bind".to_owned()
    } else {
        format!("kube-bind-{cluster_id}")
    }
}

/// 32 random bytes, base64url (43 characters): session keys and login `state`.
pub fn random_token() -> String {
    crate::crypto::random_token::<32>()
}

/// Equality that takes the same time wherever the inputs differ (for secrets and `state`).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq as _;
    a.ct_eq(b).into()
}
