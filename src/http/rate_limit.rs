//! Per-client-IP request limit of the login routes (`--auth-rate-limit`, `--auth-rate-burst`):
//! over the limit a client gets 429 with the error body and a Retry-After. Behind a trusted proxy
//! (`--trusted-proxies`) the client is the one `X-Forwarded-For` names (see `client_ip`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::client_ip::client_ip;
use super::error::ApiError;
use crate::options::{RateLimit, TrustedProxies};

const X_FORWARDED_FOR: &str = "x-forwarded-for";

/// A keyed token bucket per client IP; `limiter` is `None` when the limit is disabled.
#[derive(Clone, Debug)]
pub struct LoginRateLimit {
    limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    proxies: Arc<TrustedProxies>,
}

impl LoginRateLimit {
    pub fn new(limit: RateLimit, proxies: TrustedProxies) -> Self {
        Self {
            limiter: limit.per_second.map(|rate| {
                Arc::new(DefaultKeyedRateLimiter::keyed(
                    Quota::per_second(rate).allow_burst(limit.burst),
                ))
            }),
            proxies: Arc::new(proxies),
        }
    }

    pub fn disabled() -> Self {
        Self {
            limiter: None,
            proxies: Arc::default(),
        }
    }
}

pub(super) async fn enforce(
    State(limit): State<LoginRateLimit>,
    request: Request,
    next: Next,
) -> Response {
    let Some(limiter) = &limit.limiter else {
        return next.run(request).await;
    };
    // Without connection info (in-process tests) every caller shares one bucket.
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let forwarded_for = request
        .headers()
        .get_all(X_FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok());
    let ip = client_ip(peer, forwarded_for, &limit.proxies);
    if limiter.check_key(&ip).is_ok() {
        // Forget idle clients now and then, so the map does not grow with every address seen.
        if limiter.len() > 10_000 {
            limiter.retain_recent();
        }
        return next.run(request).await;
    }
    let mut response =
        ApiError::bad_request("too many login requests from this address; wait a second and retry")
            .with_status(StatusCode::TOO_MANY_REQUESTS)
            .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

#[cfg(test)]
mod tests {
    use std::num::NonZeroU32;

    use axum::Router;
    use axum::body::Body;
    use axum::middleware::from_fn_with_state;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    /// One request a second, no burst: the second request of a client is refused.
    fn router(proxies: &[&str]) -> Router {
        let proxies: Vec<String> = proxies.iter().map(|s| (*s).to_owned()).collect();
        let limit = LoginRateLimit::new(
            RateLimit {
                per_second: NonZeroU32::new(1),
                burst: NonZeroU32::MIN,
            },
            TrustedProxies::parse(&proxies).unwrap(),
        );
        Router::new()
            .route("/", get(|| async { "ok" }))
            .route_layer(from_fn_with_state(limit, enforce))
    }

    async fn status(router: &Router, peer: &str, forwarded_for: Option<&str>) -> u16 {
        let mut request = Request::get("/");
        if let Some(value) = forwarded_for {
            request = request.header(X_FORWARDED_FOR, value);
        }
        let mut request = request.body(Body::empty()).unwrap();
        let peer: SocketAddr = peer.parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(peer));
        router
            .clone()
            .oneshot(request)
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    #[tokio::test]
    async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_bucket() {
        let router = router(&["127.0.0.1"]);
        assert_eq!(
            status(&router, "127.0.0.1:5000", Some("203.0.113.1")).await,
            200
        );
        assert_eq!(
            status(&router, "127.0.0.1:5001", Some("203.0.113.2")).await,
            200
        );
        assert_eq!(
            status(&router, "127.0.0.1:5002", Some("203.0.113.1")).await,
            429
        );
    }

    #[tokio::test]
    async fn an_untrusted_peer_is_limited_whatever_it_forwards() {
        let router = router(&["10.0.0.1"]);
        assert_eq!(
            status(&router, "127.0.0.1:5000", Some("203.0.113.1")).await,
            200
        );
        assert_eq!(
            status(&router, "127.0.0.1:5001", Some("203.0.113.2")).await,
            429
        );
    }
}
