//! The userinfo endpoint (OpenID Connect Core §5.3): the claims of the access token's subject.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::error::{BearerError, no_store};
use super::token::{AccessToken, has_scope};
use super::{ACCESS_TOKEN_PURPOSE, EMAIL_DOMAIN, Issuer};
use crate::crypto::OpenError;

/// GET or POST `/userinfo` with `Authorization: Bearer <access token>`.
pub(super) async fn userinfo(
    State(issuer): State<Arc<Issuer>>,
    headers: HeaderMap,
) -> Result<Response, BearerError> {
    let token = bearer_token(&headers).ok_or(BearerError::Missing)?;
    let access: AccessToken = issuer
        .sealer
        .open_json(ACCESS_TOKEN_PURPOSE, token, SystemTime::now())
        .map_err(|err| {
            BearerError::Invalid(match err {
                OpenError::Expired => "the access token has expired",
                OpenError::Malformed | OpenError::Tampered => "the access token is invalid",
            })
        })?;
    let mut claims = json!({"sub": access.sub, "preferred_username": access.sub});
    if has_scope(&access.scope, "email") {
        claims["email"] = json!(format!("{}@{EMAIL_DOMAIN}", access.sub));
        claims["email_verified"] = json!(false);
    }
    let mut response = Json(claims).into_response();
    no_store(&mut response);
    Ok(response)
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}
