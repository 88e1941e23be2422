//! The web UI in a real browser (headless Chromium) against the real backend on a real
//! apiserver (kubernetes provider): a person logs in, picks a template and reads the result; the
//! CLI's `kubectl bind <url>` gets its `binding_response` on its loopback callback; a foreign
//! `redirect_url` is refused; the same `kubectl bind` through two replicas behind haproxy, with
//! cookie and with Redis sessions. Every page the browser shows is kept as a screenshot in
//! `target/e2e-artifacts/<test>/`.

mod controller_support;
mod login_support;
mod ui_browser_support;

use controller_support::given_a_provider_cluster;
use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use kube_bind_e2e::harness::child::free_port;
use kube_bind_e2e::harness::haproxy::Haproxy;
use kube_bind_e2e::harness::redis::RedisServer;
use kube_bind_e2e::harness::{Workspace, apply, chromium::Chromium, cli_callback::CliCallback};
use login_support::*;
use serde_json::json;
use ui_browser_support::*;

/// A collection listing `templates`.
async fn given_a_collection(
    plain: &Workspace,
    name: &str,
    templates: &[&str],
) -> anyhow::Result<()> {
    let refs: Vec<_> = templates.iter().map(|t| json!({"name": t})).collect();
    apply::apply(
        &plain.client().await?,
        &json!({
            "apiVersion": "kube-bind.io/v1alpha2",
            "kind": "Collection",
            "metadata": {"name": name},
            "spec": {"description": "tools for tests", "templates": refs},
        }),
    )
    .await?;
    Ok(())
}

#[tokio::test]
async fn a_person_logs_in_binds_a_template_and_reads_the_result() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    given_a_template(plain, "sprockets", "example.com", "sprockets", "v1").await?;
    given_a_collection(plain, "workshop", &["sprockets"]).await?;
    let backend = start_backend(plain, &[]).await?;
    let chromium =
        Chromium::start("a_person_logs_in_binds_a_template_and_reads_the_result").await?;
    let user = env.unique("ui-person");

    println!("step: open the UI by hand, no CLI");
    chromium.goto(ui_url(&backend.url(), &[])?.as_str()).await?;
    log_in_from_the_login_page(&chromium, &user).await?;
    chromium
        .find("main#catalogue section.collection#collection-workshop")
        .await?;
    bind_from_the_catalogue(&chromium, "sprockets").await?;

    let result = the_result_page(&chromium).await?;
    assert_requests(&result.request, "sprockets");
    assert_a_kubeconfig(&result.kubeconfig)?;
    assert!(
        !result.secret.is_empty(),
        "code#kubeconfig-secret names a Secret"
    );
    // The namespace is this person's (upstream's identity annotation), the Secret is in it.
    let namespace = Api::<Namespace>::all(plain.client().await?)
        .get(&result.namespace)
        .await?;
    assert_eq!(
        namespace
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("backend.kube-bind.io/identity")),
        Some(&format!("{user}#")),
        "code#kubeconfig-secret's namespace is the user's"
    );
    assert_the_secret_holds_the_kubeconfig(plain.client().await?, &result).await?;

    println!("step: log out from the catalogue");
    chromium.goto(ui_url(&backend.url(), &[])?.as_str()).await?;
    chromium
        .wait_for("main#catalogue", Chromium::PATIENCE)
        .await;
    chromium.click("form#logout button[type=submit]").await?;
    chromium
        .wait_for("main#login-page", Chromium::PATIENCE)
        .await;
    chromium.screenshot("logged-out").await?;

    chromium.close().await;
    backend.stop().await
}

#[tokio::test]
async fn kubectl_bind_through_the_ui_hands_the_binding_to_the_cli_callback() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    given_a_template(plain, "gadgets", "example.com", "gadgets", "v1").await?;
    let backend = start_backend(plain, &[]).await?;
    kubectl_bind_through_the_ui(
        &backend.url(),
        "kubectl_bind_through_the_ui_hands_the_binding_to_the_cli_callback",
        &env.unique("ui-cli"),
        "gadgets",
    )
    .await?;
    backend.stop().await
}

