//! The token endpoint: authenticates the client, checks the authorization code, its redirect URI
//! and PKCE verifier, and answers with an access token and an RS256 ID token.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::authorize::{AuthorizationCode, unix_seconds};
use super::error::{TokenError, TokenErrorCode, no_store};
use super::params::{Params, is_form};
use super::{ACCESS_TOKEN_PURPOSE, CODE_PURPOSE, EMAIL_DOMAIN, Issuer};
use crate::crypto::OpenError;

/// The claims of an ID token (OpenID Connect Core §2, §3.1.3.6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct IdTokenClaims {
    pub(super) iss: String,
    pub(super) sub: String,
    pub(super) aud: String,
    pub(super) exp: u64,
    pub(super) iat: u64,
    pub(super) auth_time: u64,
    pub(super) nonce: String,
    /// The left half of SHA-256 of the access token, base64url (OpenID Connect Core §3.1.3.6).
    pub(super) at_hash: String,
    pub(super) preferred_username: String,
    /// `<sub>@kube-bind.local` when the `email` scope is granted; never verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) email_verified: Option<bool>,
}

/// What a (sealed) access token carries to userinfo.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct AccessToken {
    pub(super) sub: String,
    pub(super) client_id: String,
    pub(super) scope: String,
}

/// The successful answer (RFC 6749 §5.1, OpenID Connect Core §3.1.3.3).
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TokenResponse {
    pub(super) access_token: String,
    pub(super) token_type: String,
    pub(super) expires_in: u64,
    pub(super) id_token: String,
    pub(super) scope: String,
}

