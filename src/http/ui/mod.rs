//! The web UI at `/`: server-rendered pages, no JavaScript. `kubectl bind <url>` opens
//! `<url>?session_id=S&redirect_url=<CLI callback>[&cluster_id=C]` (upstream's contract); the page
//! logs the browser in through `/api/authorize` (`client_type=ui`), lists the cluster's templates
//! and collections, binds one with the same bind as `/api/bind`, and hands the result to the CLI
//! (see [`contract`]) or shows it.

mod contract;
mod csrf;
mod error;
mod pages;

use std::time::SystemTime;

use askama::Template;
use axum::Router;
use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::ListParams;
use kube_bind_apis::v1alpha2::{
    APIServiceExportTemplate, APIServiceExportTemplateRef, BindableResourcesRequest, Collection,
};
use kube_bind_apis::wire::ErrorCode;
use serde::Deserialize;

use super::authn::{Authenticated, authenticate};
use super::consumer::{Bound, bind_template};
use super::error::ApiError;
use super::login::{end_session, redirect_with_cookies};
use super::params::{QueryParams, parse_query};
use super::routes::no_cache;
use super::{AppState, Scheme};
use crate::auth::{Auth, RedirectError, random_token};
use crate::provider::Cluster;
use error::UiError;
use pages::{
    CataloguePage, CollectionView, FormContext, LoginPage, ResultPage, TemplateView, cluster_label,
};

/// Largest form body a UI route reads; its forms hold a few short fields.
const FORM_BODY_LIMIT: usize = 16 * 1024;

const STYLE: &str = include_str!("style.css");

/// The UI's routes, for the top-level router.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/ui/bind", post(bind).get(form_only))
        .route("/ui/logout", post(logout).get(form_only))
        .route("/ui/style.css", get(style))
}

/// `GET` on a form's target (a bookmark, a reload of the address bar): a page, not JSON.
async fn form_only(State(state): State<AppState>) -> Response {
    let error = ApiError::bad_request(
        "This address only takes the forms of the start page; go back to the start page and use them.",
    )
    .with_status(StatusCode::METHOD_NOT_ALLOWED);
    respond(&state, Err(error))
}

/// `GET /ui/style.css`: the one stylesheet, cacheable for an hour.
async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}

/// A handler's result as a page: success as is, failure as the error page; never cached, never
/// framed, and no URL of ours (they carry session ids and the CLI's callback) sent as referrer.
fn respond(state: &AppState, result: Result<Response, ApiError>) -> Response {
    let mut response = match result {
        Ok(response) => no_cache(response),
        Err(error) => UiError::new(state.pretty_name(), error).into_response(),
    };
    let headers = response.headers_mut();
    // No form-action: the bind's redirect to the CLI's loopback callback must stay allowed.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; base-uri 'none'; frame-ancestors 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn html(page: impl Template) -> Result<Response, ApiError> {
    let body = page
        .render()
        .map_err(|e| ApiError::internal(format!("cannot render the page: {e}")))?;
    Ok(Html(body).into_response())
}

fn refused(error: RedirectError) -> ApiError {
    ApiError::bad_request(error.to_string())
}

fn cluster_of(state: &AppState, cluster_id: &str) -> Result<Cluster, ApiError> {
    state
        .clusters()
        .resolve(cluster_id)
        .ok_or_else(|| ApiError::unknown_cluster(cluster_id))
}

/// Whether `authenticate` refused because there is no usable login (as opposed to a store that
/// cannot answer): then the person is sent to log in.
fn is_not_logged_in(error: &ApiError) -> bool {
    matches!(
        error.status(),
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN
    )
}

/// `GET /[?session_id&redirect_url&cluster_id]`: the login page or the catalogue.
async fn index(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let result = index_page(&state, &headers, query.as_deref()).await;
    respond(&state, result)
}

async fn index_page(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let auth = state.auth()?;
    let params = QueryParams::from_query(query);
    // First, so a page that would hand a kubeconfig to a foreign host never starts a login.
    if !params.redirect_url.is_empty() {
        auth.redirects
            .check("redirect_url", &params.redirect_url)
            .map_err(refused)?;
    }
    let cluster = cluster_of(state, &params.cluster_id)?;
    match authenticate(auth, headers, cluster).await {
        Ok(login) => catalogue(state, auth, &params, &login).await,
        Err(e) if is_not_logged_in(&e) => html(LoginPage {
            provider: state.pretty_name().to_owned(),
            cluster: cluster_label(&params.cluster_id),
            login_href: login_href(&params, query),
            from_cli: !params.redirect_url.is_empty(),
        }),
        Err(e) => Err(e),
    }
}

