//! Router tests: the whole code flow in-process (`oneshot`), no network.

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use http_body_util::BodyExt as _;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};
use tower::ServiceExt as _;

use super::authorize::{AuthorizationCode, PendingAuthorization};
use super::token::IdTokenClaims;
use super::*;

const ISSUER: &str = "http://127.0.0.1:8080/oidc";
const CLIENT_ID: &str = "kube-bind";
const CLIENT_SECRET: &str = "s3cret-s3cret";
/// Registered with a query of its own, which the code redirect must keep.
const CALLBACK: &str = "http://127.0.0.1:8080/api/callback?from=oidc";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

static KEY: LazyLock<SigningKey> = LazyLock::new(|| {
    SigningKey::from_pem(include_str!(
        "../crypto/testdata/test-only-rsa2048-pkcs8.pem"
    ))
    .unwrap()
});

/// Parameter changes to a request (`None` removes one), and the error they must cause.
type Cases<'a> = &'a [(&'a [(&'a str, Option<&'a str>)], &'a str)];

fn sealer() -> Sealer {
    Sealer::new(&[3u8; 32], &[4u8; 32]).unwrap()
}

fn config() -> IssuerConfig {
    IssuerConfig {
        issuer_url: format!("{ISSUER}/"),
        client_id: CLIENT_ID.into(),
        client_secret: CLIENT_SECRET.into(),
        redirect_uris: vec![CALLBACK.into(), "http://localhost:9999/cb".into()],
        key: KEY.clone(),
        sealer: sealer(),
        id_token_ttl: Duration::from_secs(300),
    }
}

fn app() -> Router {
    router(config())
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }

    fn location(&self) -> url::Url {
        let location = self.headers.get(header::LOCATION).expect("a Location");
        url::Url::parse(location.to_str().unwrap()).unwrap()
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .unwrap_or_else(|| panic!("no {name}"))
            .to_str()
            .unwrap()
    }
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get(app: &Router, uri: &str) -> Answer {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

fn form(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish()
}

async fn post_form(app: &Router, uri: &str, headers: &[(&str, &str)], body: String) -> Answer {
    let mut request =
        Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    send(app, request.body(Body::from(body)).unwrap()).await
}

/// A valid authorization request's parameters, with `changes` applied (`None` removes one).
fn authorize_uri(changes: &[(&str, Option<&str>)]) -> String {
    let mut params: Vec<(&str, &str)> = vec![
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", CALLBACK),
        ("scope", "openid profile email offline_access groups"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ];
    for (name, value) in changes {
        params.retain(|(n, _)| n != name);
        if let Some(value) = value {
            params.push((name, value));
        }
    }
    format!("/authorize?{}", form(&params))
}

/// The value of the hidden `pending` field.
fn pending_field(html: &str) -> String {
    let marker = r#"name="pending" value=""#;
    let start = html.find(marker).expect("a pending field") + marker.len();
    let end = start + html[start..].find('"').unwrap();
    html[start..end].to_string()
}

/// Shows the login page and signs in as `username`; the answer is the redirect to the client.
async fn sign_in(app: &Router, username: &str) -> Answer {
    let page = get(app, &authorize_uri(&[])).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    let pending = pending_field(&page.body);
    post_form(
        app,
        "/authorize",
        &[],
        form(&[
            ("pending", &pending),
            ("username", username),
            ("password", ""),
        ]),
    )
    .await
}

async fn code_for(app: &Router, username: &str) -> String {
    let answer = sign_in(app, username).await;
    assert_eq!(answer.status, StatusCode::FOUND, "{}", answer.body);
    query_value(&answer.location(), "code").unwrap()
}

fn query_value(url: &url::Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
}

fn basic(id: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{id}:{secret}")))
}

async fn redeem(app: &Router, code: &str, verifier: &str, secret: &str) -> Answer {
    let auth = basic(CLIENT_ID, secret);
    post_form(
        app,
        "/token",
        &[("authorization", &auth)],
        form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ]),
    )
    .await
}

