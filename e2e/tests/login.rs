//! Login, sessions and bind against the real backend on a real apiserver (kubernetes provider),
//! with the embedded issuer, Redis and an external certified IdP (npm oidc-provider), driven the
//! way upstream's CLI and UI drive them.

mod controller_support;
mod login_support;

use base64::Engine as _;
use controller_support::given_a_provider_cluster;
use kube::Api;
use kube::api::ListParams;
use kube_bind_e2e::harness::idp::ExternalIdp;
use kube_bind_e2e::harness::kubectl::kubectl;
use kube_bind_e2e::harness::redis::RedisServer;
use kube_bind_e2e::harness::{Browser, paths};
use login_support::*;
use serde_json::{Value, json};

#[tokio::test]
async fn a_cli_login_binds_and_its_kubeconfig_creates_the_request() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    given_a_template(plain, "widgets", "example.com", "widgets", "v1").await?;
    let backend = start_backend(plain, &[]).await?;
    let browser = Browser::new()?;
    let user = env.unique("alice");
    let token = cli_login(&browser, &backend.url(), &user).await?;

    let ping = get_with_token(&browser, &format!("{}/api/ping", backend.url()), &token).await?;
    assert_eq!((ping.status, ping.body.as_str()), (200, "pong"));
    let templates = get_with_token(
        &browser,
        &format!("{}/api/templates", backend.url()),
        &token,
    )
    .await?;
    assert_eq!(templates.status, 200, "{}", templates.body);
    let list: Value = serde_json::from_str(&templates.body)?;
    assert!(
        list["items"]
            .as_array()
            .is_some_and(|items| items.iter().any(|t| t["metadata"]["name"] == "widgets")),
        "{list}"
    );
    let collections = get_with_token(
        &browser,
        &format!("{}/api/collections", backend.url()),
        &token,
    )
    .await?;
    assert_eq!(collections.status, 200, "{}", collections.body);

    let bind = |name: &'static str| {
        let browser = browser.clone();
        let url = format!("{}/api/bind", backend.url());
        let token = token.clone();
        async move {
            browser
                .post_json(
                    &url,
                    &json!({"metadata": {"name": name}, "templateRef": {"name": "widgets"}}),
                    &[("authorization", &format!("Bearer {token}"))],
                )
                .await
        }
    };
    let first = bind("widgets").await?;
    assert_eq!(first.status, 200, "{}", first.body);
    let response: Value = serde_json::from_str(&first.body)?;
    assert_eq!(response["kind"], "BindingResponse");
    assert_eq!(
        response["authentication"]["oauth2CodeGrant"]["sid"],
        "cli-session"
    );
    let request = &response["requests"][0];
    assert_eq!(request["apiVersion"], "kube-bind.io/v1alpha2");
    assert_eq!(request["kind"], "APIServiceExportRequest");
    assert_eq!(request["metadata"]["name"], "widgets");
    assert_eq!(request["spec"]["resources"][0]["resource"], "widgets");
    assert_eq!(
        request["spec"]["permissionClaims"][0]["resource"],
        "configmaps"
    );

    // The namespace is the user's, found by upstream's identity annotation.
    let namespaces = Api::<k8s_openapi::api::core::v1::Namespace>::all(plain.client().await?)
        .list(&ListParams::default())
        .await?;
    let mine: Vec<_> = namespaces
        .items
        .iter()
        .filter(|ns| {
            ns.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("backend.kube-bind.io/identity"))
                == Some(&format!("{user}#"))
        })
        .collect();
    assert_eq!(mine.len(), 1, "one namespace per identity");
    let namespace = mine[0].metadata.name.clone().unwrap_or_default();

    // A second bind reuses it and hands out the same kubeconfig.
    let second: Value = serde_json::from_str(&bind("widgets").await?.body)?;
    assert_eq!(second["kubeconfig"], response["kubeconfig"]);

    // The consumer creates the request with the kubeconfig, as upstream's CLI does; the
    // kubeconfig opens nothing else.
    let path = consumer_creates_the_request(&user, &response, Some(&namespace))?;
    let logs = paths::log_dir();
    let cannot = kubectl(
        &path,
        &["auth", "can-i", "get", "secrets", "-n", "kube-system"],
        &logs,
    )?;
    assert_eq!(cannot.stdout.trim(), "no", "{}", cannot.stderr);

    backend.stop().await
}

