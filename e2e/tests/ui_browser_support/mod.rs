//! What the web UI's browser tests share: the steps a person takes in headless Chromium (log in
//! from the login page, bind from the catalogue, read the result page), each checking the
//! selectors of the UI's contract and leaving a screenshot, and the checks of what a bind
//! hands out (the request's YAML, the kubeconfig's Secret, the CLI's `binding_response`).

#![allow(dead_code)]

use std::collections::HashMap;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube_bind_e2e::harness::Browser;
use kube_bind_e2e::harness::chromium::Chromium;
use serde_json::Value;
use url::Url;

const PATIENCE: std::time::Duration = Chromium::PATIENCE;

/// `<backend>/` with the given query (the empty values left out), as `kubectl bind <url>` opens
/// it.
pub fn ui_url(backend: &str, query: &[(&str, &str)]) -> anyhow::Result<Url> {
    let mut url = Url::parse_with_params(
        &format!("{backend}/"),
        query.iter().filter(|(_, v)| !v.is_empty()),
    )?;
    // No bare `?`: the page opened by hand has no query at all.
    if url.query() == Some("") {
        url.set_query(None);
    }
    Ok(url)
}

/// From the login page the browser shows: the login link (to `/api/authorize`, `client_type=ui`),
/// the issuer's form filled in as `user`, and back to the catalogue. Returns the catalogue's URL.
pub async fn log_in_from_the_login_page(chromium: &Chromium, user: &str) -> anyhow::Result<Url> {
    println!("step: the login page");
    chromium.wait_for("main#login-page", PATIENCE).await;
    let href = chromium
        .attr("main#login-page a#login", "href")
        .await?
        .unwrap_or_default();
    let login = chromium.current_url().await?.join(&href)?;
    assert_eq!(login.path(), "/api/authorize", "a#login: {href}");
    assert!(
        login
            .query_pairs()
            .any(|(k, v)| k == "client_type" && v == "ui"),
        "a#login must ask for client_type=ui: {href}"
    );
    assert_in_the_page_column(chromium, "main#login-page").await?;
    chromium.screenshot("login-page").await?;

    println!("step: follow the login link to the issuer's form");
    chromium.click("main#login-page a#login").await?;
    chromium.wait_for("form input#username", PATIENCE).await;
    chromium.fill("input#username", user).await?;
    chromium.screenshot("issuer-form").await?;
    chromium.click("form button[type=submit]").await?;

    println!("step: back to the catalogue");
    chromium.wait_for("main#catalogue", PATIENCE).await;
    let catalogue = chromium.current_url().await?;
    assert_eq!(
        catalogue.path(),
        "/",
        "the login ends on the UI: {catalogue}"
    );
    chromium.screenshot("catalogue").await?;
    Ok(catalogue)
}

/// The page's `main` (`css`) is drawn inside the column of the site's header, centred in it: what
/// only a browser that applies the stylesheet can tell (the narrow cards once sat flush left).
pub async fn assert_in_the_page_column(chromium: &Chromium, css: &str) -> anyhow::Result<()> {
    let (hx, _, hw, _) = chromium.rect("header.site").await?;
    let (mx, _, mw, _) = chromium.rect(css).await?;
    let (left, right) = (mx - hx, (hx + hw) - (mx + mw));
    assert!(
        left >= -1.0 && right >= -1.0 && (left - right).abs() <= 2.0,
        "{css} at x={mx} width={mw} is not centred in header.site at x={hx} width={hw}"
    );
    Ok(())
}

/// The query of `url` as a map, asserting each key appears once.
pub fn query_of(url: &Url) -> HashMap<String, String> {
    let mut query = HashMap::new();
    for (k, v) in url.query_pairs().into_owned() {
        assert!(query.insert(k.clone(), v).is_none(), "{k} twice in {url}");
    }
    query
}

/// Clicks the bind button of template `name` in the catalogue (the contract's form and button).
pub async fn bind_from_the_catalogue(chromium: &Chromium, name: &str) -> anyhow::Result<()> {
    println!("step: bind template {name} from the catalogue");
    let button = format!(
        "main#catalogue section.template#template-{name} form[method=post][action='/ui/bind'] \
         button[type=submit][name=bind][value='{name}']"
    );
    chromium.wait_for(&button, PATIENCE).await;
    chromium.click(&button).await?;
    Ok(())
}

/// What the result page shows.
pub struct ResultPage {
    /// `code#kubeconfig-secret`, split at its `/`.
    pub namespace: String,
    pub secret: String,
    /// The first request's YAML in `section#requests`, parsed.
    pub request: Value,
    /// The kubeconfig in `details#kubeconfig`.
    pub kubeconfig: String,
}

