//! A test browser for login flows: an HTTP client with a cookie jar that never follows redirects
//! by itself, so a test sees every hop and decides where to stop (e.g. before the callback the
//! test wants to call itself), and reads forms the way a browser would submit them.

use std::{sync::Arc, time::Duration};

use http::{HeaderMap, HeaderName, HeaderValue};
use reqwest::cookie::CookieStore as _;
use url::Url;

use super::HarnessError;

/// How many redirects [`Browser::follow`] takes before it gives up (browsers stop near 20 too).
pub const MAX_REDIRECTS: usize = 20;

const TIMEOUT: Duration = Duration::from_secs(20);

/// An HTTP client with a cookie jar; redirects are returned, never followed on their own.
#[derive(Clone)]
pub struct Browser {
    client: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
}

/// One response, as the browser got it.
#[derive(Clone, Debug)]
pub struct Page {
    /// The URL that was fetched.
    pub url: Url,
    pub status: u16,
    pub headers: HeaderMap,
    /// The `Location` header resolved against `url`, if there is one.
    pub location: Option<Url>,
    pub body: String,
}

/// A form as a browser would submit it: where, how, and the fields with their current values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Form {
    /// `action` resolved against the page's URL (the page itself when there is none).
    pub action: Url,
    /// Lower case: `get` or `post` (`get` when the form names none).
    pub method: String,
    pub fields: Vec<(String, String)>,
}

impl Browser {
    /// A browser trusting the system's roots.
    pub fn new() -> Result<Self, HarnessError> {
        Self::build(reqwest::Client::builder())
    }

    /// A browser that also trusts the CA certificates in `pem` (for the https servers of a test).
    pub fn with_ca(pem: &[u8]) -> Result<Self, HarnessError> {
        let certs = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|e| HarnessError::Other(format!("the test browser's CA bundle: {e}")))?;
        Self::build(reqwest::Client::builder().tls_certs_merge(certs))
    }

    fn build(builder: reqwest::ClientBuilder) -> Result<Self, HarnessError> {
        crate::install_crypto_provider();
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = builder
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| HarnessError::Other(format!("cannot build the test browser: {e}")))?;
        Ok(Self { client, jar })
    }

    pub async fn get(&self, url: &str) -> Result<Page, HarnessError> {
        self.get_with(url, &[]).await
    }

    /// GET with extra request headers (e.g. `Accept`).
    pub async fn get_with(
        &self,
        url: &str,
        headers: &[(&str, &str)],
    ) -> Result<Page, HarnessError> {
        let request = self
            .client
            .get(parse_url(url)?)
            .headers(header_map(headers)?);
        self.send("GET", request).await
    }

    /// POST `application/x-www-form-urlencoded`, as a browser submits a form.
    pub async fn post_form(
        &self,
        url: &str,
        fields: &[(String, String)],
    ) -> Result<Page, HarnessError> {
        let request = self.client.post(parse_url(url)?).form(fields);
        self.send("POST", request).await
    }

    /// POST `application/json` with extra request headers.
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        headers: &[(&str, &str)],
    ) -> Result<Page, HarnessError> {
        let request = self
            .client
            .post(parse_url(url)?)
            .headers(header_map(headers)?)
            .json(body);
        self.send("POST", request).await
    }

    /// Submits `form` with its method and current fields.
    pub async fn submit(&self, form: &Form) -> Result<Page, HarnessError> {
        if form.method == "post" {
            self.post_form(form.action.as_str(), &form.fields).await
        } else {
            let mut url = form.action.clone();
            url.query_pairs_mut().clear().extend_pairs(&form.fields);
            self.get(url.as_str()).await
        }
    }

    /// Follows `Location` headers from `page` (with GET, as browsers do after 301/302/303) until a
    /// page has none or its next target satisfies `stop`; that target is not fetched and stays in
    /// the returned page's `location`. At most [`MAX_REDIRECTS`] hops.
    pub async fn follow(
        &self,
        page: Page,
        stop: impl Fn(&Url) -> bool,
    ) -> Result<Page, HarnessError> {
        let mut page = page;
        for _ in 0..MAX_REDIRECTS {
            let Some(next) = page.location.as_ref() else {
                return Ok(page);
            };
            if stop(next) {
                return Ok(page);
            }
            page = self.get(next.as_str()).await?;
        }
        match &page.location {
            Some(next) if !stop(next) => Err(HarnessError::Other(format!(
                "more than {MAX_REDIRECTS} redirects; the last one from {} to {next}",
                page.url
            ))),
            _ => Ok(page),
        }
    }

    /// The names of the cookies the jar would send to `url` (none for an unparsable URL).
    pub fn cookie_names(&self, url: &str) -> Vec<String> {
        let Ok(url) = Url::parse(url) else {
            return Vec::new();
        };
        let Some(header) = self.jar.cookies(&url) else {
            return Vec::new();
        };
        header
            .to_str()
            .unwrap_or_default()
            .split(';')
            .filter_map(|pair| {
                pair.trim()
                    .split_once('=')
                    .map(|(name, _)| name.to_string())
            })
            .collect()
    }

    async fn send(
        &self,
        method: &'static str,
        request: reqwest::RequestBuilder,
    ) -> Result<Page, HarnessError> {
        let http_error = |url: &str, e: reqwest::Error| HarnessError::Http {
            method,
            url: url.to_string(),
            source: e,
        };
        let request = request.build().map_err(|e| http_error("?", e))?;
        let url = request.url().clone();
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| http_error(url.as_str(), e))?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get(http::header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| url.join(value).ok());
        let body = response
            .text()
            .await
            .map_err(|e| http_error(url.as_str(), e))?;
        Ok(Page {
            url,
            status,
            headers,
            location,
            body,
        })
    }
}