/// `/api/authorize` for the UI, coming back to this very page (`redirect_url`, relative) with the
/// CLI's callback as `client_side_redirect_url`, which the callback forwards as `redirect_url`.
fn login_href(params: &QueryParams, query: Option<&str>) -> String {
    let page = match query {
        Some(q) if !q.is_empty() => format!("/?{q}"),
        _ => "/".to_owned(),
    };
    // The session id comes back in the callback's query; a browser opened by hand has none.
    let session_id = if params.session_id.is_empty() {
        random_token()
    } else {
        params.session_id.clone()
    };
    let mut authorize = form_urlencoded::Serializer::new(String::new());
    authorize
        .append_pair("client_type", "ui")
        .append_pair("redirect_url", &page)
        .append_pair("session_id", &session_id)
        .append_pair("cluster_id", &params.cluster_id);
    if !params.redirect_url.is_empty() {
        authorize.append_pair("client_side_redirect_url", &params.redirect_url);
    }
    format!("/api/authorize?{}", authorize.finish())
}

async fn catalogue(
    state: &AppState,
    auth: &Auth,
    params: &QueryParams,
    login: &Authenticated,
) -> Result<Response, ApiError> {
    let client = login.cluster.client();
    let templates = Api::<APIServiceExportTemplate>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map_err(|e| ApiError::from_kube("Failed to list templates", &e))?;
    let collections = Api::<Collection>::all(client)
        .list(&ListParams::default())
        .await
        .map_err(|e| ApiError::from_kube("Failed to list collections", &e))?;
    html(CataloguePage {
        provider: state.pretty_name().to_owned(),
        subject: login.session.subject.clone(),
        cluster: cluster_label(login.cluster.id().as_str()),
        templates: templates.items.iter().map(TemplateView::from).collect(),
        collections: collections.items.iter().map(CollectionView::from).collect(),
        form: FormContext {
            session_id: client_session_id(&params.session_id, login),
            redirect_url: params.redirect_url.clone(),
            cluster_id: params.cluster_id.clone(),
            csrf: csrf::issue(&auth.sealer, &login.session.sid, SystemTime::now()),
        },
    })
}

/// The session id the CLI waits for: the page's, else the one the login was started with.
fn client_session_id(from_page: &str, login: &Authenticated) -> String {
    if from_page.is_empty() {
        login.session.client_session_id.clone()
    } else {
        from_page.to_owned()
    }
}

/// The fields of the catalogue's bind forms.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct BindForm {
    template: String,
    session_id: String,
    redirect_url: String,
    cluster_id: String,
    csrf: String,
}

/// The fields of the logout form.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct LogoutForm {
    cluster_id: String,
    csrf: String,
}

async fn read_form<T: Default + serde::de::DeserializeOwned>(body: Body) -> Result<T, ApiError> {
    let bytes = axum::body::to_bytes(body, FORM_BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::bad_request(format!(
                "the form is larger than {FORM_BODY_LIMIT} bytes; submit the page's own form"
            ))
            .with_status(StatusCode::PAYLOAD_TOO_LARGE)
        })?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        ApiError::bad_request("the form is not UTF-8 text; submit the page's own form")
    })?;
    Ok(parse_query(Some(text)))
}

/// The person's login for `cluster`, or a page telling them to log in again.
async fn logged_in(
    auth: &Auth,
    headers: &HeaderMap,
    cluster: Cluster,
) -> Result<Authenticated, ApiError> {
    authenticate(auth, headers, cluster).await.map_err(|e| {
        if is_not_logged_in(&e) {
            ApiError::new(
                ErrorCode::AuthenticationFailed,
                "You are not logged in, or your login has expired; go back to the start page and log in again.",
            )
            .with_details(e.body.details.clone())
        } else {
            e
        }
    })
}

/// `POST /ui/bind`: binds the chosen template, then hands the result to the CLI or shows it.
async fn bind(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let result = bind_page(&state, &headers, body).await;
    respond(&state, result)
}

