//! The UI's CSRF token: the session's own key sealed for one purpose with an expiry, put in every
//! form of a page and checked on submit, so another site cannot make a logged-in browser bind or
//! log out (the session cookie is SameSite=Lax, which still lets top-level POSTs through in some
//! browsers for two minutes after login).

use std::time::{Duration, SystemTime};

use crate::auth::constant_time_eq;
use crate::crypto::Sealer;

/// The sealing purpose: a token sealed for anything else never opens here.
const PURPOSE: &str = "kube-bind ui csrf";

/// How long a page's forms stay usable.
pub const CSRF_LIFETIME: Duration = Duration::from_secs(3600);

/// Why a submitted form was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CsrfError {
    #[error("the form is missing its CSRF token; reload the page and submit the form again")]
    Missing,
    #[error(
        "the form's CSRF token is invalid, expired or belongs to another login; reload the page and submit the form again"
    )]
    Invalid,
}

/// A token for forms of the session `sid`, valid until `now + CSRF_LIFETIME`.
pub fn issue(sealer: &Sealer, sid: &str, now: SystemTime) -> String {
    sealer.seal(PURPOSE, sid.as_bytes(), now + CSRF_LIFETIME)
}

/// Whether `token` was issued by [`issue`] for the session `sid` and has not expired at `now`.
pub fn verify(sealer: &Sealer, token: &str, sid: &str, now: SystemTime) -> Result<(), CsrfError> {
    if token.is_empty() {
        return Err(CsrfError::Missing);
    }
    let bound_to = sealer
        .open(PURPOSE, token, now)
        .map_err(|_| CsrfError::Invalid)?;
    if constant_time_eq(&bound_to, sid.as_bytes()) {
        Ok(())
    } else {
        Err(CsrfError::Invalid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_opens_only_for_its_session_purpose_and_lifetime() {
        let sealer = Sealer::generate();
        let now = SystemTime::now();
        let token = issue(&sealer, "sid-a", now);
        assert_eq!(verify(&sealer, &token, "sid-a", now), Ok(()));
        assert_eq!(
            verify(&sealer, &token, "sid-b", now),
            Err(CsrfError::Invalid)
        );
        assert_eq!(
            verify(&sealer, &token, "sid-a", now + CSRF_LIFETIME),
            Err(CsrfError::Invalid)
        );
        assert_eq!(
            verify(&Sealer::generate(), &token, "sid-a", now),
            Err(CsrfError::Invalid)
        );
        // The session cookie is sealed with the same keys; it is no CSRF token.
        let other_purpose = sealer.seal("kube-bind", b"sid-a", now + CSRF_LIFETIME);
        assert_eq!(
            verify(&sealer, &other_purpose, "sid-a", now),
            Err(CsrfError::Invalid)
        );
        assert_eq!(verify(&sealer, "", "sid-a", now), Err(CsrfError::Missing));
    }
}
