//! Per-client-IP request limit of the login routes (`--auth-rate-limit`, `--auth-rate-burst`):
//! over the limit a client gets 429 with the error body and a Retry-After.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::{DefaultKeyedRateLimiter, Quota};

use super::error::ApiError;
use crate::options::RateLimit;

/// A keyed token bucket per client IP; `None` when the limit is disabled.
#[derive(Clone, Debug)]
pub struct LoginRateLimit(Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>);

impl LoginRateLimit {
    pub fn new(limit: RateLimit) -> Self {
        Self(limit.per_second.map(|rate| {
            Arc::new(DefaultKeyedRateLimiter::keyed(
                Quota::per_second(rate).allow_burst(limit.burst),
            ))
        }))
    }

    pub fn disabled() -> Self {
        Self(None)
    }
}

pub(super) async fn enforce(
    State(limit): State<LoginRateLimit>,
    request: Request,
    next: Next,
) -> Response {
    let Some(limiter) = &limit.0 else {
        return next.run(request).await;
    };
    // Without connection info (in-process tests) every caller shares one bucket.
    let ip = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
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