fn assert_token_error(answer: &Answer, status: StatusCode, error: &str) {
    assert_eq!(answer.status, status, "{}", answer.body);
    assert_eq!(answer.json()["error"], error, "{}", answer.body);
    assert!(answer.json()["error_description"].is_string());
    assert_eq!(answer.header(header::CACHE_CONTROL), "no-store");
}

#[tokio::test]
async fn discovery_lists_every_endpoint_under_the_issuer() {
    let answer = get(&app(), "/.well-known/openid-configuration").await;
    assert_eq!(answer.status, StatusCode::OK);
    let doc = answer.json();
    assert_eq!(doc["issuer"], ISSUER);
    assert_eq!(doc["authorization_endpoint"], format!("{ISSUER}/authorize"));
    assert_eq!(doc["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(doc["userinfo_endpoint"], format!("{ISSUER}/userinfo"));
    assert_eq!(doc["jwks_uri"], format!("{ISSUER}/.well-known/jwks.json"));
    assert_eq!(doc["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        doc["subject_types_supported"],
        serde_json::json!(["public"])
    );
    assert_eq!(
        doc["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(
        doc["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        doc["token_endpoint_auth_methods_supported"],
        serde_json::json!(["client_secret_basic", "client_secret_post"])
    );
    assert_eq!(
        doc["grant_types_supported"],
        serde_json::json!(["authorization_code"])
    );
    assert!(
        doc["scopes_supported"]
            .as_array()
            .unwrap()
            .contains(&"openid".into())
    );
    assert!(
        doc["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&"preferred_username".into())
    );
}

#[tokio::test]
async fn jwks_publishes_the_signing_key_under_its_kid() {
    for path in ["/.well-known/jwks.json", "/keys"] {
        let answer = get(&app(), path).await;
        assert_eq!(answer.status, StatusCode::OK);
        let set: JwkSet = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(set.keys.len(), 1);
        let jwk = &set.keys[0];
        assert_eq!(jwk.common.key_id.as_deref(), Some(KEY.key_id()));
        assert_eq!(
            jwk.thumbprint(jsonwebtoken::jwk::ThumbprintHash::SHA256)
                .unwrap(),
            KEY.key_id()
        );
    }
}

#[tokio::test]
async fn login_page_has_one_form_one_submit_a_username_field_and_the_sealed_request() {
    let answer = get(&app(), &authorize_uri(&[])).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.header(header::CONTENT_TYPE).starts_with("text/html"));
    assert_eq!(answer.header(header::CACHE_CONTROL), "no-store");
    assert!(
        answer
            .header(header::CONTENT_SECURITY_POLICY)
            .contains("frame-ancestors 'none'")
    );
    let html = &answer.body;
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.contains(r#"<html lang="en">"#));
    assert!(html.contains("<title>"));
    assert!(html.contains("<style>"));
    assert_eq!(html.matches("<form").count(), 1);
    assert!(html.contains(r#"<form method="post" action="authorize">"#));
    assert_eq!(html.matches("<button").count(), 1);
    assert_eq!(html.matches(r#"type="submit""#).count(), 1);
    assert!(html.contains(r#"<label for="username">"#));
    assert!(html.contains(r#"name="username""#));
    assert!(html.contains("required autofocus"));
    assert!(html.contains(r#"<label for="password">"#));
    assert!(html.contains(r#"type="password""#));
    assert!(html.contains(r#"<input type="hidden" name="pending""#));
    let pending: PendingAuthorization = sealer()
        .open_json(PENDING_PURPOSE, &pending_field(html), SystemTime::now())
        .unwrap();
    assert_eq!(pending.state, "st-123");
    assert_eq!(pending.nonce, "n-456");
    assert_eq!(pending.code_challenge, CHALLENGE);
    assert_eq!(
        pending.scope, "openid profile email",
        "unknown scopes are dropped"
    );
    // The sealed field reveals nothing of the request.
    assert!(!html.contains("st-123") && !html.contains("n-456"));
    // It expires in 10 minutes.
    assert_eq!(
        sealer().open(
            PENDING_PURPOSE,
            &pending_field(html),
            SystemTime::now() + PENDING_TTL + Duration::from_secs(1)
        ),
        Err(crate::crypto::OpenError::Expired)
    );
}

#[tokio::test]
async fn login_hint_prefills_the_username() {
    let answer = get(&app(), &authorize_uri(&[("login_hint", Some("alice"))])).await;
    assert!(
        answer
            .body
            .contains(r#"name="username" type="text" value="alice""#)
    );
    let answer = get(&app(), &authorize_uri(&[("login_hint", Some("<b>"))])).await;
    assert!(!answer.body.contains("<b>"));
}

#[tokio::test]
async fn an_empty_or_bad_username_shows_the_form_again_escaped_with_a_sentence() {
    let app = app();
    let page = get(&app, &authorize_uri(&[])).await;
    let pending = pending_field(&page.body);
    let answer = post_form(
        &app,
        "/authorize",
        &[],
        form(&[("pending", &pending), ("username", "  ")]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(answer.body.contains("Enter a username to sign in."));
    assert!(answer.body.contains(r#"role="alert""#));
    assert_eq!(answer.body.matches("<form").count(), 1);
    assert_eq!(pending_field(&answer.body), pending);
    assert!(answer.headers.get(header::LOCATION).is_none());

    let evil = r#"<script>alert("x")</script>"#;
    let answer = post_form(
        &app,
        "/authorize",
        &[],
        form(&[("pending", &pending), ("username", evil)]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert!(!answer.body.contains("<script>"));
    assert!(
        answer
            .body
            .contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;")
    );
    assert!(answer.body.contains("letters, digits"));
}

#[tokio::test]
async fn unknown_client_or_unregistered_redirect_uri_is_a_page_never_a_redirect() {
    let cases = [
        authorize_uri(&[("client_id", Some("other"))]),
        authorize_uri(&[("client_id", None)]),
        authorize_uri(&[("redirect_uri", Some("https://evil.example/<script>cb"))]),
        authorize_uri(&[("redirect_uri", None)]),
        // A registered URI with something appended is not the registered URI.
        authorize_uri(&[("redirect_uri", Some(&format!("{CALLBACK}&x=1")))]),
        format!("{}&client_id=kube-bind", authorize_uri(&[])),
    ];
    for uri in cases {
        let answer = get(&app(), &uri).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(answer.headers.get(header::LOCATION).is_none(), "{uri}");
        assert!(answer.header(header::CONTENT_TYPE).starts_with("text/html"));
        assert!(!answer.body.contains("<form"), "{uri}");
        assert!(!answer.body.contains("<script>"), "{uri}");
    }
    let answer = get(
        &app(),
        &authorize_uri(&[("redirect_uri", Some("https://evil.example/<script>cb"))]),
    )
    .await;
    assert!(
        answer
            .body
            .contains("https://evil.example/&lt;script&gt;cb")
    );
}

#[tokio::test]
async fn other_request_errors_go_back_to_the_client_with_error_and_state() {
    let cases: Cases = &[
        (
            &[("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (&[("response_type", None)], "invalid_request"),
        (&[("scope", Some("profile email"))], "invalid_scope"),
        (&[("nonce", None)], "invalid_request"),
        (&[("code_challenge", None)], "invalid_request"),
        (
            &[("code_challenge_method", Some("plain"))],
            "invalid_request",
        ),
        (&[("code_challenge_method", None)], "invalid_request"),
        (&[("code_challenge", Some("too-short"))], "invalid_request"),
        (&[("prompt", Some("none"))], "login_required"),
        (&[("request", Some("eyJ"))], "request_not_supported"),
    ];
    for (changes, error) in cases {
        let answer = get(&app(), &authorize_uri(changes)).await;
        assert_eq!(
            answer.status,
            StatusCode::FOUND,
            "{changes:?}: {}",
            answer.body
        );
        let location = answer.location();
        assert!(
            location
                .as_str()
                .starts_with("http://127.0.0.1:8080/api/callback?from=oidc&")
        );
        assert_eq!(
            query_value(&location, "error").as_deref(),
            Some(*error),
            "{changes:?}"
        );
        assert!(query_value(&location, "error_description").is_some());
        assert_eq!(query_value(&location, "state").as_deref(), Some("st-123"));
        assert!(query_value(&location, "code").is_none());
    }
    // Without a state there is none to echo.
    let answer = get(&app(), &authorize_uri(&[("state", None)])).await;
    let location = answer.location();
    assert_eq!(
        query_value(&location, "error").as_deref(),
        Some("invalid_request")
    );
    assert_eq!(query_value(&location, "state"), None);
    // A repeated parameter is refused.
    let answer = get(&app(), &format!("{}&nonce=again", authorize_uri(&[]))).await;
    assert_eq!(
        query_value(&answer.location(), "error").as_deref(),
        Some("invalid_request")
    );
}

#[tokio::test]
async fn the_whole_code_flow_gives_an_id_token_that_verifies_with_the_jwks_key() {
    let app = app();
    let answer = sign_in(&app, "alice").await;
    assert_eq!(answer.status, StatusCode::FOUND, "{}", answer.body);
    let location = answer.location();
    assert_eq!(location.path(), "/api/callback");
    assert_eq!(query_value(&location, "from").as_deref(), Some("oidc"));
    assert_eq!(query_value(&location, "state").as_deref(), Some("st-123"));
    let code = query_value(&location, "code").unwrap();

    let answer = redeem(&app, &code, VERIFIER, CLIENT_SECRET).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(answer.header(header::CACHE_CONTROL), "no-store");
    let tokens = answer.json();
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 300);
    assert_eq!(tokens["scope"], "openid profile email");
    let access_token = tokens["access_token"].as_str().unwrap();
    let id_token = tokens["id_token"].as_str().unwrap();

    let jwks: JwkSet =
        serde_json::from_str(&get(&app, "/.well-known/jwks.json").await.body).unwrap();
    let header = jsonwebtoken::decode_header(id_token).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("kid in the JWKS");
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[CLIENT_ID]);
    validation.set_issuer(&[ISSUER]);
    validation.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<IdTokenClaims>(
        id_token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .unwrap()
    .claims;
    assert_eq!(claims.sub, "alice");
    assert_eq!(claims.preferred_username, "alice");
    assert_eq!(claims.nonce, "n-456");
    assert_eq!(claims.email.as_deref(), Some("alice@kube-bind.local"));
    assert_eq!(claims.email_verified, Some(false));
    assert_eq!(claims.exp - claims.iat, 300);
    assert!(claims.auth_time <= claims.iat);
    let digest = Sha256::digest(access_token.as_bytes());
    assert_eq!(claims.at_hash, URL_SAFE_NO_PAD.encode(&digest[..16]));

    let info = send(
        &app,
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {access_token}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(info.status, StatusCode::OK, "{}", info.body);
    assert_eq!(info.json()["sub"], "alice");
    assert_eq!(info.json()["preferred_username"], "alice");
    assert_eq!(info.json()["email"], "alice@kube-bind.local");
}

#[tokio::test]
async fn client_secret_post_authenticates_too() {
    let app = app();
    let code = code_for(&app, "bob").await;
    let answer = post_form(
        &app,
        "/token",
        &[],
        form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ]),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

#[tokio::test]
async fn a_pkce_mismatch_is_invalid_grant() {
    let app = app();
    let code = code_for(&app, "alice").await;
    let other = "x".repeat(43);
    assert_token_error(
        &redeem(&app, &code, &other, CLIENT_SECRET).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
}

#[tokio::test]
async fn a_wrong_or_missing_client_secret_is_401_invalid_client() {
    let app = app();
    let code = code_for(&app, "alice").await;
    let answer = redeem(&app, &code, VERIFIER, "wrong").await;
    assert_token_error(&answer, StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(
        answer
            .header(header::WWW_AUTHENTICATE)
            .starts_with("Basic realm=")
    );

    let answer = post_form(
        &app,
        "/token",
        &[],
        form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", VERIFIER),
        ]),
    )
    .await;
    assert_token_error(&answer, StatusCode::UNAUTHORIZED, "invalid_client");
    assert!(answer.headers.contains_key(header::WWW_AUTHENTICATE));
}

#[tokio::test]
async fn a_tampered_code_is_invalid_grant() {
    let app = app();
    let code = code_for(&app, "alice").await;
    let mut bytes = URL_SAFE_NO_PAD.decode(&code).unwrap();
    bytes[20] ^= 1;
    let tampered = URL_SAFE_NO_PAD.encode(&bytes);
    assert_token_error(
        &redeem(&app, &tampered, VERIFIER, CLIENT_SECRET).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    // A sealed pending request is no code either.
    let page = get(&app, &authorize_uri(&[])).await;
    assert_token_error(
        &redeem(&app, &pending_field(&page.body), VERIFIER, CLIENT_SECRET).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
}

#[tokio::test]
async fn an_expired_code_is_invalid_grant() {
    let code = AuthorizationCode {
        client_id: CLIENT_ID.into(),
        redirect_uri: CALLBACK.into(),
        sub: "alice".into(),
        nonce: "n".into(),
        code_challenge: CHALLENGE.into(),
        scope: "openid".into(),
        auth_time: 0,
    };
    let expired = sealer()
        .seal_json(
            CODE_PURPOSE,
            &code,
            SystemTime::now() - Duration::from_secs(1),
        )
        .unwrap();
    let answer = redeem(&app(), &expired, VERIFIER, CLIENT_SECRET).await;
    assert_token_error(&answer, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(
        answer.json()["error_description"]
            .as_str()
            .unwrap()
            .contains("expired")
    );
    // The same code, still fresh, works: it was only its age.
    let fresh = sealer()
        .seal_json(CODE_PURPOSE, &code, SystemTime::now() + CODE_TTL)
        .unwrap();
    assert_eq!(
        redeem(&app(), &fresh, VERIFIER, CLIENT_SECRET).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn another_redirect_uri_or_grant_type_or_a_missing_parameter_is_refused() {
    let app = app();
    let code = code_for(&app, "alice").await;
    let auth = basic(CLIENT_ID, CLIENT_SECRET);
    let token = |pairs: Vec<(&'static str, String)>| {
        let app = app.clone();
        let auth = auth.clone();
        async move {
            let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            post_form(&app, "/token", &[("authorization", &auth)], form(&pairs)).await
        }
    };
    let full = |changes: &[(&'static str, Option<&str>)]| {
        let mut pairs: Vec<(&'static str, String)> = vec![
            ("grant_type", "authorization_code".into()),
            ("code", code.clone()),
            ("redirect_uri", CALLBACK.into()),
            ("code_verifier", VERIFIER.into()),
        ];
        for (name, value) in changes {
            pairs.retain(|(n, _)| n != name);
            if let Some(value) = value {
                pairs.push((name, value.to_string()));
            }
        }
        pairs
    };
    let cases: Cases = &[
        (
            &[("redirect_uri", Some("http://localhost:9999/cb"))],
            "invalid_grant",
        ),
        (
            &[("grant_type", Some("refresh_token"))],
            "unsupported_grant_type",
        ),
        (&[("grant_type", None)], "invalid_request"),
        (&[("code", None)], "invalid_request"),
        (&[("redirect_uri", None)], "invalid_request"),
        (&[("code_verifier", None)], "invalid_request"),
    ];
    for (changes, error) in cases {
        let answer = token(full(changes)).await;
        assert_token_error(&answer, StatusCode::BAD_REQUEST, error);
    }
    // The untouched request still succeeds.
    assert_eq!(token(full(&[])).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_bad_sealed_field_is_a_400_page() {
    let app = app();
    let expired = sealer().seal_json(
        PENDING_PURPOSE,
        &PendingAuthorization {
            client_id: CLIENT_ID.into(),
            redirect_uri: CALLBACK.into(),
            scope: "openid".into(),
            state: "s".into(),
            nonce: "n".into(),
            code_challenge: CHALLENGE.into(),
        },
        SystemTime::now() - Duration::from_secs(1),
    );
    let expired = expired.unwrap();
    let other_keys =
        Sealer::generate().seal(PENDING_PURPOSE, b"{}", SystemTime::now() + PENDING_TTL);
    let cases = [
        (
            form(&[("pending", "garbage"), ("username", "alice")]),
            "altered",
        ),
        (
            form(&[("pending", &other_keys), ("username", "alice")]),
            "altered",
        ),
        (
            form(&[("pending", &expired), ("username", "alice")]),
            "expired",
        ),
        (form(&[("username", "alice")]), "incomplete"),
    ];
    for (body, says) in cases {
        let answer = post_form(&app, "/authorize", &[], body).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert!(answer.headers.get(header::LOCATION).is_none());
        assert!(answer.body.contains(says), "{says}: {}", answer.body);
        assert!(!answer.body.contains("<form"));
    }
}

#[tokio::test]
async fn oversized_or_non_form_bodies_are_refused() {
    let app = app();
    let huge = format!("pending={}", "a".repeat(MAX_REQUEST_BYTES + 1));
    let answer = post_form(&app, "/authorize", &[], huge.clone()).await;
    assert_eq!(answer.status, StatusCode::PAYLOAD_TOO_LARGE);
    let answer = post_form(&app, "/token", &[], huge).await;
    assert_token_error(&answer, StatusCode::BAD_REQUEST, "invalid_request");
    let answer = send(
        &app,
        Request::post("/token")
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap(),
    )
    .await;
    assert_token_error(&answer, StatusCode::BAD_REQUEST, "invalid_request");
}

#[tokio::test]
async fn userinfo_refuses_missing_and_bad_tokens_with_a_challenge() {
    let app = app();
    let missing = get(&app, "/userinfo").await;
    assert_eq!(missing.status, StatusCode::UNAUTHORIZED);
    assert!(
        missing
            .header(header::WWW_AUTHENTICATE)
            .starts_with("Bearer realm=")
    );

    let bad = send(
        &app,
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, "Bearer not-a-token")
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert!(
        bad.header(header::WWW_AUTHENTICATE)
            .contains(r#"error="invalid_token""#)
    );

    // An authorization code is not an access token.
    let code = code_for(&app, "alice").await;
    let confused = send(
        &app,
        Request::get("/userinfo")
            .header(header::AUTHORIZATION, format!("Bearer {code}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(confused.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn replicas_with_the_same_keys_finish_each_others_logins() {
    let (first, second) = (app(), app());
    let page = get(&first, &authorize_uri(&[])).await;
    let answer = post_form(
        &second,
        "/authorize",
        &[],
        form(&[
            ("pending", &pending_field(&page.body)),
            ("username", "carol"),
        ]),
    )
    .await;
    let code = query_value(&answer.location(), "code").unwrap();
    let answer = redeem(&first, &code, VERIFIER, CLIENT_SECRET).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
}

/// Documents the stateless trade-off (see the module docs): a code redeems more than once within
/// its 60 seconds, always needing the client secret and the PKCE verifier.
#[tokio::test]
async fn a_code_can_be_redeemed_again_within_its_life() {
    let app = app();
    let code = code_for(&app, "alice").await;
    assert_eq!(
        redeem(&app, &code, VERIFIER, CLIENT_SECRET).await.status,
        StatusCode::OK
    );
    assert_eq!(
        redeem(&app, &code, VERIFIER, CLIENT_SECRET).await.status,
        StatusCode::OK
    );
}

#[test]
fn config_debug_hides_the_client_secret() {
    let debug = format!("{:?}", config());
    assert!(!debug.contains(CLIENT_SECRET));
    assert!(debug.contains(CLIENT_ID));
}

#[test]
fn granted_scopes_keep_known_ones_once_in_order() {
    assert_eq!(
        granted_scopes("email openid groups openid profile"),
        vec!["email", "openid", "profile"]
    );
}