#[tokio::test]
async fn cookie_sessions_and_bearer_tokens_survive_a_restart() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    let mut flags = fixed_keys();
    flags.push("--session-store=cookie".to_owned());
    let backend = start_backend(plain, &flags).await?;
    let port = backend.port();
    let browser = Browser::new()?;
    let token = cli_login(&browser, &backend.url(), &env.unique("carol")).await?;

    // The UI's login ends with the session cookie and a hop to the UI page.
    let ui_start = browser
        .get(&format!(
            "{}/api/authorize?redirect_url=/&session_id=ui-1&client_type=ui&client_side_redirect_url={}",
            backend.url(),
            urlencode(CLI_CALLBACK)
        ))
        .await?;
    let back_home = |u: &url::Url| u.path() == "/" && u.port() == Some(port);
    let end = embedded_issuer_login(&browser, ui_start, &env.unique("dave"), back_home).await?;
    let home = end
        .location
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no hop home: {}", end.body))?;
    let query: std::collections::HashMap<_, _> = home.query_pairs().into_owned().collect();
    assert_eq!(query.get("session_id").map(String::as_str), Some("ui-1"));
    assert_eq!(
        query.get("redirect_url").map(String::as_str),
        Some(CLI_CALLBACK)
    );
    assert!(
        browser
            .cookie_names(&backend.url())
            .contains(&"kube-bind".to_owned())
    );
    let ping = browser.get(&format!("{}/api/ping", backend.url())).await?;
    assert_eq!(ping.status, 200, "the cookie logs the UI in: {}", ping.body);

    // Same keys, same port: both credentials still work after a restart.
    let backend = restart_backend(backend, plain, &flags).await?;
    let ping = browser.get(&format!("{}/api/ping", backend.url())).await?;
    assert_eq!(ping.status, 200, "cookie after restart: {}", ping.body);
    let ping = get_with_token(&browser, &format!("{}/api/ping", backend.url()), &token).await?;
    assert_eq!(ping.status, 200, "token after restart: {}", ping.body);

    // Logout clears the cookie; under the cookie store the token lives until its exp.
    let out = browser
        .post_json(&format!("{}/api/logout", backend.url()), &json!({}), &[])
        .await?;
    assert_eq!((out.status, out.body.as_str()), (200, "logged out"));
    let ping = browser.get(&format!("{}/api/ping", backend.url())).await?;
    assert_eq!(
        (ping.status, error_code(&ping).as_str()),
        (401, "AUTHENTICATION_FAILED")
    );
    backend.stop().await
}

#[tokio::test]
async fn redis_sessions_survive_a_restart_and_redis_down_is_a_503_that_recovers()
-> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    let mut redis = RedisServer::start().await?;
    let mut flags = fixed_keys();
    flags.extend([
        "--session-store=redis".to_owned(),
        format!("--redis-url={}", redis.url()),
    ]);
    let backend = start_backend(plain, &flags).await?;
    let browser = Browser::new()?;
    let token = cli_login(&browser, &backend.url(), &env.unique("erin")).await?;
    let ping_url = format!("{}/api/ping", backend.url());
    assert_eq!(
        get_with_token(&browser, &ping_url, &token).await?.status,
        200
    );

    let backend = restart_backend(backend, plain, &flags).await?;
    assert_eq!(
        get_with_token(&browser, &ping_url, &token).await?.status,
        200,
        "after restart"
    );

    redis.pause()?;
    let down = get_with_token(&browser, &ping_url, &token).await?;
    assert_eq!(down.status, 503, "{}", down.body);
    assert_eq!(error_code(&down), "INTERNAL_ERROR");
    assert!(down.body.contains("Redis"), "{}", down.body);
    let healthz = browser
        .get(&format!("{}/api/healthz", backend.url()))
        .await?;
    assert_eq!(healthz.status, 200, "still serving");
    redis.resume()?;
    assert_eq!(
        get_with_token(&browser, &ping_url, &token).await?.status,
        200,
        "recovered"
    );

    // Logout ends the stored session: the token stops working at once.
    let out = browser
        .post_json(
            &format!("{}/api/logout", backend.url()),
            &json!({}),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await?;
    assert_eq!(out.status, 200);
    let after = get_with_token(&browser, &ping_url, &token).await?;
    assert_eq!(after.status, 401, "{}", after.body);
    backend.stop().await?;
    redis.stop().await;
    Ok(())
}