/// Reads the result page (screenshots: as shown, then with the kubeconfig opened).
pub async fn the_result_page(chromium: &Chromium) -> anyhow::Result<ResultPage> {
    println!("step: the result page");
    chromium.wait_for("main#result", PATIENCE).await;
    chromium.find("main#result section#next-steps").await?;
    chromium.screenshot("result").await?;
    let secret = chromium
        .text_content("main#result code#kubeconfig-secret")
        .await?;
    let (namespace, name) = secret.trim().split_once('/').ok_or_else(|| {
        anyhow::anyhow!("code#kubeconfig-secret is not <namespace>/<name>: {secret:?}")
    })?;
    let yaml = chromium
        .text_content("main#result section#requests pre")
        .await?;
    let request: Value = serde_saphyr::from_str(&yaml)
        .map_err(|e| anyhow::anyhow!("the request in section#requests is not YAML: {e}\n{yaml}"))?;
    chromium
        .click("main#result details#kubeconfig summary")
        .await?;
    let kubeconfig = chromium
        .text_content("main#result details#kubeconfig pre")
        .await?;
    chromium.screenshot("result-kubeconfig-open").await?;
    Ok(ResultPage {
        namespace: namespace.to_owned(),
        secret: name.to_owned(),
        request,
        kubeconfig,
    })
}

/// The page's request is an APIServiceExportRequest for `resource`.
pub fn assert_requests(request: &Value, resource: &str) {
    assert_eq!(request["apiVersion"], "kube-bind.io/v1alpha2", "{request}");
    assert_eq!(request["kind"], "APIServiceExportRequest", "{request}");
    assert_eq!(
        request["spec"]["resources"][0]["resource"], resource,
        "{request}"
    );
}

/// The Secret the page names exists in the provider and holds the kubeconfig the page shows.
pub async fn assert_the_secret_holds_the_kubeconfig(
    provider: kube::Client,
    page: &ResultPage,
) -> anyhow::Result<()> {
    let secret = Api::<Secret>::namespaced(provider, &page.namespace)
        .get(&page.secret)
        .await
        .map_err(|e| anyhow::anyhow!("Secret {}/{}: {e}", page.namespace, page.secret))?;
    let stored = secret
        .data
        .as_ref()
        .and_then(|d| d.get("kubeconfig"))
        .map(|b| String::from_utf8_lossy(&b.0).into_owned())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "Secret {}/{} has no kubeconfig",
                page.namespace,
                page.secret
            )
        })?;
    assert_eq!(
        stored.trim(),
        page.kubeconfig.trim(),
        "the page shows the stored kubeconfig"
    );
    Ok(())
}

/// The kubeconfig parses as one, with a server and a token.
pub fn assert_a_kubeconfig(text: &str) -> anyhow::Result<Value> {
    let config: Value = serde_saphyr::from_str(text)
        .map_err(|e| anyhow::anyhow!("not a kubeconfig: {e}\n{text}"))?;
    assert_eq!(config["kind"], "Config", "{config}");
    assert!(
        config["clusters"][0]["cluster"]["server"]
            .as_str()
            .is_some_and(|s| s.starts_with("https://")),
        "{config}"
    );
    assert!(
        config["users"][0]["user"]["token"]
            .as_str()
            .is_some_and(|t| !t.is_empty()),
        "{config}"
    );
    Ok(config)
}

/// The CLI callback's `binding_response`: Go's `base64.URLEncoding` (URL-safe, padded) of the
/// BindingResponse JSON.
pub fn binding_response_of(query: &HashMap<String, String>) -> anyhow::Result<Value> {
    let encoded = query
        .get("binding_response")
        .ok_or_else(|| anyhow::anyhow!("no binding_response in {query:?}"))?;
    let json = base64::engine::general_purpose::URL_SAFE
        .decode(encoded)
        .map_err(|e| anyhow::anyhow!("binding_response is not padded URL-safe base64: {e}"))?;
    let response: Value = serde_json::from_slice(&json)?;
    assert_eq!(response["kind"], "BindingResponse", "{response}");
    Ok(response)
}

/// The kubeconfig of a BindingResponse (standard base64, as Go encodes `[]byte`), as text.
pub fn kubeconfig_of(response: &Value) -> anyhow::Result<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(response["kubeconfig"].as_str().unwrap_or_default())?;
    Ok(String::from_utf8(bytes)?)
}

/// A redirect the backend refuses: the error page, with status 400 (read by a plain GET, as the
/// browser does not tell).
pub async fn assert_a_refused_redirect(chromium: &Chromium, url: &Url) -> anyhow::Result<()> {
    println!("step: a redirect_url that is not the CLI's: {url}");
    let plain = Browser::new()?.get(url.as_str()).await?;
    assert_eq!(plain.status, 400, "GET {url}: {}", plain.body);
    assert!(plain.body.contains(r#"<main id="error""#), "{}", plain.body);
    chromium.goto(url.as_str()).await?;
    chromium.wait_for("main#error", PATIENCE).await;
    let title = chromium.text_content("main#error h1").await?;
    let message = chromium.text_content("main#error p.error-message").await?;
    assert!(!title.trim().is_empty(), "main#error h1 is empty");
    let refused = query_of(url)
        .get("redirect_url")
        .and_then(|r| Url::parse(r).ok())
        .and_then(|r| r.host_str().map(str::to_owned))
        .unwrap_or_default();
    assert!(
        message.contains("redirect_url") && message.contains(&refused),
        "p.error-message says what was refused ({refused}): {message:?}"
    );
    assert!(
        chromium.find("main#catalogue").await.is_err() && chromium.find("a#login").await.is_err(),
        "the error page offers no way on to a login"
    );
    assert_in_the_page_column(chromium, "main#error").await?;
    chromium.screenshot("refused-redirect").await?;
    Ok(())
}
