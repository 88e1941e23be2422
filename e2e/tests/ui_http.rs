//! The web UI at `/` against the real backend on a real apiserver, driven the way `kubectl bind
//! <url>` and a person drive it: open the page with the CLI's callback, log in through the
//! embedded issuer, pick a template in the catalogue, bind, and land on the CLI's loopback
//! listener with the binding response.

mod controller_support;
mod login_support;

use std::collections::HashMap;

use base64::Engine as _;
use controller_support::given_a_provider_cluster;
use kube_bind_e2e::harness::{Browser, Page};
use login_support::*;
use serde_json::Value;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use url::Url;

#[tokio::test]
async fn kubectl_bind_through_the_ui_hands_the_binding_to_the_cli() -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_cluster().await?;
    given_a_template(plain, "gizmos", "example.com", "gizmos", "v1").await?;
    let backend = start_backend(plain, &[]).await?;
    let port = backend.port();
    let (callback, received) = a_cli_callback_listener().await?;
    let browser = Browser::new()?;

    // Given the page kubectl bind opens, with no login yet.
    let opened = browser
        .get(&format!(
            "{}/?session_id=cli-run-1&redirect_url={}",
            backend.url(),
            urlencoded(&callback)
        ))
        .await?;
    assert_eq!(opened.status, 200, "{}", opened.body);
    assert!(
        opened.body.contains(r#"<main id="login-page""#),
        "{}",
        opened.body
    );

    // When the person logs in, the issuer's round trip comes back to the same page.
    let login = href_of(&opened, "a#login")?;
    let authorize = browser.get(login.as_str()).await?;
    let back_home = |u: &Url| u.path() == "/" && u.port() == Some(port);
    let end = embedded_issuer_login(&browser, authorize, &env.unique("uma"), back_home).await?;
    let home = end
        .location
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no hop back to the UI: {} {}", end.status, end.body))?;
    let keys: Vec<String> = home.query_pairs().map(|(k, _)| k.into_owned()).collect();
    for key in ["session_id", "redirect_url"] {
        assert_eq!(keys.iter().filter(|k| *k == key).count(), 1, "{home}");
    }
    let query: HashMap<_, _> = home.query_pairs().into_owned().collect();
    assert_eq!(query["session_id"], "cli-run-1");
    assert_eq!(query["redirect_url"], callback);

    // Then the catalogue shows the template, and binding it hands the response to the CLI.
    let catalogue = browser.get(home.as_str()).await?;
    assert_eq!(catalogue.status, 200, "{}", catalogue.body);
    assert!(
        catalogue.body.contains(r#"<main id="catalogue">"#),
        "{}",
        catalogue.body
    );
    let form = catalogue
        .form_matching("#template-gizmos form")
        .ok_or_else(|| anyhow::anyhow!("no bind form for gizmos: {}", catalogue.body))?;
    assert_eq!(form.get("bind"), Some("gizmos"));
    let bound = browser.submit(&form).await?;
    assert_eq!(bound.status, 302, "{}", bound.body);
    let target = bound
        .location
        .clone()
        .ok_or_else(|| anyhow::anyhow!("no redirect to the CLI"))?;
    assert!(target.as_str().starts_with(&callback), "{target}");
    let handed: HashMap<_, _> = target.query_pairs().into_owned().collect();
    assert_eq!(handed["session_id"], "cli-run-1");
    // The CLI decodes with Go's base64.URLEncoding: URL-safe alphabet, padded.
    let response: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE.decode(&handed["binding_response"])?,
    )?;
    assert_eq!(response["kind"], "BindingResponse", "{response}");
    assert_eq!(
        response["authentication"]["oauth2CodeGrant"]["sid"],
        "cli-run-1"
    );
    assert_eq!(
        response["requests"][0]["apiVersion"],
        "kube-bind.io/v1alpha2"
    );
    assert_eq!(
        response["requests"][0]["spec"]["resources"][0]["resource"],
        "gizmos"
    );
    // The listener gets exactly what the browser was sent to.
    let fetched = browser.get(target.as_str()).await?;
    assert_eq!(fetched.status, 200);
    let request_line = received.await?;
    assert_eq!(
        request_line,
        format!(
            "GET {}?{} HTTP/1.1",
            target.path(),
            target.query().unwrap_or_default()
        )
    );
    // And the kubeconfig works as the CLI uses it.
    consumer_creates_the_request(&env.unique("uma-ui"), &response, None)?;

    // Opened by hand (no CLI), a bind shows its result; logging out ends the session.
    let by_hand = browser.get(&format!("{}/", backend.url())).await?;
    let form = by_hand
        .form_matching("#template-gizmos form")
        .ok_or_else(|| anyhow::anyhow!("no bind form: {}", by_hand.body))?;
    let result = browser.submit(&form).await?;
    assert_eq!(result.status, 200, "{}", result.body);
    assert!(
        result.body.contains(r#"<main id="result">"#),
        "{}",
        result.body
    );
    assert!(result.body.contains(r#"<code id="kubeconfig-secret">"#));
    assert!(
        result.body.contains("kind: APIServiceExportRequest"),
        "{}",
        result.body
    );
    let logout = by_hand
        .form_matching("form#logout")
        .ok_or_else(|| anyhow::anyhow!("no logout form: {}", by_hand.body))?;
    let out = browser.submit(&logout).await?;
    assert_eq!(out.status, 303, "{}", out.body);
    let after = browser.follow(out, |_| false).await?;
    assert!(
        after.body.contains(r#"<main id="login-page""#),
        "{}",
        after.body
    );

    backend.stop().await
}

/// A loopback listener standing in for the CLI's callback: its URL, and the request line of the
/// first request it answers.
async fn a_cli_callback_listener() -> anyhow::Result<(String, tokio::task::JoinHandle<String>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!(
        "http://127.0.0.1:{}/callback",
        listener.local_addr()?.port()
    );
    let received = tokio::spawn(async move {
        let Ok((mut stream, _)) = listener.accept().await else {
            return String::new();
        };
        let mut head = Vec::new();
        let mut buf = [0_u8; 4096];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok")
            .await;
        String::from_utf8_lossy(&head)
            .lines()
            .next()
            .unwrap_or_default()
            .to_owned()
    });
    Ok((url, received))
}

/// The `href` of the first element matching `css`, resolved against the page.
fn href_of(page: &Page, css: &str) -> anyhow::Result<Url> {
    let document = scraper::Html::parse_document(&page.body);
    let selector = scraper::Selector::parse(css).map_err(|e| anyhow::anyhow!("{css}: {e}"))?;
    let href = document
        .select(&selector)
        .next()
        .and_then(|a| a.value().attr("href"))
        .ok_or_else(|| anyhow::anyhow!("no {css} with an href in {}", page.body))?;
    Ok(page.url.join(href)?)
}

fn urlencoded(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
