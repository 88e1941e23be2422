//! The UI's routes answered in-process: what a browser sees before any cluster is asked.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use http_body_util::BodyExt as _;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt as _;

use super::csrf;
use crate::auth::{
    Auth, BearerTokens, LoggedInUser, LoginFor, OidcClient, OidcSettings, RedirectPolicy, Session,
    SessionStore, session_cookie_name,
};
use crate::crypto::{Sealer, SigningKey};
use crate::http::{AppState, LoginRateLimit, router};
use crate::options::TrustedProxies;
use crate::provider::{Cluster, ClusterId, Clusters, Endpoint, EndpointKind};
use crate::provision::{ProvisionSettings, Provisioner};
use crate::readiness::Readiness;

const TEST_KEY: &str = include_str!("../../crypto/testdata/test-only-rsa2048-pkcs8.pem");
const CLI_CALLBACK: &str = "http://127.0.0.1:5000/callback";
/// The proxy [`app`] believes `X-Forwarded-*` headers from.
const TRUSTED_PROXY: &str = "10.0.0.1";

/// The router with login configured, over clusters `c1` and `c2` of an unreachable endpoint, and
/// the sealer its cookies are sealed with.
fn app() -> (axum::Router, Sealer) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let client =
        kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap())).unwrap();
    let endpoint = Arc::new(Endpoint::new(
        "https://vw.example/services/apiexport/root/kube-bind.io",
        EndpointKind::VirtualWorkspace,
        client,
        CancellationToken::new(),
    ));
    let clusters = Clusters::default();
    for id in ["c1", "c2"] {
        clusters.insert(Cluster::new(ClusterId::new(id), endpoint.clone()));
    }
    let sealer = Sealer::generate();
    let auth = Auth {
        oidc: OidcClient::new(OidcSettings {
            issuer_url: "http://127.0.0.1:9/oidc".into(),
            client_id: "id".into(),
            client_secret: "secret".into(),
            callback_url: "http://bind.example:8080/api/callback".into(),
            ca: None,
        })
        .unwrap(),
        sealer: sealer.clone(),
        tokens: BearerTokens::new(SigningKey::from_pem(TEST_KEY).unwrap()),
        store: SessionStore::Cookie,
        redirects: RedirectPolicy::default(),
        session_lifetime: Duration::from_secs(3600),
    };
    let state = AppState::new("ACME", clusters, Readiness::default(), false)
        .with_trusted_proxies(TrustedProxies::parse(&[TRUSTED_PROXY.to_owned()]).unwrap())
        .with_login(crate::http::Login {
            auth,
            provisioner: Provisioner::new(ProvisionSettings::default()),
            rate_limit: LoginRateLimit::disabled(),
            embedded_issuer: None,
        });
    (router(state, None), sealer)
}

/// A UI login of alice for `cluster`, as the callback seals it, and its cookie header.
fn logged_in(sealer: &Sealer, cluster: &str) -> (Session, String) {
    let session = Session::start(
        LoggedInUser {
            subject: "alice".into(),
            issuer: "https://idp.example".into(),
            groups: vec![],
        },
        LoginFor {
            client_session_id: "s1".into(),
            cluster_id: cluster.into(),
            redirect_url: "/".into(),
        },
        SystemTime::now(),
        Duration::from_secs(3600),
    );
    let name = session_cookie_name(cluster);
    let sealed = sealer
        .seal_json(&name, &session, session.expires())
        .unwrap();
    (session, format!("{name}={sealed}"))
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(app: &axum::Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.collect().await.unwrap().to_bytes().to_vec()).unwrap(),
    }
}

async fn get(app: &axum::Router, uri: &str, cookie: Option<&str>) -> Answer {
    let mut request = Request::get(uri).header(header::HOST, "bind.example:8080");
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, cookie);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

async fn post_form(app: &axum::Router, uri: &str, cookie: &str, fields: &[(&str, &str)]) -> Answer {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let request = Request::post(uri)
        .header(header::HOST, "bind.example:8080")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::COOKIE, cookie)
        .body(Body::from(body))
        .unwrap();
    send(app, request).await
}

