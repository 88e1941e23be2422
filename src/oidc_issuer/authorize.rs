//! The authorization endpoint: GET checks the request and shows the login form; POST takes the
//! form, and answers the client's redirect URI with a sealed authorization code.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::{AuthorizeError, redirect};
use super::params::{Params, is_form};
use super::{
    CODE_PURPOSE, CODE_TTL, Issuer, MAX_REQUEST_BYTES, PENDING_PURPOSE, PENDING_TTL,
    granted_scopes, page,
};
use crate::crypto::OpenError;

/// The longest username accepted (it becomes `sub`).
pub(super) const MAX_USERNAME_CHARS: usize = 64;
/// The length of a base64url SHA-256 digest: the only S256 `code_challenge` there is.
const S256_CHALLENGE_LEN: usize = 43;
/// Where the login form posts, relative to the page (`…/authorize`), so it works under any host.
const FORM_ACTION: &str = "authorize";

/// An authorization request that passed every check, waiting for the user to name themselves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct PendingAuthorization {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    /// Granted scopes, space-separated.
    pub(super) scope: String,
    pub(super) state: String,
    pub(super) nonce: String,
    pub(super) code_challenge: String,
}

/// What an authorization code carries to the token endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct AuthorizationCode {
    pub(super) client_id: String,
    pub(super) redirect_uri: String,
    pub(super) sub: String,
    pub(super) nonce: String,
    pub(super) code_challenge: String,
    pub(super) scope: String,
    /// Unix seconds of the login.
    pub(super) auth_time: u64,
}

/// GET `/authorize`.
pub(super) async fn show_login(
    State(issuer): State<Arc<Issuer>>,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    if query.len() > MAX_REQUEST_BYTES {
        return AuthorizeError::Page {
            status: StatusCode::URI_TOO_LONG,
            message: "The sign-in request is too long.".into(),
        }
        .into_response();
    }
    let params = Params::parse(query.as_bytes());
    let pending = match check_request(&issuer, &params) {
        Ok(pending) => pending,
        Err(err) => return err.into_response(),
    };
    let sealed = issuer
        .sealer
        .seal_json(PENDING_PURPOSE, &pending, SystemTime::now() + PENDING_TTL)
        .expect("a pending authorization serializes");
    let login_hint = params
        .get("login_hint")
        .filter(|hint| check_username(hint).is_ok())
        .unwrap_or("");
    login_form(StatusCode::OK, &pending, &sealed, login_hint, None)
}

/// POST `/authorize`: the login form.
pub(super) async fn submit_login(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    login(&issuer, &headers, body, SystemTime::now()).unwrap_or_else(IntoResponse::into_response)
}

fn login(
    issuer: &Issuer,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    now: SystemTime,
) -> Result<Response, AuthorizeError> {
    let body = body.map_err(|rejection| AuthorizeError::Page {
        status: rejection.status(),
        message: "The sign-in form could not be read.".into(),
    })?;
    if !is_form(headers) {
        return Err(AuthorizeError::Page {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "The sign-in form must be sent as application/x-www-form-urlencoded.".into(),
        });
    }
    let params = Params::parse(&body);
    let sealed = params.get("pending").ok_or_else(|| {
        AuthorizeError::page("The sign-in form is incomplete: it carries no sign-in request.")
    })?;
    let pending: PendingAuthorization = issuer
        .sealer
        .open_json(PENDING_PURPOSE, sealed, now)
        .map_err(|err| {
            let message = match err {
                OpenError::Expired => "This sign-in page has expired: it is valid for 10 minutes.",
                OpenError::Malformed | OpenError::Tampered => {
                    "This sign-in form was altered or was issued by another server."
                }
            };
            AuthorizeError::page(message)
        })?;
    // The configuration may have changed since the form was made (keys are kept across restarts).
    if pending.client_id != issuer.client_id
        || !issuer.is_registered_redirect(&pending.redirect_uri)
    {
        return Err(AuthorizeError::page(
            "This sign-in form names a client or redirect URI this issuer no longer knows.",
        ));
    }
    let username = params.get("username").unwrap_or("").trim();
    if let Err(problem) = check_username(username) {
        return Ok(login_form(
            StatusCode::BAD_REQUEST,
            &pending,
            sealed,
            username,
            Some(problem),
        ));
    }
    let code = AuthorizationCode {
        client_id: pending.client_id,
        redirect_uri: pending.redirect_uri,
        sub: username.to_string(),
        nonce: pending.nonce,
        code_challenge: pending.code_challenge,
        scope: pending.scope,
        auth_time: unix_seconds(now),
    };
    let sealed_code = issuer
        .sealer
        .seal_json(CODE_PURPOSE, &code, now + CODE_TTL)
        .expect("an authorization code serializes");
    tracing::info!(client_id = %code.client_id, sub = %code.sub, "embedded OIDC issuer: signed in, authorization code issued");
    Ok(redirect(
        &code.redirect_uri,
        &[("code", &sealed_code), ("state", &pending.state)],
    ))
}