impl Page {
    /// The page's first `<form>`: its resolved action, its method, and the fields a browser
    /// would send (named inputs with their values, hidden ones included; checked checkboxes and
    /// radios only; each select's selected option; textareas; named buttons with a value).
    pub fn form(&self) -> Option<Form> {
        parse_form(&self.url, &self.body, "form")
    }

    /// The first form matching the CSS selector `css` (e.g. `#template-widgets form`), read as
    /// [`Page::form`] reads one; `None` when nothing matches or `css` is not a selector.
    pub fn form_matching(&self, css: &str) -> Option<Form> {
        scraper::Selector::parse(css).ok()?;
        parse_form(&self.url, &self.body, css)
    }
}

impl Form {
    /// Sets `name` to `value`: the first field of that name, else a new field.
    pub fn set(&mut self, name: &str, value: &str) -> &mut Self {
        match self.fields.iter_mut().find(|(n, _)| n == name) {
            Some(field) => field.1 = value.to_string(),
            None => self.fields.push((name.to_string(), value.to_string())),
        }
        self
    }

    /// The value of the first field called `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn parse_url(url: &str) -> Result<Url, HarnessError> {
    Url::parse(url).map_err(|e| HarnessError::Other(format!("{url:?} is not a URL: {e}")))
}

fn header_map(headers: &[(&str, &str)]) -> Result<HeaderMap, HarnessError> {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        let bad = || HarnessError::Other(format!("bad request header {name}: {value}"));
        map.append(
            HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad())?,
            HeaderValue::from_str(value).map_err(|_| bad())?,
        );
    }
    Ok(map)
}

fn selector(css: &str) -> scraper::Selector {
    // The selectors are literals of this file; a typo is a bug here, not a test failure.
    scraper::Selector::parse(css).unwrap_or_else(|e| panic!("selector {css:?}: {e}"))
}

