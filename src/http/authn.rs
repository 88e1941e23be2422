//! The authenticated routes' guard: a bearer token (CLI) or the sealed UI cookie, checked against
//! the session store where sessions are kept server-side, and bound to one cluster.

use std::time::SystemTime;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::AppState;
use super::error::ApiError;
use super::params::QueryParams;
use crate::auth::{Auth, Session, session_cookie_name};
use crate::provider::Cluster;

/// A request by a logged-in consumer, for the cluster its login was for.
pub struct Authenticated {
    pub session: Session,
    pub cluster: Cluster,
}

const EXPIRED: &str = "Session has expired or is invalid";

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let auth = state.auth()?;
        let params = QueryParams::from_query(parts.uri.query());
        let cluster = state
            .clusters()
            .resolve(&params.cluster_id)
            .ok_or_else(|| ApiError::unknown_cluster(&params.cluster_id))?;
        authenticate(auth, &parts.headers, cluster).await
    }
}

/// The one session check of every authenticated route, the API's and the UI's: a valid bearer
/// token or UI cookie for `cluster`, complete, unexpired and still kept by the store. A caller
/// that is simply not logged in gets a 401 (403 for a login to another cluster).
pub(super) async fn authenticate(
    auth: &Auth,
    headers: &HeaderMap,
    cluster: Cluster,
) -> Result<Authenticated, ApiError> {
    let session = session_of(auth, headers, cluster.id().as_str()).await?;
    if !session.is_complete() {
        return Err(ApiError::unauthenticated(
            "Invalid session state: missing required fields",
        ));
    }
    if session.is_expired(SystemTime::now()) {
        return Err(ApiError::unauthenticated(EXPIRED));
    }
    if session.cluster_id != cluster.id().as_str() {
        return Err(ApiError::forbidden(format!(
            "this login is for cluster {:?}, not {:?}; log in again for this cluster \
             (kubectl bind login <url> --cluster <id>)",
            session.cluster_id,
            cluster.id().as_str()
        )));
    }
    Ok(Authenticated { session, cluster })
}

async fn session_of(
    auth: &Auth,
    headers: &HeaderMap,
    cluster_id: &str,
) -> Result<Session, ApiError> {
    if let Some(token) = bearer_token(headers) {
        let claims = auth
            .tokens
            .verify(token)
            .map_err(|_| ApiError::unauthenticated(EXPIRED))?;
        if !auth.store.keeps_sessions() {
            return Ok(claims.into_session());
        }
        return auth
            .store
            .load(&claims.sid)
            .await?
            .ok_or_else(|| ApiError::unauthenticated(EXPIRED));
    }
    let name = session_cookie_name(cluster_id);
    let Some(value) = super::login::cookie_value(headers, &name) else {
        return Err(ApiError::unauthenticated("No valid session found"));
    };
    let session = auth
        .open_session(&name, &value)
        .ok_or_else(|| ApiError::unauthenticated(EXPIRED))?;
    if auth.store.keeps_sessions() && auth.store.load(&session.sid).await?.is_none() {
        return Err(ApiError::unauthenticated(EXPIRED));
    }
    Ok(session)
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub(super) fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}
