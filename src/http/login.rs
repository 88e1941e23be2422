//! `/api/authorize`, `/api/callback`, `/api/logout`: the OIDC login as the CLI and the UI drive it.
//!
//! Every client-supplied redirect target is checked before anything else happens; the pending
//! login (PKCE verifier, nonce, `state`, the client's parameters) travels sealed in a cookie of
//! the browser, so whichever replica receives the callback can finish it.

use std::time::SystemTime;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use serde::Deserialize;
use url::Url;

use super::error::ApiError;
use super::params::QueryParams;
use super::{AppState, Scheme};
use crate::auth::{
    Auth, ClientType, LOGIN_TIMEOUT, LoginFor, LoginParams, PendingLogin, Session,
    constant_time_eq, random_token, session_cookie_name,
};

/// Largest JSON body of `POST /api/authorize`.
const AUTHORIZE_BODY_LIMIT: usize = 16 * 1024;

/// Path of the login cookie: only the callback needs it.
const CALLBACK_PATH: &str = "/api/callback";

/// `GET /api/authorize?…` or `POST /api/authorize` with the same keys as JSON.
pub(super) async fn authorize(
    State(state): State<AppState>,
    scheme: Scheme,
    method: Method,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Body,
) -> Result<Response, ApiError> {
    let auth = state.auth()?;
    let params = if method == Method::POST {
        let body = axum::body::to_bytes(body, AUTHORIZE_BODY_LIMIT)
            .await
            .map_err(|_| {
                ApiError::bad_request(format!(
                    "the request body is larger than {AUTHORIZE_BODY_LIMIT} bytes"
                ))
                .with_status(StatusCode::PAYLOAD_TOO_LARGE)
            })?;
        serde_json::from_slice::<QueryParams>(&body).map_err(|e| {
            ApiError::bad_request(
                "invalid JSON request body; send an object with redirect_url and session_id",
            )
            .with_details(e.to_string())
        })?
    } else {
        QueryParams::from_query(query.as_deref())
    };
    let params = checked_login_params(&state, auth, &headers, scheme, params)?;
    let login_state = random_token();
    let (issuer_url, pending) = auth
        .oidc
        .authorize_url(&login_state)
        .await
        .map_err(|e| ApiError::unavailable(e.to_string()))?;
    let cookie_name = PendingLogin::cookie_name(&login_state).ok_or_else(|| {
        ApiError::internal("the login state has an unexpected shape; this is a bug")
    })?;
    let login = PendingLogin {
        state: login_state,
        params,
        oidc: pending,
    };
    let sealed = auth
        .sealer
        .seal_json(&cookie_name, &login, SystemTime::now() + LOGIN_TIMEOUT)
        .map_err(|e| ApiError::internal(format!("cannot seal the login: {e}")))?;
    let cookie = cookie(scheme, &cookie_name, sealed, CALLBACK_PATH)
        .max_age(cookie::time::Duration::seconds(
            LOGIN_TIMEOUT.as_secs() as i64
        ))
        .build();
    Ok(redirect_with_cookies(issuer_url.as_str(), [cookie]))
}

/// The checks upstream makes (both required) plus ours: the cluster exists, and every redirect
/// target is loopback, allowed, or (for the UI's own hop) on our origin.
fn checked_login_params(
    state: &AppState,
    auth: &Auth,
    headers: &HeaderMap,
    scheme: Scheme,
    params: QueryParams,
) -> Result<LoginParams, ApiError> {
    if params.redirect_url.is_empty() || params.session_id.is_empty() {
        return Err(ApiError::bad_request(
            "missing redirect_url or session_id; the client must send both",
        ));
    }
    let cluster = state
        .clusters()
        .resolve(&params.cluster_id)
        .ok_or_else(|| ApiError::unknown_cluster(&params.cluster_id))?;
    let client_type = ClientType::parse(&params.client_type);
    let refused = |e: crate::auth::RedirectError| ApiError::bad_request(e.to_string());
    match client_type {
        ClientType::Cli => {
            auth.redirects
                .check("redirect_url", &params.redirect_url)
                .map_err(refused)?;
        }
        ClientType::Ui => {
            let own = own_origin(scheme, headers)?;
            auth.redirects
                .check_internal("redirect_url", &params.redirect_url, &own)
                .map_err(refused)?;
            if !params.client_side_redirect_url.is_empty() {
                auth.redirects
                    .check("client_side_redirect_url", &params.client_side_redirect_url)
                    .map_err(refused)?;
            }
        }
    }
    Ok(LoginParams {
        client_type,
        redirect_url: params.redirect_url,
        client_side_redirect_url: params.client_side_redirect_url,
        session_id: params.session_id,
        cluster_id: params.cluster_id,
        normalised_cluster_id: cluster.id().as_str().to_owned(),
    })
}