fn parse_form(page: &Url, html: &str, css: &str) -> Option<Form> {
    let document = scraper::Html::parse_document(html);
    let form = document
        .select(&selector(css))
        .find(|element| element.value().name() == "form")?;
    let action = match form.value().attr("action").map(str::trim) {
        None | Some("") => page.clone(),
        Some(action) => page.join(action).ok()?,
    };
    let method = form
        .value()
        .attr("method")
        .map(str::to_ascii_lowercase)
        .filter(|m| m == "post")
        .unwrap_or_else(|| "get".to_string());
    let mut fields = Vec::new();
    for control in form.select(&selector("input, select, textarea, button")) {
        let element = control.value();
        let Some(name) = element.attr("name").filter(|n| !n.is_empty()) else {
            continue;
        };
        let value = match element.name() {
            "input" => {
                let kind = element.attr("type").unwrap_or("text").to_ascii_lowercase();
                match kind.as_str() {
                    "checkbox" | "radio" if element.attr("checked").is_none() => continue,
                    "checkbox" | "radio" => element.attr("value").unwrap_or("on").to_string(),
                    "submit" | "button" | "image" | "reset" => match element.attr("value") {
                        Some(value) => value.to_string(),
                        None => continue,
                    },
                    _ => element.attr("value").unwrap_or_default().to_string(),
                }
            }
            "select" => {
                let options: Vec<_> = control.select(&selector("option")).collect();
                let chosen = options
                    .iter()
                    .find(|o| o.value().attr("selected").is_some())
                    .or(options.first());
                match chosen {
                    Some(option) => option
                        .value()
                        .attr("value")
                        .map(str::to_string)
                        .unwrap_or_else(|| option.text().collect::<String>().trim().to_string()),
                    None => continue,
                }
            }
            "textarea" => control.text().collect(),
            // A button: only one with a value names itself in the submission.
            _ => match element.attr("value") {
                Some(value) => value.to_string(),
                None => continue,
            },
        };
        fields.push((name.to_string(), value));
    }
    Some(Form {
        action,
        method,
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(html: &str) -> Page {
        Page {
            url: Url::parse("http://127.0.0.1:8080/interaction/abc?x=1").unwrap(),
            status: 200,
            headers: HeaderMap::new(),
            location: None,
            body: html.to_string(),
        }
    }

    const LOGIN: &str = r#"<!DOCTYPE html><html><body>
        <h1>Sign in</h1>
        <form autocomplete="off" action="/interaction/abc/login" method="POST">
          <input type="hidden" name="prompt" value="login"/>
          <input required type="text" name="login" placeholder="Enter any login" autofocus>
          <input required type="password" name="password" placeholder="and password">
          <input type="checkbox" name="remember" value="yes" checked>
          <input type="checkbox" name="newsletter">
          <input type="radio" name="color" value="red">
          <input type="radio" name="color" value="blue" checked>
          <select name="lang"><option value="de">Deutsch</option><option selected>en</option></select>
          <textarea name="note">hello</textarea>
          <input type="submit" value="no name">
          <button type="submit" class="login">Sign-in</button>
          <button type="submit" name="action" value="login">Go</button>
        </form>
        <form action="/second"><input name="other" value="x"></form>
        </body></html>"#;

    #[test]
    fn form_of_a_page_is_its_first_form_as_a_browser_would_submit_it() {
        let form = page(LOGIN).form().unwrap();
        assert_eq!(
            form.action.as_str(),
            "http://127.0.0.1:8080/interaction/abc/login"
        );
        assert_eq!(form.method, "post");
        let expected = [
            ("prompt", "login"),
            ("login", ""),
            ("password", ""),
            ("remember", "yes"),
            ("color", "blue"),
            ("lang", "en"),
            ("note", "hello"),
            ("action", "login"),
        ];
        let fields: Vec<(&str, &str)> = form
            .fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(fields, expected);
    }

    #[test]
    fn set_replaces_a_field_or_adds_it() {
        let mut form = page(LOGIN).form().unwrap();
        form.set("login", "alice")
            .set("password", "secret")
            .set("extra", "1");
        assert_eq!(form.get("login"), Some("alice"));
        assert_eq!(form.get("password"), Some("secret"));
        assert_eq!(form.get("extra"), Some("1"));
        assert_eq!(form.fields.iter().filter(|(n, _)| n == "login").count(), 1);
    }

    #[test]
    fn a_form_without_action_or_method_gets_to_the_page_itself() {
        let form = page(r#"<form><input name="q" value="1"></form>"#)
            .form()
            .unwrap();
        assert_eq!(form.action, page("").url);
        assert_eq!(form.method, "get");
        assert_eq!(form.fields, vec![("q".to_string(), "1".to_string())]);
    }

    #[test]
    fn a_page_without_a_form_has_none() {
        assert_eq!(page("<p>done</p>").form(), None);
    }

    /// A site on a free port: `/start` → `/set` (sets `sid`) → `/next` (only with `sid`) →
    /// `http://127.0.0.1:1/cb`; `/loop` redirects to itself.
    async fn site() -> String {
        use axum::{
            Router,
            http::{HeaderMap as Headers, StatusCode, header},
            response::{IntoResponse, Redirect},
            routing::get,
        };
        async fn next(headers: Headers) -> axum::response::Response {
            let cookie = headers.get(header::COOKIE).and_then(|v| v.to_str().ok());
            if cookie == Some("sid=1") {
                Redirect::to("http://127.0.0.1:1/cb?code=abc").into_response()
            } else {
                (StatusCode::BAD_REQUEST, format!("cookie {cookie:?}")).into_response()
            }
        }
        let app = Router::new()
            .route("/start", get(|| async { Redirect::temporary("/set") }))
            .route(
                "/set",
                get(|| async {
                    (
                        [(header::SET_COOKIE, "sid=1; Path=/; HttpOnly")],
                        Redirect::to("next"),
                    )
                }),
            )
            .route("/next", get(next))
            .route("/loop", get(|| async { Redirect::to("/loop") }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        base
    }

    #[tokio::test]
    async fn follow_keeps_cookies_and_stops_before_the_target_it_is_told() {
        let base = site().await;
        let browser = Browser::new().unwrap();
        let start = browser.get(&format!("{base}/start")).await.unwrap();
        let last = browser
            .follow(start, |target| target.port() == Some(1))
            .await
            .unwrap();
        assert_eq!(last.url.as_str(), format!("{base}/next"));
        assert_eq!(last.status, 303);
        assert_eq!(
            last.location.map(String::from).as_deref(),
            Some("http://127.0.0.1:1/cb?code=abc")
        );
        assert_eq!(browser.cookie_names(&base), vec!["sid".to_string()]);
        assert!(browser.cookie_names("http://localhost:1/").is_empty());
    }

    #[tokio::test]
    async fn follow_gives_up_after_twenty_redirects() {
        let base = site().await;
        let browser = Browser::new().unwrap();
        let start = browser.get(&format!("{base}/loop")).await.unwrap();
        let error = browser.follow(start, |_| false).await.unwrap_err();
        assert!(
            error.to_string().contains("more than 20 redirects"),
            "{error}"
        );
    }

    #[test]
    fn an_absolute_action_is_kept() {
        let form = page(r#"<form action="https://idp.example/login" method="post"></form>"#)
            .form()
            .unwrap();
        assert_eq!(form.action.as_str(), "https://idp.example/login");
    }
}
