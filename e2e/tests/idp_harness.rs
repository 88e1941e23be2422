//! The harness's test-only servers, on their own (no kube): the external OpenID provider with a
//! browser login and a code exchange, and the redis-server a test can pause, stop and restart.

use std::time::Duration;

use base64::Engine as _;
use kube_bind_e2e::harness::{Browser, child::free_port, idp::ExternalIdp, redis::RedisServer};
use sha2::Digest as _;
use url::Url;

const CLIENT_ID: &str = "kube-bind-test";
const CLIENT_SECRET: &str = "test-secret-that-is-long-enough";

/// Not a secret generator: unique enough values for one test's PKCE verifier, state and nonce.
fn unique(label: &str) -> String {
    let seed = format!(
        "{label}-{:?}-{}",
        std::time::SystemTime::now(),
        std::process::id()
    );
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(seed))
}

fn authorize_url(idp: &ExternalIdp, redirect_uri: &str, challenge: &str, state: &str) -> Url {
    let mut url = Url::parse(&format!("{}/auth", idp.issuer_url())).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid profile email")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256")
        .append_pair("state", state)
        .append_pair("nonce", &unique("nonce"));
    url
}

/// The claims of a JWT, unverified (the test trusts the provider it started).
fn claims(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).expect("a JWT has a payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .expect("the payload is base64url");
    serde_json::from_slice(&bytes).expect("the payload is JSON")
}

#[tokio::test]
async fn a_user_logs_in_at_the_external_idp_and_the_code_buys_an_id_token_naming_them()
-> anyhow::Result<()> {
    // Given a provider whose client redirects to a port nothing listens on
    let redirect_uri = format!("http://127.0.0.1:{}/cb", free_port()?);
    let idp = ExternalIdp::start(
        CLIENT_ID,
        CLIENT_SECRET,
        std::slice::from_ref(&redirect_uri),
    )
    .await?;
    let verifier = unique("verifier");
    let challenge =
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(&verifier));
    let state = unique("state");

    // When alice logs in through a browser, stopping before the callback
    let browser = Browser::new()?;
    let start = browser
        .get(authorize_url(&idp, &redirect_uri, &challenge, &state).as_str())
        .await?;
    let last = idp
        .log_in(&browser, start, "alice", |target| {
            target.as_str().starts_with(&redirect_uri)
        })
        .await?;

    // Then the callback carries a code and our state
    let callback = last.location.expect("log_in stops at the callback");
    let param = |name: &str| {
        callback
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(
        param("state").as_deref(),
        Some(state.as_str()),
        "{callback}"
    );
    let code = param("code").unwrap_or_else(|| panic!("no code in {callback}"));
    assert!(
        !browser.cookie_names(&idp.issuer_url()).is_empty(),
        "the provider keeps a session cookie"
    );

    // And the code, with the verifier and the client's basic auth, buys an ID token for alice
    kube_bind_e2e::install_crypto_provider();
    let response = reqwest::Client::new()
        .post(format!("{}/token", idp.issuer_url()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
        ])
        .send()
        .await?;
    let status = response.status();
    let tokens: serde_json::Value = response.json().await?;
    assert!(status.is_success(), "token endpoint: {status} {tokens}");
    let id_token = tokens["id_token"].as_str().expect("an id_token");
    let claims = claims(id_token);
    assert_eq!(claims["sub"], "alice", "{claims}");
    assert_eq!(claims["iss"], idp.issuer_url().as_str(), "{claims}");
    assert_eq!(claims["preferred_username"], "alice", "{claims}");
    assert_eq!(claims["groups"], serde_json::json!(["testers"]), "{claims}");
    Ok(())
}

#[tokio::test]
async fn redis_answers_until_paused_and_again_after_resume_and_restart() -> anyhow::Result<()> {
    let quick = Duration::from_millis(500);

    // Given a running redis-server
    let mut redis = RedisServer::start().await?;
    assert_eq!(redis.url(), format!("redis://127.0.0.1:{}/0", redis.port()));
    redis.ping(quick).await?;

    // When it is paused, PING gets no answer; once resumed, it does
    redis.pause()?;
    let paused = redis.ping(quick).await;
    assert!(paused.is_err(), "a paused redis answered PING");
    redis.resume()?;
    redis.ping(Duration::from_secs(5)).await?;

    // When it is stopped, connections are refused; started again, on the same port, it answers
    let port = redis.port();
    redis.stop().await;
    let stopped = redis
        .ping(quick)
        .await
        .expect_err("a stopped redis answered");
    assert!(
        stopped.to_string().contains("refused"),
        "expected connection refused: {stopped}"
    );
    redis.start_again().await?;
    assert_eq!(redis.port(), port);
    redis.ping(quick).await?;
    Ok(())
}
