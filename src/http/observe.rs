//! HTTP metrics: requests by route and status, latency by route, logins by result and the
//! sessions alive in this replica's store.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: String,
    code: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct LoginLabels {
    result: &'static str,
}

/// Registered once at start; cheap to clone.
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requests: Family<RequestLabels, Counter>,
    latency: Family<RouteLabels, Histogram>,
    logins: Family<LoginLabels, Counter>,
    sessions: Gauge,
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self {
            inner: Arc::new(Inner {
                requests: Family::default(),
                latency: Family::new_with_constructor(|| {
                    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
                }),
                logins: Family::default(),
                sessions: Gauge::default(),
            }),
        }
    }
}

impl HttpMetrics {
    pub fn register(&self, registry: &mut Registry) {
        let inner = &self.inner;
        registry.register(
            "http_requests",
            "HTTP requests answered, by route, method and status code",
            inner.requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer an HTTP request, by route",
            inner.latency.clone(),
        );
        registry.register(
            "logins",
            "Completed OIDC callbacks by result (success, denied, invalid, error)",
            inner.logins.clone(),
        );
        registry.register(
            "sessions_active",
            "Live login sessions in this replica's session store (memory store only)",
            inner.sessions.clone(),
        );
    }

    pub fn login(&self, result: &'static str) {
        self.inner
            .logins
            .get_or_create(&LoginLabels { result })
            .inc();
    }

    pub fn set_active_sessions(&self, count: usize) {
        self.inner
            .sessions
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }
}

/// Counts and times every request under a bounded route label.
pub(super) async fn track(
    State(metrics): State<HttpMetrics>,
    request: Request,
    next: Next,
) -> Response {
    let route = route_label(request.uri().path());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    let inner = &metrics.inner;
    inner
        .latency
        .get_or_create(&RouteLabels { route })
        .observe(started.elapsed().as_secs_f64());
    inner
        .requests
        .get_or_create(&RequestLabels {
            route,
            method,
            code: response.status().as_u16(),
        })
        .inc();
    response
}

/// Known paths by name; everything else in two buckets, so scanners cannot grow the label set.
fn route_label(path: &str) -> &'static str {
    const KNOWN: &[&str] = &[
        "/healthz",
        "/readyz",
        "/metrics",
        "/exports",
        "/api/healthz",
        "/api/exports",
        "/api/bindable-resources",
        "/api/authorize",
        "/api/callback",
        "/api/logout",
        "/api/templates",
        "/api/collections",
        "/api/bind",
        "/api/ping",
    ];
    if let Some(known) = KNOWN.iter().find(|k| **k == path) {
        return known;
    }
    if path.starts_with("/oidc/") {
        "/oidc/*"
    } else if path.starts_with("/api/") {
        "/api/*"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_labels_are_bounded() {
        assert_eq!(route_label("/api/bind"), "/api/bind");
        assert_eq!(route_label("/oidc/token"), "/oidc/*");
        assert_eq!(route_label("/api/../../etc"), "/api/*");
        assert_eq!(route_label("/wp-admin"), "other");
    }
}
