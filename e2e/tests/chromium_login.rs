//! The CLI's login through a real browser: headless Chromium opens the backend's authorize URL
//! as `kubectl bind login` would, the embedded issuer's form is filled in and submitted, and the
//! token reaches the CLI's loopback callback, where it opens the API.

mod controller_support;
mod login_support;

use controller_support::given_a_provider_cluster;
use kube_bind_e2e::harness::Browser;
use kube_bind_e2e::harness::chromium::Chromium;
use kube_bind_e2e::harness::cli_callback::CliCallback;
use login_support::*;
use url::Url;

#[tokio::test]
async fn a_cli_login_in_chromium_hands_a_working_token_to_the_loopback_callback()
-> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    println!("step: the backend with the embedded issuer");
    let backend = start_backend(plain, &[]).await?;
    println!("step: the CLI's loopback callback");
    let mut callback = CliCallback::start().await?;
    let chromium =
        Chromium::start("a_cli_login_in_chromium_hands_a_working_token_to_the_loopback_callback")
            .await?;

    println!("step: the browser opens the login the CLI started");
    let authorize = Url::parse_with_params(
        &format!("{}/api/authorize", backend.url()),
        [
            ("client_type", "cli"),
            ("redirect_url", callback.url()),
            ("session_id", "chromium-cli-session"),
        ],
    )?;
    chromium.goto(authorize.as_str()).await?;
    chromium
        .wait_for("form input#username", Chromium::PATIENCE)
        .await;
    chromium.find("form input#password").await?;
    chromium.screenshot("issuer-login-form").await?;

    println!("step: the user signs in");
    let user = env.unique("chromium-alice");
    chromium.fill("input#username", &user).await?;
    chromium.screenshot("issuer-form-filled").await?;
    chromium.click("form button[type=submit]").await?;

    println!("step: the callback gets the token");
    let query = callback.next(Chromium::PATIENCE).await?;
    assert_eq!(
        query.get("token_type").map(String::as_str),
        Some("Bearer"),
        "{query:?}"
    );
    let token = query
        .get("access_token")
        .filter(|t| !t.is_empty())
        .ok_or_else(|| anyhow::anyhow!("no access_token in the callback's query {query:?}"))?;
    chromium
        .wait_for("main#cli-callback", Chromium::PATIENCE)
        .await;
    let landed = chromium.current_url().await?;
    assert!(
        landed.as_str().starts_with(callback.url()),
        "the browser ends at the callback, not at {landed}"
    );
    chromium.screenshot("cli-callback").await?;

    println!("step: the token opens the API");
    let http = Browser::new()?;
    let ping = get_with_token(&http, &format!("{}/api/ping", backend.url()), token).await?;
    assert_eq!((ping.status, ping.body.as_str()), (200, "pong"));
    let forged = get_with_token(
        &http,
        &format!("{}/api/ping", backend.url()),
        &format!("{token}x"),
    )
    .await?;
    assert_eq!(forged.status, 401, "an altered token is refused");

    chromium.close().await;
    backend.stop().await
}

#[tokio::test]
async fn a_wait_that_fails_names_the_selector_the_page_and_its_source() -> anyhow::Result<()> {
    // A page to wait on without a backend: the callback's own.
    let callback = CliCallback::start().await?;
    let chromium =
        Chromium::start("a_wait_that_fails_names_the_selector_the_page_and_its_source").await?;
    chromium.goto(callback.url()).await?;
    let url = callback.url().to_owned();
    // The wait panics by design; in a task of its own, its message can be read.
    let waited = tokio::spawn(async move {
        chromium
            .wait_for("main#not-on-this-page", std::time::Duration::from_secs(2))
            .await;
    })
    .await;
    let message = match waited {
        Err(e) if e.is_panic() => {
            let payload = e.into_panic();
            payload
                .downcast_ref::<String>()
                .cloned()
                .unwrap_or_else(|| "(not a String panic)".to_owned())
        }
        Err(e) => anyhow::bail!("the wait's task failed without a panic: {e}"),
        Ok(()) => anyhow::bail!("waiting for an element the page lacks did not fail"),
    };
    for part in ["main#not-on-this-page", url.as_str(), "id=\"cli-callback\""] {
        assert!(
            message.contains(part),
            "{part:?} not in the panic message: {message}"
        );
    }
    Ok(())
}
