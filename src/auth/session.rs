//! A logged-in consumer: who they are, which cluster they logged in for, and until when.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// One login. Sealed into the UI cookie, kept by `memory`/`redis` stores under [`Session::sid`],
/// and rebuilt from the bearer token's claims under the `cookie` store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Our own random key. Never the client's `session_id`: a client could pick another user's
    /// and overwrite that user's session.
    pub sid: String,
    /// The `session_id` the CLI or UI passed to `/api/authorize`, echoed in the bind response.
    #[serde(default)]
    pub client_session_id: String,
    pub subject: String,
    /// The identity provider's issuer URL.
    pub issuer: String,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The cluster the login was for, normalised (`""` is the kubernetes provider's one cluster).
    #[serde(default)]
    pub cluster_id: String,
    #[serde(default)]
    pub redirect_url: String,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds.
    pub expires_at: u64,
}

impl Session {
    /// A session for a user who just logged in, valid for `lifetime` from `now`.
    pub fn start(
        user: LoggedInUser,
        request: LoginFor,
        now: SystemTime,
        lifetime: Duration,
    ) -> Self {
        let created_at = unix_seconds(now);
        Self {
            sid: super::random_token(),
            client_session_id: request.client_session_id,
            subject: user.subject,
            issuer: user.issuer,
            groups: user.groups,
            cluster_id: request.cluster_id,
            redirect_url: request.redirect_url,
            created_at,
            expires_at: created_at.saturating_add(lifetime.as_secs()),
        }
    }

    /// A zero expiry counts as expired, as upstream.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at == 0 || unix_seconds(now) >= self.expires_at
    }

    /// What upstream requires of every session before trusting it.
    pub fn is_complete(&self) -> bool {
        !self.sid.is_empty() && !self.subject.is_empty() && !self.issuer.is_empty()
    }

    /// `<issuer>/<subject>`: the user id of the bind response.
    pub fn user_id(&self) -> String {
        format!("{}/{}", self.issuer, self.subject)
    }

    /// Seconds left at `now` (zero once expired).
    pub fn remaining(&self, now: SystemTime) -> Duration {
        Duration::from_secs(self.expires_at.saturating_sub(unix_seconds(now)))
    }

    /// When it expires, as a time.
    pub fn expires(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.expires_at)
    }
}

/// Who the identity provider says logged in (from the verified ID token).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoggedInUser {
    pub subject: String,
    pub issuer: String,
    pub groups: Vec<String>,
}

/// What the client asked the login for.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFor {
    pub client_session_id: String,
    pub cluster_id: String,
    pub redirect_url: String,
}

pub fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice(now: SystemTime) -> Session {
        Session::start(
            LoggedInUser {
                subject: "alice".into(),
                issuer: "https://idp.example".into(),
                groups: vec![],
            },
            LoginFor {
                client_session_id: "cli-1".into(),
                cluster_id: "abc".into(),
                redirect_url: "http://127.0.0.1:1/cb".into(),
            },
            now,
            Duration::from_secs(3600),
        )
    }

    #[test]
    fn expires_after_its_lifetime_and_zero_is_expired() {
        let now = SystemTime::now();
        let session = alice(now);
        assert!(!session.is_expired(now));
        assert!(session.is_expired(now + Duration::from_secs(3600)));
        assert_eq!(session.remaining(now).as_secs(), 3600);
        let zero = Session {
            expires_at: 0,
            ..session.clone()
        };
        assert!(zero.is_expired(UNIX_EPOCH));
        assert!(session.is_complete());
        assert_eq!(session.user_id(), "https://idp.example/alice");
        assert_ne!(
            session.sid, "cli-1",
            "our key is never the client's session id"
        );
    }
}