async fn bind_page(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let auth = state.auth()?;
    let form: BindForm = read_form(body).await?;
    let cluster = cluster_of(state, &form.cluster_id)?;
    let login = logged_in(auth, headers, cluster).await?;
    csrf::verify(
        &auth.sealer,
        &form.csrf,
        &login.session.sid,
        SystemTime::now(),
    )
    .map_err(|e| ApiError::forbidden(e.to_string()))?;
    // Checked again (the form came from the browser) and before the bind, so a refused target
    // creates nothing.
    let callback = match form.redirect_url.as_str() {
        "" => None,
        target => Some(
            auth.redirects
                .check("redirect_url", target)
                .map_err(refused)?,
        ),
    };
    let request = BindableResourcesRequest {
        metadata: ObjectMeta {
            name: Some(form.template.clone()),
            ..ObjectMeta::default()
        },
        template_ref: APIServiceExportTemplateRef {
            name: form.template.clone(),
        },
        ..BindableResourcesRequest::default()
    };
    request
        .validate()
        .map_err(|e| ApiError::bad_request(format!("Invalid bind request: {e}")))?;
    let mut bound = bind_template(state, &login, request).await?;
    let session_id = client_session_id(&form.session_id, &login);
    // The CLI matches the response to the session id it opened the page with; a login made
    // earlier in this browser carries another one. The id names the CLI's run, it grants nothing.
    if let Some(grant) = bound.response.authentication.oauth2_code_grant.as_mut() {
        grant.session_id = session_id.clone();
    }
    match callback {
        Some(callback) => {
            let target = contract::cli_callback(callback, &session_id, &bound.response)
                .map_err(|e| ApiError::internal(e.to_string()))?;
            Ok(redirect_with_cookies(target.as_str(), []))
        }
        None => html(result_page(
            state.pretty_name(),
            &form.template,
            &form.cluster_id,
            bound,
        )?),
    }
}

/// The page of a bind no CLI waits for: where the kubeconfig is kept, the requests as YAML, and
/// what to run with them.
fn result_page(
    provider: &str,
    template: &str,
    cluster_id: &str,
    bound: Bound,
) -> Result<ResultPage, ApiError> {
    let requests = bound
        .response
        .requests
        .iter()
        .map(serde_saphyr::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ApiError::internal(format!("cannot encode the export request: {e}")))?;
    Ok(ResultPage {
        provider: provider.to_owned(),
        template: template.to_owned(),
        namespace: bound.namespace,
        secret_name: bound.secret_name,
        requests,
        kubeconfig: String::from_utf8_lossy(&bound.response.kubeconfig).into_owned(),
        back_href: page_for_cluster(cluster_id),
    })
}

/// `/` for `cluster_id` (just `/` for the single cluster).
fn page_for_cluster(cluster_id: &str) -> String {
    if cluster_id.is_empty() {
        "/".to_owned()
    } else {
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("cluster_id", cluster_id)
            .finish();
        format!("/?{query}")
    }
}

/// `POST /ui/logout`: ends the session as `/api/logout` does and goes back to the start page.
async fn logout(
    State(state): State<AppState>,
    scheme: Scheme,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = logout_page(&state, scheme, &headers, body).await;
    respond(&state, result)
}

async fn logout_page(
    state: &AppState,
    scheme: Scheme,
    headers: &HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let auth = state.auth()?;
    let form: LogoutForm = read_form(body).await?;
    // A live login must show its form's token; a stale cookie has nothing left to protect.
    if let Some(cluster) = state.clusters().resolve(&form.cluster_id)
        && let Ok(login) = authenticate(auth, headers, cluster).await
    {
        csrf::verify(
            &auth.sealer,
            &form.csrf,
            &login.session.sid,
            SystemTime::now(),
        )
        .map_err(|e| ApiError::forbidden(e.to_string()))?;
    }
    let clear = end_session(state, auth, headers, scheme, &form.cluster_id).await?;
    let mut response = redirect_with_cookies(&page_for_cluster(&form.cluster_id), [clear]);
    // See Other: the browser fetches the start page with GET after this POST.
    *response.status_mut() = StatusCode::SEE_OTHER;
    Ok(response)
}

#[cfg(test)]
mod tests;