/// `scheme://host` the request reached us on.
pub(super) fn own_origin(scheme: Scheme, headers: &HeaderMap) -> Result<Url, ApiError> {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ApiError::bad_request("the request has no Host header; send one"))?;
    Url::parse(&format!("{}://{host}/", scheme.as_str()))
        .map_err(|_| ApiError::bad_request(format!("the Host header {host:?} is not a host name")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CallbackQuery {
    code: String,
    state: String,
    error: String,
    error_description: String,
}

/// `GET /api/callback?code&state`: the issuer sends the browser back here.
pub(super) async fn callback(
    State(state): State<AppState>,
    scheme: Scheme,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let auth = state.auth()?;
    let result = finish_login(&state, auth, &headers, scheme, query.as_deref()).await;
    state.metrics().login(match &result {
        Ok(_) => "success",
        Err(e) if e.status() == StatusCode::UNAUTHORIZED => "denied",
        Err(e) if e.status().is_client_error() => "invalid",
        Err(_) => "error",
    });
    result
}

async fn finish_login(
    state: &AppState,
    auth: &Auth,
    headers: &HeaderMap,
    scheme: Scheme,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let query: CallbackQuery = super::params::parse_query(query);
    let (login, cookie_name) = redeem_pending_login(auth, headers, &query).await?;
    let user = auth
        .oidc
        .finish(&query.code, &login.oidc)
        .await
        .map_err(|e| match e {
            crate::auth::OidcError::Discovery { .. } => ApiError::unavailable(e.to_string()),
            _ => ApiError::unauthenticated(e.to_string()),
        })?;
    let now = SystemTime::now();
    let params = login.params;
    let session = Session::start(
        user,
        LoginFor {
            client_session_id: params.session_id.clone(),
            cluster_id: params.normalised_cluster_id.clone(),
            redirect_url: params.redirect_url.clone(),
        },
        now,
        auth.session_lifetime,
    );
    auth.store.save(&session).await?;
    if let Some(active) = auth.store.active() {
        state.metrics().set_active_sessions(active);
    }
    tracing::info!(
        subject = %session.subject,
        cluster = %session.cluster_id,
        client = ?params.client_type,
        "login succeeded"
    );
    let clear_login = removal(scheme, &cookie_name, CALLBACK_PATH);
    match params.client_type {
        ClientType::Cli => {
            let target = cli_redirect(auth, &session, &params, now)?;
            Ok(redirect_with_cookies(target.as_str(), [clear_login]))
        }
        ClientType::Ui => {
            let (target, session_cookie) =
                ui_redirect(auth, headers, scheme, &session, params, now)?;
            Ok(redirect_with_cookies(
                target.as_str(),
                [clear_login, session_cookie],
            ))
        }
    }
}

/// The login a callback finishes: the issuer's answer checked, and the pending login sealed in
/// this browser's cookie opened, matched to the callback's `state` and used up (a replayed
/// callback is refused). Returns it with its cookie's name.
async fn redeem_pending_login(
    auth: &Auth,
    headers: &HeaderMap,
    query: &CallbackQuery,
) -> Result<(PendingLogin, String), ApiError> {
    if !query.error.is_empty() {
        return Err(ApiError::unauthenticated(format!(
            "the identity provider refused the login: {} {}",
            query.error, query.error_description
        )));
    }
    if query.code.is_empty() {
        return Err(ApiError::bad_request(
            "missing code; /api/callback is where the identity provider sends the browser after login, start at /api/authorize",
        ));
    }
    let stale = || {
        ApiError::bad_request(
            "this login was not started in this browser, was already used, or is older than 10 minutes; start the login again",
        )
    };
    let cookie_name = PendingLogin::cookie_name(&query.state).ok_or_else(stale)?;
    let sealed = cookie_value(headers, &cookie_name).ok_or_else(stale)?;
    let login: PendingLogin = auth
        .sealer
        .open_json(&cookie_name, &sealed, SystemTime::now())
        .map_err(|_| stale())?;
    if !constant_time_eq(login.state.as_bytes(), query.state.as_bytes()) {
        return Err(stale());
    }
    if !auth
        .store
        .use_once(&format!("state:{}", login.state), LOGIN_TIMEOUT)
        .await?
    {
        return Err(stale());
    }
    Ok((login, cookie_name))
}

/// The CLI's ending: its loopback `redirect_url` with the bearer token, as upstream's CLI reads
/// it (`access_token`, `token_type`, `expires_in`, and the `cluster_id` it asked for).
fn cli_redirect(
    auth: &Auth,
    session: &Session,
    params: &LoginParams,
    now: SystemTime,
) -> Result<Url, ApiError> {
    let token = auth
        .tokens
        .issue(session, now)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut target = Url::parse(&params.redirect_url)
        .map_err(|_| ApiError::bad_request("redirect_url is not a URL"))?;
    {
        let mut pairs = target.query_pairs_mut();
        pairs
            .append_pair("access_token", &token)
            .append_pair("token_type", "Bearer")
            .append_pair("expires_in", &session.remaining(now).as_secs().to_string());
        if !params.cluster_id.is_empty() {
            pairs.append_pair("cluster_id", &params.cluster_id);
        }
    }
    Ok(target)
}

/// The UI's ending: the sealed session cookie, and the page on our own origin that started the
/// login, with the parameters it forwarded.
fn ui_redirect(
    auth: &Auth,
    headers: &HeaderMap,
    scheme: Scheme,
    session: &Session,
    params: LoginParams,
    now: SystemTime,
) -> Result<(Url, Cookie<'static>), ApiError> {
    let name = session_cookie_name(&session.cluster_id);
    let sealed = auth
        .seal_session(&name, session)
        .map_err(|e| ApiError::internal(format!("cannot seal the session: {e}")))?;
    let session_cookie = cookie(scheme, &name, sealed, "/")
        .max_age(cookie::time::Duration::seconds(
            session.remaining(now).as_secs() as i64,
        ))
        .build();
    let own = own_origin(scheme, headers)?;
    let mut target = auth
        .redirects
        .check_internal("redirect_url", &params.redirect_url, &own)
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let forwarded = QueryParams {
        cluster_id: params.cluster_id,
        redirect_url: String::new(),
        client_side_redirect_url: params.client_side_redirect_url,
        session_id: params.session_id,
        client_type: String::new(),
    }
    .forwarded_query();
    if !forwarded.is_empty() {
        let joined = match target.query() {
            Some(existing) if !existing.is_empty() => joined_query(existing, &forwarded),
            _ => forwarded,
        };
        target.set_query(Some(&joined));
    }
    Ok((target, session_cookie))
}

/// `existing` with `forwarded` appended; a key of `forwarded` replaces the same key in `existing`,
/// so a UI page that sent its own query as `redirect_url` gets each parameter back once.
fn joined_query(existing: &str, forwarded: &str) -> String {
    let replaced: Vec<String> = form_urlencoded::parse(forwarded.as_bytes())
        .map(|(k, _)| k.into_owned())
        .collect();
    // Raw pairs are kept as they were encoded; only their decoded key is compared.
    let kept: Vec<&str> = existing
        .split('&')
        .filter(
            |pair| match form_urlencoded::parse(pair.as_bytes()).next() {
                Some((key, _)) => !replaced.iter().any(|r| *r == key),
                None => false,
            },
        )
        .collect();
    if kept.is_empty() {
        forwarded.to_owned()
    } else {
        format!("{}&{forwarded}", kept.join("&"))
    }
}

/// `POST /api/logout[?cluster_id=…]`: clears the UI cookie and, where sessions are kept
/// server-side, ends the session (upstream only clears the cookie).
pub(super) async fn logout(
    State(state): State<AppState>,
    scheme: Scheme,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let auth = state.auth()?;
    let params = QueryParams::from_query(query.as_deref());
    let clear = end_session(&state, auth, &headers, scheme, &params.cluster_id).await?;
    let mut response = (StatusCode::OK, "logged out").into_response();
    append_cookie(&mut response, clear);
    Ok(super::routes::no_cache(response))
}

/// Ends the sessions the request carries for `cluster_id` (its UI cookie, its bearer token) where
/// the store keeps them, and returns the cookie that clears the UI cookie: the logout of the API
/// and of the UI.
pub(super) async fn end_session(
    state: &AppState,
    auth: &Auth,
    headers: &HeaderMap,
    scheme: Scheme,
    cluster_id: &str,
) -> Result<Cookie<'static>, ApiError> {
    let cluster_id = state
        .clusters()
        .resolve(cluster_id)
        .map(|c| c.id().as_str().to_owned())
        .unwrap_or_else(|| cluster_id.to_owned());
    let name = session_cookie_name(&cluster_id);
    let from_cookie = cookie_value(headers, &name).and_then(|v| auth.open_session(&name, &v));
    let from_token = super::authn::bearer_token(headers)
        .and_then(|t| auth.tokens.verify(t).ok())
        .map(|claims| claims.sid);
    for sid in from_cookie.map(|s| s.sid).into_iter().chain(from_token) {
        auth.store.delete(&sid).await?;
    }
    if let Some(active) = auth.store.active() {
        state.metrics().set_active_sessions(active);
    }
    Ok(removal(scheme, &name, "/"))
}

fn cookie<'c>(
    scheme: Scheme,
    name: &str,
    value: String,
    path: &'static str,
) -> cookie::CookieBuilder<'c> {
    Cookie::build((name.to_owned(), value))
        .path(path)
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(scheme.is_secure())
}

