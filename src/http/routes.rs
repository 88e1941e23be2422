//! The router: which path goes to which handler, and the handlers that need no login.

use axum::Json;
use axum::Router;
use axum::extract::{OriginalUri, Query, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::from_fn_with_state;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use kube_bind_apis::wire::{BindingProvider, bindable_resources};

use super::error::ApiError;
use super::params::QueryParams;
use super::{AppState, Scheme, consumer, login, observe, rate_limit, ui};
use crate::metrics::MetricsRegistry;

/// Builds the router over `state`; with `metrics`, `/metrics` is served too.
pub fn router(state: AppState, metrics: Option<MetricsRegistry>) -> Router {
    let rate_limit = state.rate_limit();
    let login = Router::new()
        .route("/authorize", get(login::authorize).post(login::authorize))
        .route("/callback", get(login::callback))
        .route_layer(from_fn_with_state(rate_limit.clone(), rate_limit::enforce));
    let api = Router::new()
        .route("/healthz", get(healthz))
        .route("/exports", get(exports))
        .route("/bindable-resources", get(bindable))
        .route("/logout", post(login::logout))
        .route("/ping", get(consumer::ping))
        .route("/templates", get(consumer::templates))
        .route("/collections", get(consumer::collections))
        .route("/bind", post(consumer::bind))
        .merge(login)
        .fallback(api_not_found)
        .method_not_allowed_fallback(method_not_allowed);
    let mut router = Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/exports", get(exports_redirect))
        .nest("/api", api)
        .merge(ui::routes())
        .method_not_allowed_fallback(method_not_allowed);
    if let Some(issuer) = state.embedded_issuer() {
        router = router.nest_service(
            "/oidc",
            issuer.layer(from_fn_with_state(rate_limit, rate_limit::enforce)),
        );
    }
    let http_metrics = state.metrics().clone();
    let router = router.with_state(state);
    let router = match metrics {
        Some(metrics) => router.merge(metrics_router(metrics)),
        None => router,
    };
    router.layer(from_fn_with_state(http_metrics, observe::track))
}

/// A router serving only `/metrics` (for `--metrics-bind-address`).
pub fn metrics_router(metrics: MetricsRegistry) -> Router {
    Router::new()
        .route("/metrics", get(serve_metrics))
        .with_state(metrics)
}

/// Upstream's "never cache this" headers.
pub(super) fn no_cache(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::EXPIRES,
        HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 UTC"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, no-store, must-revalidate, max-age=0"),
    );
    headers.insert("x-accel-expires", HeaderValue::from_static("0"));
    response
}

async fn healthz() -> Response {
    no_cache(StatusCode::OK.into_response())
}

/// 200 `ok` when every readiness check passes, else 503 listing the failing ones.
async fn readyz(State(state): State<AppState>) -> Response {
    let report = state.readiness().report();
    let mut body = String::new();
    for check in &report {
        match &check.failure {
            None => body.push_str(&format!("[+]{} ok\n", check.name)),
            Some(reason) => body.push_str(&format!("[-]{} failed: {reason}\n", check.name)),
        }
    }
    let status = if report.iter().all(|c| c.failure.is_none()) {
        body.push_str("readyz check passed\n");
        StatusCode::OK
    } else {
        body.push_str("readyz check failed\n");
        StatusCode::SERVICE_UNAVAILABLE
    };
    no_cache((status, body).into_response())
}

/// `GET /api/exports`: what this provider is and how to log in.
async fn exports(
    State(state): State<AppState>,
    scheme: Scheme,
    Query(params): Query<QueryParams>,
    headers: HeaderMap,
) -> Result<Json<BindingProvider>, ApiError> {
    if state.clusters().resolve(&params.cluster_id).is_none() {
        return Err(ApiError::unknown_cluster(&params.cluster_id));
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| !h.is_empty())
        .ok_or_else(|| ApiError::bad_request("the request has no Host header; send one"))?;
    let query = params.forwarded_query();
    let separator = if query.is_empty() { "" } else { "?" };
    let authorize = format!(
        "{}://{host}/api/authorize{separator}{query}",
        scheme.as_str()
    );
    Ok(Json(BindingProvider::new(
        state.pretty_name(),
        crate::version::KUBE_BIND_COMPATIBLE_VERSION,
        authorize,
    )))
}

/// `GET /exports`: older CLIs ask here; send them to `/api/exports` with the same query.
async fn exports_redirect(RawQuery(query): RawQuery) -> Redirect {
    match query {
        Some(q) if !q.is_empty() => Redirect::to(&format!("/api/exports?{q}")),
        _ => Redirect::to("/api/exports"),
    }
}

/// `GET /api/bindable-resources`: the APIs a permission claim may name.
async fn bindable() -> Response {
    Json(bindable_resources()).into_response()
}

async fn serve_metrics(State(metrics): State<MetricsRegistry>) -> Response {
    match metrics.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => ApiError::internal("encoding metrics failed").into_response(),
    }
}

async fn method_not_allowed(method: axum::http::Method, OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::bad_request(format!("{method} is not allowed on {}", uri.path()))
        .with_status(StatusCode::METHOD_NOT_ALLOWED)
}

async fn api_not_found(OriginalUri(uri): OriginalUri) -> ApiError {
    ApiError::not_found(format!("no API route {}; see GET /api/exports", uri.path()))
}