#[tokio::test]
async fn an_external_certified_idp_logs_the_cli_in() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    // The callback must be registered at the IdP before the backend's port is known: pick it.
    let port = free_port()?;
    let callback = format!("http://127.0.0.1:{port}/api/callback");
    let idp = ExternalIdp::start(
        "kube-bind",
        "external-secret",
        std::slice::from_ref(&callback),
    )
    .await?;
    let backend = start_backend(
        plain,
        &[
            "--oidc-type=external".to_owned(),
            format!("--oidc-issuer-url={}", idp.issuer_url()),
            "--oidc-issuer-client-id=kube-bind".to_owned(),
            "--oidc-issuer-client-secret=external-secret".to_owned(),
            format!("--oidc-callback-url={callback}"),
            format!("--listen-address=127.0.0.1:{port}"),
        ],
    )
    .await?;
    let browser = Browser::new()?;
    let start = start_cli_login(&browser, &backend.url()).await?;
    let user = env.unique("frank");
    let end = idp
        .log_in(&browser, start, &user, |u| u.path() == "/api/callback")
        .await?;
    let callback_url = end
        .location
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no callback"))?;
    let done = browser.get(callback_url.as_str()).await?;
    let token = token_of(&done)?;
    let ping = get_with_token(&browser, &format!("{}/api/ping", backend.url()), &token).await?;
    assert_eq!(ping.status, 200, "{}", ping.body);
    backend.stop().await?;
    idp.stop().await;
    Ok(())
}