/// Two replicas behind haproxy (round-robin, no affinity) with `store` sessions: the browser's
/// hops (page, authorize, issuer form, callback, catalogue, bind) alternate between them, and
/// `kubectl bind <front>` still gets its binding.
async fn kubectl_bind_through_two_replicas(store: &[String], test: &str) -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    given_a_template(plain, "gizmos", "example.com", "gizmos", "v1").await?;
    let front_port = free_port()?;
    let front = format!("http://127.0.0.1:{front_port}");
    let mut flags = fixed_keys();
    flags.extend([
        format!("--oidc-issuer-url={front}/oidc"),
        format!("--oidc-callback-url={front}/api/callback"),
        "--trusted-proxies=127.0.0.1".to_owned(),
    ]);
    flags.extend(store.iter().cloned());
    let one = start_backend(plain, &flags).await?;
    let two = start_backend(plain, &flags).await?;
    let haproxy = Haproxy::start_on(front_port, &[one.port(), two.port()]).await?;
    kubectl_bind_through_the_ui(&haproxy.url(), test, &env.unique("ui-replicas"), "gizmos").await?;
    one.stop().await?;
    two.stop().await
}

#[tokio::test]
async fn kubectl_bind_through_two_replicas_with_cookie_sessions() -> anyhow::Result<()> {
    kubectl_bind_through_two_replicas(
        &["--session-store=cookie".to_owned()],
        "kubectl_bind_through_two_replicas_with_cookie_sessions",
    )
    .await
}

#[tokio::test]
async fn kubectl_bind_through_two_replicas_with_redis_sessions() -> anyhow::Result<()> {
    let redis = RedisServer::start().await?;
    kubectl_bind_through_two_replicas(
        &[
            "--session-store=redis".to_owned(),
            format!("--redis-url={}", redis.url()),
        ],
        "kubectl_bind_through_two_replicas_with_redis_sessions",
    )
    .await
}

/// `kubectl bind <backend>` through the UI: the page opened with the CLI's callback, the login,
/// the catalogue, the bind; the callback gets `session_id` and `binding_response`, and the
/// consumer creates the request with the kubeconfig it holds.
async fn kubectl_bind_through_the_ui(
    backend: &str,
    test: &str,
    user: &str,
    template: &str,
) -> anyhow::Result<()> {
    let mut callback = CliCallback::start().await?;
    let chromium = Chromium::start(test).await?;

    println!("step: the page kubectl bind opens, with its callback");
    let opened = ui_url(
        backend,
        &[
            ("session_id", "ui-cli-session"),
            ("redirect_url", callback.url()),
        ],
    )?;
    chromium.goto(opened.as_str()).await?;
    let catalogue = log_in_from_the_login_page(&chromium, user).await?;
    let query = query_of(&catalogue);
    assert_eq!(
        (
            query.get("session_id").map(String::as_str),
            query.get("redirect_url").map(String::as_str)
        ),
        (Some("ui-cli-session"), Some(callback.url())),
        "the login comes back with the CLI's parameters: {catalogue}"
    );
    bind_from_the_catalogue(&chromium, template).await?;

    println!("step: the CLI's callback gets the binding");
    let handed = callback.next(Chromium::PATIENCE).await?;
    chromium
        .wait_for("main#cli-callback", Chromium::PATIENCE)
        .await;
    chromium.screenshot("cli-callback").await?;
    assert_eq!(
        handed.get("session_id").map(String::as_str),
        Some("ui-cli-session"),
        "{handed:?}"
    );
    let response = binding_response_of(&handed)?;
    assert_eq!(
        response["authentication"]["oauth2CodeGrant"]["sid"], "ui-cli-session",
        "{response}"
    );
    assert_a_kubeconfig(&kubeconfig_of(&response)?)?;
    assert_requests(&response["requests"][0], template);

    println!("step: the CLI creates the request with that kubeconfig");
    consumer_creates_the_request(user, &response, None)?;

    chromium.close().await;
    Ok(())
}

#[tokio::test]
async fn a_foreign_redirect_url_gets_the_error_page() -> anyhow::Result<()> {
    let (_, plain) = given_a_provider_cluster().await?;
    let backend = start_backend(plain, &[]).await?;
    let chromium = Chromium::start("a_foreign_redirect_url_gets_the_error_page").await?;
    let evil = ui_url(
        &backend.url(),
        &[
            ("session_id", "evil-session"),
            ("redirect_url", "https://evil.example/cb"),
        ],
    )?;
    assert_a_refused_redirect(&chromium, &evil).await?;
    chromium.close().await;
    backend.stop().await
}