/// Checks an authorization request (RFC 6749 §4.1.1, OpenID Connect Core §3.1.2.1, RFC 7636
/// §4.3). Until the client and its redirect URI are known good, errors are pages; after, they go
/// back to the client.
pub(super) fn check_request(
    issuer: &Issuer,
    params: &Params,
) -> Result<PendingAuthorization, AuthorizeError> {
    let client_id = match params.get("client_id") {
        Some(id) if id == issuer.client_id => id,
        Some(id) => {
            return Err(AuthorizeError::page(format!(
                "The application (client_id \"{id}\") is not registered with this issuer."
            )));
        }
        None if params.is_repeated("client_id") => {
            return Err(AuthorizeError::page(
                "The sign-in request names client_id more than once.",
            ));
        }
        None => {
            return Err(AuthorizeError::page(
                "The sign-in request names no application (client_id is missing).",
            ));
        }
    };
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) if issuer.is_registered_redirect(uri) => uri,
        Some(uri) => {
            return Err(AuthorizeError::page(format!(
                "The redirect URI \"{uri}\" is not registered for this application."
            )));
        }
        None if params.is_repeated("redirect_uri") => {
            return Err(AuthorizeError::page(
                "The sign-in request names redirect_uri more than once.",
            ));
        }
        None => {
            return Err(AuthorizeError::page(
                "The sign-in request has no redirect_uri.",
            ));
        }
    };
    let state = params.get("state");
    let fail = |error: &'static str, description: String| AuthorizeError::Redirect {
        redirect_uri: redirect_uri.to_string(),
        error,
        description,
        state: state.map(str::to_string),
    };
    if let Some(name) = params.first_repeated() {
        return Err(fail(
            "invalid_request",
            format!("the parameter {name} is sent more than once"),
        ));
    }
    match params.get("response_type") {
        Some("code") => {}
        Some(other) => {
            return Err(fail(
                "unsupported_response_type",
                format!("response_type {other:?} is not supported; use \"code\""),
            ));
        }
        None => {
            return Err(fail(
                "invalid_request",
                "response_type is required; use \"code\"".into(),
            ));
        }
    }
    let requested = params.get("scope").unwrap_or("");
    if !requested.split(' ').any(|s| s == "openid") {
        return Err(fail(
            "invalid_scope",
            "the scope must include \"openid\"".into(),
        ));
    }
    if params.get("request").is_some() {
        return Err(fail(
            "request_not_supported",
            "request objects are not supported".into(),
        ));
    }
    if params.get("request_uri").is_some() {
        return Err(fail(
            "request_uri_not_supported",
            "request_uri is not supported".into(),
        ));
    }
    let Some(state) = state else {
        return Err(fail(
            "invalid_request",
            "state is required (it protects the client against CSRF)".into(),
        ));
    };
    let Some(nonce) = params.get("nonce") else {
        return Err(fail(
            "invalid_request",
            "nonce is required (it binds the ID token to this request)".into(),
        ));
    };
    let Some(code_challenge) = params.get("code_challenge") else {
        return Err(fail(
            "invalid_request",
            "code_challenge is required: PKCE with S256 (RFC 7636)".into(),
        ));
    };
    if params.get("code_challenge_method") != Some("S256") {
        return Err(fail(
            "invalid_request",
            "code_challenge_method must be S256".into(),
        ));
    }
    if code_challenge.len() != S256_CHALLENGE_LEN || !is_base64url(code_challenge) {
        return Err(fail(
            "invalid_request",
            "code_challenge must be the base64url SHA-256 of the code verifier (43 characters)"
                .into(),
        ));
    }
    if params
        .get("prompt")
        .is_some_and(|p| p.split(' ').any(|p| p == "none"))
    {
        return Err(fail(
            "login_required",
            "this issuer keeps no sessions, so it always asks who you are".into(),
        ));
    }
    Ok(PendingAuthorization {
        client_id: client_id.to_string(),
        redirect_uri: redirect_uri.to_string(),
        scope: granted_scopes(requested).join(" "),
        state: state.to_string(),
        nonce: nonce.to_string(),
        code_challenge: code_challenge.to_string(),
    })
}

/// A username is 1–64 letters, digits, `.`, `_`, `-` or `@`: it becomes `sub` and the
/// `<username>@kube-bind.local` email.
pub(super) fn check_username(username: &str) -> Result<(), &'static str> {
    if username.is_empty() {
        return Err("Enter a username to sign in.");
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if username.chars().count() > MAX_USERNAME_CHARS || !username.chars().all(allowed) {
        return Err("A username is 1 to 64 letters, digits, dots, dashes, underscores or @ signs.");
    }
    Ok(())
}

fn login_form(
    status: StatusCode,
    pending: &PendingAuthorization,
    sealed: &str,
    username: &str,
    problem: Option<&str>,
) -> Response {
    let returns_to = url::Url::parse(&pending.redirect_uri)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_else(|_| pending.redirect_uri.clone());
    page::login(
        status,
        &page::LoginForm {
            action: FORM_ACTION,
            client_id: &pending.client_id,
            returns_to: &returns_to,
            pending: sealed,
            username,
            problem,
        },
    )
}

pub(super) fn is_base64url(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub(super) fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