#[tokio::test]
async fn bad_inputs_get_their_documented_status_and_the_server_keeps_serving() -> anyhow::Result<()>
{
    let (env, plain) = given_a_provider_cluster().await?;
    given_a_template(plain, "widgets", "example.com", "widgets", "v1").await?;
    let backend = start_backend(plain, &[]).await?;
    let url = |path: &str| format!("{}{path}", backend.url());
    let browser = Browser::new()?;

    // A foreign redirect target is refused before anything else.
    let foreign = browser
        .get(&url(
            "/api/authorize?redirect_url=https://evil.example/cb&session_id=s&client_type=cli",
        ))
        .await?;
    assert_eq!(
        (foreign.status, error_code(&foreign).as_str()),
        (400, "BAD_REQUEST")
    );
    assert!(foreign.location.is_none());
    let missing = browser.get(&url("/api/authorize?session_id=s")).await?;
    assert_eq!(missing.status, 400);
    let bad_json = browser
        .post_json(&url("/api/authorize"), &json!("not an object"), &[])
        .await?;
    assert_eq!(
        (bad_json.status, error_code(&bad_json).as_str()),
        (400, "BAD_REQUEST")
    );

    // A forged state, a callback without a login, and a replayed callback.
    let forged = browser
        .get(&url(&format!(
            "/api/callback?code=x&state={}",
            "A".repeat(43)
        )))
        .await?;
    assert_eq!(
        (forged.status, error_code(&forged).as_str()),
        (400, "BAD_REQUEST")
    );
    let no_code = browser.get(&url("/api/callback")).await?;
    assert_eq!(no_code.status, 400);
    let start = start_cli_login(&browser, &backend.url()).await?;
    let end = embedded_issuer_login(&browser, start, &env.unique("mallory"), |u| {
        u.path() == "/api/callback"
    })
    .await?;
    let callback = end
        .location
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no callback"))?;
    let first = browser.get(callback.as_str()).await?;
    let token = token_of(&first)?;
    let replay = browser.get(callback.as_str()).await?;
    assert_eq!(
        (replay.status, error_code(&replay).as_str()),
        (400, "BAD_REQUEST")
    );

    // Tokens: tampered, alg none, HS256 with a guessable key.
    let ping = url("/api/ping");
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let payload = token.split('.').nth(1).unwrap_or_default().to_owned();
    let none = format!("{}.{payload}.", b64(&json!({"alg": "none", "typ": "JWT"})));
    for bad in [tampered.as_str(), none.as_str(), "garbage"] {
        let page = get_with_token(&browser, &ping, bad).await?;
        assert_eq!(
            (page.status, error_code(&page).as_str()),
            (401, "AUTHENTICATION_FAILED"),
            "{bad}"
        );
    }
    let no_login = browser.get(&ping).await?;
    assert_eq!(no_login.status, 401);
    let tampered_cookie = browser
        .get_with(&ping, &[("cookie", "kube-bind=AAAAtampered")])
        .await?;
    assert_eq!(tampered_cookie.status, 401);

    // Bind bodies: too large, malformed, invalid, unknown template.
    let auth = format!("Bearer {token}");
    let headers = [("authorization", auth.as_str())];
    let huge = json!({"metadata": {"name": "x"}, "templateRef": {"name": "x".repeat(2 << 20)}});
    let too_large = browser
        .post_json(&url("/api/bind"), &huge, &headers)
        .await?;
    assert_eq!(
        (too_large.status, error_code(&too_large).as_str()),
        (413, "BAD_REQUEST")
    );
    let malformed = browser
        .post_json(&url("/api/bind"), &json!([1, 2]), &headers)
        .await?;
    assert_eq!(
        (malformed.status, error_code(&malformed).as_str()),
        (400, "BAD_REQUEST")
    );
    let invalid = browser
        .post_json(
            &url("/api/bind"),
            &json!({"metadata": {"name": "Not_A_Name"}, "templateRef": {"name": "widgets"}}),
            &headers,
        )
        .await?;
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    let unknown = browser
        .post_json(
            &url("/api/bind"),
            &json!({"metadata": {"name": "x"}, "templateRef": {"name": "no-such-template"}}),
            &headers,
        )
        .await?;
    assert_eq!(
        (unknown.status, error_code(&unknown).as_str()),
        (404, "RESOURCE_NOT_FOUND")
    );

    // An unknown cluster, an unknown route, a wrong method.
    let other = get_with_token(&browser, &url("/api/ping?cluster_id=nope"), &token).await?;
    assert_eq!(
        (other.status, error_code(&other).as_str()),
        (404, "RESOURCE_NOT_FOUND")
    );
    let route = browser.get(&url("/api/nothing-here")).await?;
    assert_eq!(route.status, 404);
    let method = browser.get(&url("/api/bind")).await?;
    assert_eq!(method.status, 405);
    error_code(&method);

    let healthz = browser.get(&url("/api/healthz")).await?;
    assert_eq!(healthz.status, 200);
    let metrics = browser.get(&url("/metrics")).await?;
    assert!(
        metrics
            .body
            .contains("kube_bind_logins_total{result=\"success\"}"),
        "{}",
        metrics.body
    );
    assert!(
        metrics
            .body
            .contains("kube_bind_http_requests_total{route=\"/api/bind\""),
        "{}",
        metrics.body
    );
    backend.stop().await
}

#[tokio::test]
async fn login_routes_are_rate_limited_per_client() -> anyhow::Result<()> {
    let (_, plain) = given_a_provider_cluster().await?;
    let backend = start_backend(
        plain,
        &[
            "--auth-rate-limit=1".to_owned(),
            "--auth-rate-burst=3".to_owned(),
        ],
    )
    .await?;
    let browser = Browser::new()?;
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(
            browser
                .get(&format!("{}/api/authorize?session_id=s", backend.url()))
                .await?,
        );
    }
    let limited: Vec<_> = statuses.iter().filter(|p| p.status == 429).collect();
    assert!(
        !limited.is_empty(),
        "{:?}",
        statuses.iter().map(|p| p.status).collect::<Vec<_>>()
    );
    assert_eq!(error_code(limited[0]), "BAD_REQUEST");
    assert_eq!(
        limited[0]
            .headers
            .get("retry-after")
            .and_then(|v| v.to_str().ok()),
        Some("1")
    );
    // Other routes are not limited.
    assert_eq!(
        browser
            .get(&format!("{}/api/healthz", backend.url()))
            .await?
            .status,
        200
    );
    backend.stop().await
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}