fn assert_error_page(answer: &Answer, status: StatusCode, sentence: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "text/html; charset=utf-8"
    );
    assert!(
        answer.body.contains(r#"<main id="error">"#),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains(r#"<p class="error-message">"#),
        "{}",
        answer.body
    );
    assert!(
        answer.body.contains(sentence),
        "{sentence} in {}",
        answer.body
    );
    assert!(answer.body.contains(r#"<a href="/">"#), "{}", answer.body);
    assert!(
        !answer.body.contains("\"kind\":\"Error\""),
        "never the API's JSON"
    );
}

/// The decoded query of the `href` of the element with `id` (askama escapes `&` in attributes).
fn href_query(body: &str, id: &str) -> Vec<(String, String)> {
    let start = body
        .find(&format!(r#"id="{id}""#))
        .unwrap_or_else(|| panic!("no #{id} in {body}"));
    let rest = &body[start..];
    let href = rest.split(r#"href=""#).nth(1).unwrap();
    let href = href[..href.find('"').unwrap()].replace("&#38;", "&");
    let (path, query) = href.split_once('?').unwrap();
    assert_eq!(path, "/api/authorize");
    form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], key: &str) -> &'a str {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{key} missing from {pairs:?}"))
}

#[tokio::test]
async fn a_refused_redirect_url_is_a_400_page_before_anything_else() {
    let (app, sealer) = app();
    let (_, cookie) = logged_in(&sealer, "c1");
    for cookie in [None, Some(cookie.as_str())] {
        let answer = get(
            &app,
            "/?session_id=s1&redirect_url=https%3A%2F%2Fevil.example%2Fcb&cluster_id=c1",
            cookie,
        )
        .await;
        assert_error_page(
            &answer,
            StatusCode::BAD_REQUEST,
            "which is neither loopback nor allowed; the backend operator can add it with --allowed-redirect-hosts",
        );
        assert!(answer.headers.get(header::SET_COOKIE).is_none());
        assert!(!answer.body.contains("/api/authorize"));
    }
    // Even for a cluster that does not exist: the redirect is judged first.
    let answer = get(
        &app,
        "/?redirect_url=javascript:alert(1)&cluster_id=nope",
        None,
    )
    .await;
    assert_error_page(
        &answer,
        StatusCode::BAD_REQUEST,
        "is not an absolute http(s) URL",
    );
}

#[tokio::test]
async fn an_unknown_cluster_is_a_404_page_naming_it() {
    let (app, _) = app();
    let answer = get(&app, "/?cluster_id=no%3Csuch%3E", None).await;
    assert_error_page(
        &answer,
        StatusCode::NOT_FOUND,
        "cluster &#34;no&#60;such&#62;&#34; is not served",
    );
}

#[tokio::test]
async fn without_login_configured_the_page_says_so() {
    let state = AppState::new("ACME", Clusters::default(), Readiness::default(), false);
    let app = router(state, None);
    let answer = get(&app, "/", None).await;
    assert_error_page(
        &answer,
        StatusCode::SERVICE_UNAVAILABLE,
        "login is not configured on this backend; start it with the --oidc-* flags",
    );
}

#[tokio::test]
async fn the_login_link_comes_back_to_this_page_and_hands_on_the_cli_callback() {
    let (app, sealer) = app();
    let page =
        "/?session_id=s1&redirect_url=http%3A%2F%2F127.0.0.1%3A5000%2Fcallback&cluster_id=c1";
    // No cookie, a cookie for another cluster, and an expired session all need a login for c1.
    let (_, other) = logged_in(&sealer, "c2");
    let (mut session, _) = logged_in(&sealer, "c1");
    session.expires_at = session.created_at;
    let name = session_cookie_name("c1");
    let stale = format!(
        "{name}={}",
        sealer
            .seal_json(&name, &session, SystemTime::now() + Duration::from_secs(60))
            .unwrap()
    );
    for cookie in [None, Some(other.as_str()), Some(stale.as_str())] {
        let answer = get(&app, page, cookie).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert!(
            answer.body.contains(r#"<main id="login-page">"#),
            "{}",
            answer.body
        );
        assert!(answer.body.contains(">Log in</a>"));
        assert!(answer.headers.get(header::SET_COOKIE).is_none());
        assert_eq!(answer.headers[header::REFERRER_POLICY], "no-referrer");
        assert_eq!(answer.headers[header::X_FRAME_OPTIONS], "DENY");
        assert!(
            answer.headers[header::CONTENT_SECURITY_POLICY]
                .to_str()
                .unwrap()
                .contains("frame-ancestors 'none'")
        );
        let link = href_query(&answer.body, "login");
        assert_eq!(param(&link, "client_type"), "ui");
        assert_eq!(param(&link, "redirect_url"), page);
        assert_eq!(param(&link, "session_id"), "s1");
        assert_eq!(param(&link, "cluster_id"), "c1");
        assert_eq!(param(&link, "client_side_redirect_url"), CLI_CALLBACK);
    }
}

#[tokio::test]
async fn a_browser_opened_by_hand_gets_a_fresh_session_id_and_no_cli_callback() {
    let (app, _) = app();
    let first = href_query(&get(&app, "/?cluster_id=c2", None).await.body, "login");
    let second = href_query(&get(&app, "/?cluster_id=c2", None).await.body, "login");
    assert_eq!(param(&first, "redirect_url"), "/?cluster_id=c2");
    assert_eq!(param(&first, "session_id").len(), 43);
    assert_ne!(param(&first, "session_id"), param(&second, "session_id"));
    assert!(first.iter().all(|(k, _)| k != "client_side_redirect_url"));
}

#[tokio::test]
async fn a_logged_in_browser_gets_past_the_login_page() {
    let (app, sealer) = app();
    let (_, cookie) = logged_in(&sealer, "c1");
    // The catalogue lists from the cluster; this one is unreachable, so the listing's failure
    // shows as a page, which only a logged-in request reaches.
    let answer = get(&app, "/?cluster_id=c1", Some(&cookie)).await;
    assert_error_page(
        &answer,
        StatusCode::INTERNAL_SERVER_ERROR,
        "Failed to list templates",
    );
}

#[tokio::test]
async fn bind_refuses_a_form_without_its_sessions_csrf_token() {
    let (app, sealer) = app();
    let (session, cookie) = logged_in(&sealer, "c1");
    let foreign = csrf::issue(&sealer, "another-sid", SystemTime::now());
    for token in ["", "garbage", foreign.as_str()] {
        let answer = post_form(
            &app,
            "/ui/bind",
            &cookie,
            &[
                ("template", "widgets"),
                ("cluster_id", "c1"),
                ("csrf", token),
                ("session_id", "s1"),
            ],
        )
        .await;
        assert_error_page(
            &answer,
            StatusCode::FORBIDDEN,
            "reload the page and submit the form again",
        );
    }
    // With the session's own token the bind goes on, and the next check refuses a foreign
    // callback before anything is created.
    let own = csrf::issue(&sealer, &session.sid, SystemTime::now());
    let answer = post_form(
        &app,
        "/ui/bind",
        &cookie,
        &[
            ("template", "widgets"),
            ("cluster_id", "c1"),
            ("csrf", &own),
            ("redirect_url", "https://evil.example/cb"),
        ],
    )
    .await;
    assert_error_page(&answer, StatusCode::BAD_REQUEST, "--allowed-redirect-hosts");
}

#[tokio::test]
async fn bind_without_a_login_says_to_log_in_again() {
    let (app, sealer) = app();
    let (session, _) = logged_in(&sealer, "c1");
    let token = csrf::issue(&sealer, &session.sid, SystemTime::now());
    let answer = post_form(
        &app,
        "/ui/bind",
        "unrelated=1",
        &[
            ("template", "widgets"),
            ("cluster_id", "c1"),
            ("csrf", &token),
        ],
    )
    .await;
    assert_error_page(&answer, StatusCode::UNAUTHORIZED, "log in again");
}

#[tokio::test]
async fn logout_needs_the_token_then_clears_the_cookie_and_goes_home() {
    let (app, sealer) = app();
    let (session, cookie) = logged_in(&sealer, "c1");
    let refused = post_form(
        &app,
        "/ui/logout",
        &cookie,
        &[("cluster_id", "c1"), ("csrf", "x")],
    )
    .await;
    assert_error_page(&refused, StatusCode::FORBIDDEN, "CSRF");
    assert!(refused.headers.get(header::SET_COOKIE).is_none());

    let token = csrf::issue(&sealer, &session.sid, SystemTime::now());
    let answer = post_form(
        &app,
        "/ui/logout",
        &cookie,
        &[("cluster_id", "c1"), ("csrf", &token)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.headers[header::LOCATION], "/?cluster_id=c1");
    let cleared = answer.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.starts_with("kube-bind-c1=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
}

#[tokio::test]
async fn cookies_are_secure_behind_a_trusted_tls_proxy_only() {
    let (app, _) = app();
    // (TCP peer, its X-Forwarded-Proto, whether the cleared cookie is Secure)
    for (peer, proto, secure) in [
        ("10.0.0.1:4000", Some("https"), true),
        ("10.0.0.1:4000", None, false),
        ("192.0.2.9:4000", Some("https"), false),
    ] {
        let mut request = Request::post("/ui/logout")
            .header(header::HOST, "bind.example")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some(proto) = proto {
            request = request.header("x-forwarded-proto", proto);
        }
        let mut request = request.body(Body::from("cluster_id=c1&csrf=x")).unwrap();
        let peer: std::net::SocketAddr = peer.parse().unwrap();
        request
            .extensions_mut()
            .insert(axum::extract::ConnectInfo(peer));
        let answer = send(&app, request).await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{}", answer.body);
        let cleared = answer.headers[header::SET_COOKIE].to_str().unwrap();
        assert_eq!(
            cleared.contains("; Secure"),
            secure,
            "{peer} {proto:?}: {cleared}"
        );
    }
}

#[tokio::test]
async fn the_stylesheet_is_served_and_cacheable() {
    let (app, _) = app();
    let answer = get(&app, "/ui/style.css", None).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.headers[header::CONTENT_TYPE],
        "text/css; charset=utf-8"
    );
    assert_eq!(
        answer.headers[header::CACHE_CONTROL],
        "public, max-age=3600"
    );
    assert!(answer.body.contains(":focus-visible"));
}

#[test]
fn the_result_page_shows_the_secret_the_request_as_yaml_and_the_next_steps() {
    let request = serde_json::json!({
        "apiVersion": "kube-bind.io/v1alpha2",
        "kind": "APIServiceExportRequest",
        "metadata": {"name": "widgets"},
        "spec": {"resources": [{"group": "example.com", "resource": "widgets", "versions": ["v1"]}]},
        "status": {},
    });
    let bound = super::Bound {
        response: kube_bind_apis::wire::BindingResponse::new(
            "s1",
            "https://idp.example/alice",
            b"apiVersion: v1\nkind: Config\n# <token>\n".to_vec(),
            vec![request],
        ),
        namespace: "kube-bind-abc12".into(),
        secret_name: "kubeconfig".into(),
    };
    let page = super::result_page("ACME", "widgets", "c1", bound).unwrap();
    assert_eq!(page.requests.len(), 1);
    assert!(
        page.requests[0].contains("kind: APIServiceExportRequest"),
        "{}",
        page.requests[0]
    );
    assert!(
        page.requests[0].contains("resource: widgets"),
        "{}",
        page.requests[0]
    );
    let html = askama::Template::render(&page).unwrap();
    assert!(html.contains(r#"<main id="result">"#), "{html}");
    assert!(
        html.contains(r#"<code id="kubeconfig-secret">kube-bind-abc12/kubeconfig</code>"#),
        "{html}"
    );
    assert!(html.contains(r#"<section id="requests""#), "{html}");
    assert!(html.contains(r#"<details id="kubeconfig">"#), "{html}");
    assert!(
        html.contains("# &#60;token&#62;"),
        "the kubeconfig is escaped: {html}"
    );
    assert!(html.contains(r#"<section id="next-steps""#), "{html}");
    assert!(
        html.contains("kubectl --namespace kube-bind create secret generic"),
        "{html}"
    );
    assert!(
        html.contains("kubectl --kubeconfig provider.kubeconfig apply -f request.yaml"),
        "{html}"
    );
    assert!(html.contains(r#"href="/?cluster_id=c1""#), "{html}");
}

#[tokio::test]
async fn opening_a_forms_target_in_the_address_bar_is_a_page() {
    let (app, _) = app();
    for path in ["/ui/bind", "/ui/logout"] {
        let answer = get(&app, path, None).await;
        assert_error_page(
            &answer,
            StatusCode::METHOD_NOT_ALLOWED,
            "only takes the forms of the start page",
        );
    }
}

#[tokio::test]
async fn an_oversized_form_is_a_413_page() {
    let (app, sealer) = app();
    let (_, cookie) = logged_in(&sealer, "c1");
    let big = "x".repeat(super::FORM_BODY_LIMIT);
    let answer = post_form(&app, "/ui/bind", &cookie, &[("template", &big)]).await;
    assert_error_page(
        &answer,
        StatusCode::PAYLOAD_TOO_LARGE,
        "submit the page&#39;s own form",
    );
}
