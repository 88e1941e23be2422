//! A login in flight: what the client asked for at `/api/authorize`, kept sealed in a cookie of
//! the browser until the issuer sends it back to `/api/callback`.

use serde::{Deserialize, Serialize};

use super::oidc::PendingAuthorization;

/// Who started the login, which decides how it ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClientType {
    /// `kubectl bind login`: ends with a bearer token handed to its loopback callback.
    Cli,
    /// The web UI (and `kubectl bind <url>` through it): ends with a session cookie.
    Ui,
}

impl ClientType {
    /// Upstream treats everything but `cli` as the UI.
    pub fn parse(value: &str) -> Self {
        if value.eq_ignore_ascii_case("cli") {
            Self::Cli
        } else {
            Self::Ui
        }
    }
}

/// The client's parameters, checked before the login starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginParams {
    pub client_type: ClientType,
    /// Where the login ends (CLI callback, or the UI page for the cookie hop).
    pub redirect_url: String,
    /// The UI's final target (the CLI callback of `kubectl bind <url>`), forwarded as
    /// `redirect_url` on the UI hop.
    pub client_side_redirect_url: String,
    pub session_id: String,
    /// As the client spelled it (forwarded back unchanged).
    pub cluster_id: String,
    /// The cluster it resolved to (`""` for the kubernetes provider's one cluster).
    pub normalised_cluster_id: String,
}

/// Sealed into the login cookie.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PendingLogin {
    /// The `state` sent to the issuer; the callback must bring back the same one.
    pub state: String,
    pub params: LoginParams,
    pub oidc: PendingAuthorization,
}

impl PendingLogin {
    /// The login cookie's name, derived from `state`, so parallel logins in one browser do not
    /// overwrite each other. `None` when `state` cannot be ours.
    pub fn cookie_name(state: &str) -> Option<String> {
        let well_formed = state.len() == 43
            && state
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        well_formed.then(|| format!("kube-bind-login-{}", &state[..16]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_own_state_shape_names_a_cookie() {
        let state = crate::auth::random_token();
        assert_eq!(
            PendingLogin::cookie_name(&state).unwrap(),
            format!("kube-bind-login-{}", &state[..16])
        );
        for forged in [
            "",
            "short",
            "x".repeat(44).as_str(),
            &format!("{}=", &state[..42]),
        ] {
            assert_eq!(PendingLogin::cookie_name(forged), None, "{forged}");
        }
        assert_eq!(ClientType::parse("CLI"), ClientType::Cli);
        assert_eq!(ClientType::parse(""), ClientType::Ui);
    }
}