/// A cookie that deletes `name` (empty, expired at the epoch), as upstream's logout.
fn removal(scheme: Scheme, name: &str, path: &'static str) -> Cookie<'static> {
    cookie(scheme, name, String::new(), path)
        .expires(cookie::time::OffsetDateTime::UNIX_EPOCH)
        .max_age(cookie::time::Duration::ZERO)
        .build()
}

pub(super) fn redirect_with_cookies<const N: usize>(
    target: &str,
    cookies: [Cookie<'_>; N],
) -> Response {
    let mut response = Redirect::to(target).into_response();
    // Found (302), as upstream; axum's `to` is 303.
    *response.status_mut() = StatusCode::FOUND;
    for cookie in cookies {
        append_cookie(&mut response, cookie);
    }
    response
}

pub(super) fn append_cookie(response: &mut Response, cookie: Cookie<'_>) {
    if let Ok(value) = cookie.encoded().to_string().parse() {
        response.headers_mut().append(header::SET_COOKIE, value);
    }
}

/// The value of cookie `name` in the request, if any.
pub(super) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|h| h.to_str().ok())
        .flat_map(Cookie::split_parse_encoded)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
}

#[cfg(test)]
mod tests {
    use super::joined_query;

    #[test]
    fn forwarded_parameters_replace_the_pages_own() {
        let forwarded = "cluster_id=c1&redirect_url=http%3A%2F%2F127.0.0.1%3A1%2Fcb&session_id=s1";
        assert_eq!(
            joined_query(
                "session_id=s1&redirect_url=http://127.0.0.1:1/cb&cluster_id=c1&tab=x",
                forwarded
            ),
            format!("tab=x&{forwarded}")
        );
        assert_eq!(joined_query("cluster_id=old", forwarded), forwarded);
        assert_eq!(
            joined_query("a=1&&b", "c=2"),
            "a=1&b&c=2",
            "empty pairs are dropped, bare keys kept"
        );
    }
}