/// POST `/token`.
pub(super) async fn exchange(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, TokenError> {
    let body = body.map_err(|rejection| {
        TokenError::invalid_request(format!("the request body cannot be read: {rejection}"))
    })?;
    if !is_form(&headers) {
        return Err(TokenError::invalid_request(
            "the body must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(&body);
    let answer = redeem(&issuer, &headers, &params, SystemTime::now());
    match &answer {
        Ok(_) => tracing::debug!("embedded OIDC issuer: tokens issued"),
        Err(err) => {
            tracing::info!(error = ?err.code, "embedded OIDC issuer: token request refused")
        }
    }
    let mut response = Json(answer?).into_response();
    no_store(&mut response);
    Ok(response)
}

fn redeem(
    issuer: &Issuer,
    headers: &HeaderMap,
    params: &Params,
    now: SystemTime,
) -> Result<TokenResponse, TokenError> {
    authenticate_client(issuer, headers, params)?;
    if let Some(name) = params.first_repeated() {
        return Err(TokenError::invalid_request(format!(
            "the parameter {name} is sent more than once"
        )));
    }
    match params.get("grant_type") {
        Some("authorization_code") => {}
        Some(other) => {
            return Err(TokenError::new(
                TokenErrorCode::UnsupportedGrantType,
                format!("grant_type {other:?} is not supported; use authorization_code"),
            ));
        }
        None => return Err(TokenError::invalid_request("grant_type is required")),
    }
    let required = |name: &str| {
        params
            .get(name)
            .ok_or_else(|| TokenError::invalid_request(format!("{name} is required")))
    };
    let (sealed_code, redirect_uri, verifier) = (
        required("code")?,
        required("redirect_uri")?,
        required("code_verifier")?,
    );
    let code: AuthorizationCode = issuer
        .sealer
        .open_json(CODE_PURPOSE, sealed_code, now)
        .map_err(|err| match err {
            OpenError::Expired => TokenError::invalid_grant(
                "the authorization code has expired (codes live 60 seconds); sign in again",
            ),
            OpenError::Malformed | OpenError::Tampered => {
                TokenError::invalid_grant("the authorization code is invalid")
            }
        })?;
    if code.client_id != issuer.client_id {
        return Err(TokenError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if code.redirect_uri != redirect_uri {
        return Err(TokenError::invalid_grant(
            "redirect_uri differs from the one the authorization code was issued for",
        ));
    }
    if !pkce_s256_matches(verifier, &code.code_challenge) {
        return Err(TokenError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    issue_tokens(issuer, code, now)
}

fn issue_tokens(
    issuer: &Issuer,
    code: AuthorizationCode,
    now: SystemTime,
) -> Result<TokenResponse, TokenError> {
    let expires_at = now + issuer.token_ttl;
    let access_token = issuer
        .sealer
        .seal_json(
            ACCESS_TOKEN_PURPOSE,
            &AccessToken {
                sub: code.sub.clone(),
                client_id: code.client_id.clone(),
                scope: code.scope.clone(),
            },
            expires_at,
        )
        .expect("an access token serializes");
    let email = has_scope(&code.scope, "email").then(|| format!("{}@{EMAIL_DOMAIN}", code.sub));
    let claims = IdTokenClaims {
        iss: issuer.issuer.clone(),
        aud: code.client_id,
        exp: unix_seconds(expires_at),
        iat: unix_seconds(now),
        auth_time: code.auth_time,
        nonce: code.nonce,
        at_hash: left_half_sha256(&access_token),
        preferred_username: code.sub.clone(),
        email_verified: email.as_ref().map(|_| false),
        email,
        sub: code.sub,
    };
    let id_token = issuer.key.sign(&claims).map_err(|err| {
        tracing::error!(error = %err, "embedded OIDC issuer: cannot sign an ID token");
        TokenError::new(TokenErrorCode::ServerError, "the ID token cannot be signed")
    })?;
    Ok(TokenResponse {
        access_token,
        token_type: "Bearer".into(),
        expires_in: issuer.token_ttl.as_secs(),
        id_token,
        scope: code.scope,
    })
}

/// Client authentication by HTTP Basic or `client_secret_post` (RFC 6749 §2.3.1), never both.
fn authenticate_client(
    issuer: &Issuer,
    headers: &HeaderMap,
    params: &Params,
) -> Result<(), TokenError> {
    let basic = headers.get(header::AUTHORIZATION).map(|value| {
        value.to_str().ok().and_then(parse_basic).ok_or_else(|| {
            TokenError::invalid_client("the Authorization header is not valid HTTP Basic")
        })
    });
    let (client_id, secret) = match basic {
        Some(credentials) => {
            if params.get("client_secret").is_some() {
                return Err(TokenError::invalid_request(
                    "use one client authentication method: HTTP Basic or client_secret, not both",
                ));
            }
            let (id, secret) = credentials?;
            if params.get("client_id").is_some_and(|body_id| body_id != id) {
                return Err(TokenError::invalid_client(
                    "client_id differs from the HTTP Basic user",
                ));
            }
            (id, secret)
        }
        None => match (params.get("client_id"), params.get("client_secret")) {
            (Some(id), Some(secret)) => (id.to_string(), secret.to_string()),
            _ => {
                return Err(TokenError::invalid_client(
                    "client authentication is required: HTTP Basic or client_id and client_secret",
                ));
            }
        },
    };
    if !issuer.client_authenticates(&client_id, &secret) {
        return Err(TokenError::invalid_client(
            "unknown client or wrong client secret",
        ));
    }
    Ok(())
}

/// `Basic base64(urlencode(id):urlencode(secret))` (RFC 6749 §2.3.1).
fn parse_basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let unescape = |s: &str| {
        form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    Some((unescape(id)?, unescape(secret)?))
}

/// RFC 7636 §4.6: `BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge`, the verifier
/// being 43–128 unreserved characters.
fn pkce_s256_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return false;
    }
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

fn left_half_sha256(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

pub(super) fn has_scope(scopes: &str, scope: &str) -> bool {
    scopes.split(' ').any(|s| s == scope)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_matches_the_rfc7636_example() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_s256_matches(verifier, challenge));
        assert!(!pkce_s256_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXX",
            challenge
        ));
        assert!(!pkce_s256_matches("short", challenge));
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        let header = format!("Basic {}", STANDARD.encode("my%20client:s%3Acret"));
        assert_eq!(
            parse_basic(&header),
            Some(("my client".into(), "s:cret".into()))
        );
        assert_eq!(parse_basic("Bearer abc"), None);
        assert_eq!(parse_basic("Basic !!!"), None);
    }
}
