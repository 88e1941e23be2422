//! The CLI's bearer token: an RS256 JWT the backend signs after login (upstream's claims:
//! `sub`, `iss`, `sid`, `cid`, `red`, `iat`, `nbf`, `exp`). Only RS256 is accepted, so neither
//! `alg: none` nor an HMAC token keyed with the public key gets through.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::session::{Session, unix_seconds};
use crate::crypto::SigningKey;

/// Clock difference tolerated between replicas when checking `exp` and `nbf`.
const LEEWAY: Duration = Duration::from_secs(30);

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BearerClaims {
    pub sub: String,
    /// The identity provider's issuer, as upstream.
    pub iss: String,
    /// The session's own key ([`Session::sid`]).
    pub sid: String,
    /// The normalised cluster id of the login.
    pub cid: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub red: String,
    /// The client's `session_id` (ours; upstream has none).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub csid: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    pub iat: u64,
    pub nbf: u64,
    pub exp: u64,
}

impl BearerClaims {
    /// Claims for `session`, expiring with it.
    pub fn for_session(session: &Session, now: SystemTime) -> Self {
        Self {
            sub: session.subject.clone(),
            iss: session.issuer.clone(),
            sid: session.sid.clone(),
            cid: session.cluster_id.clone(),
            red: session.redirect_url.clone(),
            csid: session.client_session_id.clone(),
            groups: session.groups.clone(),
            iat: unix_seconds(now),
            nbf: unix_seconds(now),
            exp: session.expires_at,
        }
    }

    /// The session these claims stand for (used as is under the `cookie` store).
    pub fn into_session(self) -> Session {
        Session {
            sid: self.sid,
            client_session_id: self.csid,
            subject: self.sub,
            issuer: self.iss,
            groups: self.groups,
            cluster_id: self.cid,
            redirect_url: self.red,
            created_at: self.iat,
            expires_at: self.exp,
        }
    }
}

/// Why a bearer token was not accepted (the client sees "log in again").
#[derive(Debug, thiserror::Error)]
#[error("the bearer token is invalid or expired ({0}); log in again with kubectl bind login")]
pub struct BearerError(String);

/// Signs and checks bearer tokens with one RSA key.
#[derive(Clone, Debug)]
pub struct BearerTokens {
    key: SigningKey,
}

impl BearerTokens {
    pub fn new(key: SigningKey) -> Self {
        Self { key }
    }

    pub fn issue(&self, session: &Session, now: SystemTime) -> Result<String, BearerError> {
        self.key
            .sign(&BearerClaims::for_session(session, now))
            .map_err(|e| BearerError(e.to_string()))
    }

    pub fn verify(&self, token: &str) -> Result<BearerClaims, BearerError> {
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "nbf", "sub", "iss"]);
        self.key
            .verify::<BearerClaims>(token, &validation)
            .map_err(|e| BearerError(e.to_string()))
    }
}
