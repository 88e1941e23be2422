//! Router tests: every route answered in-process, no network.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt as _;
use prometheus_client::registry::Registry;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::*;
use crate::metrics::MetricsRegistry;
use crate::provider::{Cluster, ClusterId, Clusters, Endpoint, EndpointKind};
use crate::readiness::Readiness;

fn unreachable_client() -> kube::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    kube::Client::try_from(config).unwrap()
}

fn engaged(ids: &[&str]) -> Clusters {
    let clusters = Clusters::default();
    let endpoint = Arc::new(Endpoint::new(
        "https://vw.example/services/apiexport/root/kube-bind.io",
        EndpointKind::VirtualWorkspace,
        unreachable_client(),
        CancellationToken::new(),
    ));
    for id in ids {
        clusters.insert(Cluster::new(ClusterId::new(id), endpoint.clone()));
    }
    clusters
}

fn app(clusters: Clusters, readiness: Readiness) -> axum::Router {
    let metrics = MetricsRegistry::new(Registry::with_prefix("kube_bind"));
    router(
        AppState::new("ACME", clusters, readiness, false),
        Some(metrics),
    )
}

async fn get(app: &axum::Router, uri: &str) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
    let request = Request::get(uri)
        .header(header::HOST, "bind.example:8080")
        .body(Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes().to_vec(),
    )
}

#[tokio::test]
async fn health_endpoints_answer_without_caching() {
    let app = app(engaged(&[""]), Readiness::default());
    for path in ["/healthz", "/api/healthz"] {
        let (status, headers, body) = get(&app, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body.is_empty());
        assert_eq!(
            headers[header::CACHE_CONTROL],
            "no-cache, no-store, must-revalidate, max-age=0"
        );
        assert_eq!(headers[header::EXPIRES], "Thu, 01 Jan 1970 00:00:00 UTC");
    }
}

#[tokio::test]
async fn readyz_follows_the_checks() {
    let readiness = Readiness::default();
    let check = readiness.register("provider", "waiting for endpoint slice kube-bind.io");
    let app = app(engaged(&[]), readiness);
    let (status, _, body) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        String::from_utf8(body)
            .unwrap()
            .contains("[-]provider failed: waiting for endpoint slice kube-bind.io")
    );
    check.ready();
    let (status, _, _) = get(&app, "/readyz").await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn exports_describes_the_provider_like_upstream() {
    let app = app(engaged(&["2ocmmccjkme8bof4"]), Readiness::default());
    let (status, _, body) =
        get(&app, "/api/exports?cluster_id=2ocmmccjkme8bof4&client_side_redirect_url=http://127.0.0.1:1/cb&session_id=s1")
            .await;
    assert_eq!(status, StatusCode::OK);
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["kind"], "BindingProvider");
    assert_eq!(json["apiVersion"], "v1alpha2");
    assert_eq!(json["providerPrettyName"], "ACME");
    assert_eq!(
        json["authenticationMethods"][0]["method"],
        "OAuth2CodeGrant"
    );
    assert_eq!(
        json["authenticationMethods"][0]["oauth2CodeGrant"]["authenticatedURL"],
        "http://bind.example:8080/api/authorize?cluster_id=2ocmmccjkme8bof4&redirect_url=http%3A%2F%2F127.0.0.1%3A1%2Fcb&session_id=s1"
    );
}

#[tokio::test]
async fn behind_a_trusted_tls_proxy_the_login_url_is_https() {
    let proxies = crate::options::TrustedProxies::parse(&["10.0.0.1".to_owned()]).unwrap();
    let app = router(
        AppState::new("ACME", engaged(&[""]), Readiness::default(), false)
            .with_trusted_proxies(proxies),
        None,
    );
    // (TCP peer, its X-Forwarded-Proto, the scheme of the login URL handed out)
    for (peer, proto, want) in [
        ("10.0.0.1:5000", "https", "https"),
        ("192.0.2.9:5000", "https", "http"),
    ] {
        let mut request = Request::get("/api/exports")
            .header(header::HOST, "bind.example")
            .header("x-forwarded-proto", proto)
            .body(Body::empty())
            .unwrap();
        let peer: std::net::SocketAddr = peer.parse().unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let response = app.clone().oneshot(request).await.unwrap();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            json["authenticationMethods"][0]["oauth2CodeGrant"]["authenticatedURL"],
            format!("{want}://bind.example/api/authorize"),
            "{peer}"
        );
    }
}

#[tokio::test]
async fn exports_for_an_unknown_cluster_is_a_404_error_body() {
    let app = app(engaged(&["2ocmmccjkme8bof4"]), Readiness::default());
    for query in ["?cluster_id=nope", "", "?cluster_id=default"] {
        let (status, headers, body) = get(&app, &format!("/api/exports{query}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{query}");
        assert_eq!(headers[header::CONTENT_TYPE], "application/json");
        let json: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(json["kind"], "Error");
        assert_eq!(json["apiVersion"], "kube-bind.io/v1alpha2");
        assert_eq!(json["code"], "RESOURCE_NOT_FOUND");
    }
}

#[tokio::test]
async fn the_single_cluster_answers_to_empty_and_default() {
    let app = app(engaged(&[""]), Readiness::default());
    for query in ["", "?cluster_id=", "?cluster_id=default"] {
        let (status, _, _) = get(&app, &format!("/api/exports{query}")).await;
        assert_eq!(status, StatusCode::OK, "{query}");
    }
}

#[tokio::test]
async fn old_exports_path_redirects_with_its_query() {
    let app = app(engaged(&[""]), Readiness::default());
    let (status, headers, _) = get(&app, "/exports?cluster_id=abc&session_id=1").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers[header::LOCATION],
        "/api/exports?cluster_id=abc&session_id=1"
    );
}

#[tokio::test]
async fn unknown_api_paths_get_a_json_404() {
    let app = app(engaged(&[""]), Readiness::default());
    let (status, _, body) = get(&app, "/api/no-such-thing").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let json: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["code"], "RESOURCE_NOT_FOUND");
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("/api/no-such-thing")
    );
}

#[tokio::test]
async fn bindable_resources_lists_the_claimable_apis() {
    let app = app(engaged(&[""]), Readiness::default());
    let (status, _, body) = get(&app, "/api/bindable-resources").await;
    assert_eq!(status, StatusCode::OK);
    let json: Value = serde_json::from_slice(&body).unwrap();
    let plurals: Vec<&str> = json
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Names"]["plural"].as_str().unwrap())
        .collect();
    assert_eq!(plurals, ["configmaps", "secrets", "serviceaccounts"]);
}

#[tokio::test]
async fn metrics_are_prometheus_text() {
    let app = app(engaged(&[""]), Readiness::default());
    let (status, headers, body) = get(&app, "/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/openmetrics-text")
    );
    assert!(String::from_utf8(body).unwrap().ends_with("# EOF\n"));
}
