//! The two HTML pages: the login form and the error page. Everything echoed is HTML-escaped.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// What the login form shows.
pub(super) struct LoginForm<'a> {
    /// Where the form posts: the authorize endpoint's absolute URL.
    pub(super) action: &'a str,
    pub(super) client_id: &'a str,
    /// Where the login returns to (the redirect URI's origin), so the user sees where they go.
    pub(super) returns_to: &'a str,
    /// The sealed pending authorization request.
    pub(super) pending: &'a str,
    /// The username typed before, when the form is shown again.
    pub(super) username: &'a str,
    /// Why the form is shown again.
    pub(super) problem: Option<&'a str>,
}

pub(super) fn login(status: StatusCode, form: &LoginForm<'_>) -> Response {
    let problem = match form.problem {
        Some(problem) => format!(
            r#"<p class="problem" id="problem" role="alert">{}</p>"#,
            escape(problem)
        ),
        None => String::new(),
    };
    let described_by = if form.problem.is_some() {
        r#" aria-describedby="problem" aria-invalid="true""#
    } else {
        ""
    };
    let body = format!(
        r#"<main>
<h1>Sign in</h1>
<p class="lead"><strong>{client}</strong> asks who you are. You will return to <strong>{returns_to}</strong>.</p>
{problem}<form method="post" action="{action}">
<input type="hidden" name="pending" value="{pending}">
<label for="username">Username</label>
<input id="username" name="username" type="text" value="{username}" required autofocus autocomplete="username" autocapitalize="none" spellcheck="false" maxlength="{max}"{described_by}>
<label for="password">Password <span class="hint">(optional, not checked)</span></label>
<input id="password" name="password" type="password" autocomplete="current-password">
<button type="submit">Sign in</button>
</form>
<p class="note">This is kube-bind's development identity provider: the username you enter becomes your identity and no password is checked. Do not use it in production.</p>
</main>"#,
        client = escape(form.client_id),
        returns_to = escape(form.returns_to),
        action = escape(form.action),
        pending = escape(form.pending),
        username = escape(form.username),
        max = super::authorize::MAX_USERNAME_CHARS,
    );
    html(status, "Sign in · kube-bind", &body)
}

pub(super) fn error(status: StatusCode, message: &str) -> Response {
    let body = format!(
        r#"<main>
<h1>This sign-in cannot continue</h1>
<p class="problem" role="alert">{}</p>
<p class="note">Go back to the application you came from and start signing in again.</p>
</main>"#,
        escape(message)
    );
    html(status, "Sign-in error · kube-bind", &body)
}

const STYLE: &str = "\
:root{color-scheme:light dark;--fg:#1b1f24;--muted:#57606a;--bg:#f4f6f8;--card:#fff;--line:#d0d7de;--accent:#0b5cad;--bad:#b42318}\
@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9da7b3;--bg:#0d1117;--card:#161b22;--line:#30363d;--accent:#4493f8;--bad:#ff7b72}}\
*{box-sizing:border-box}\
body{margin:0;min-height:100vh;display:grid;place-items:center;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}\
main{width:min(26rem,calc(100% - 2rem));background:var(--card);border:1px solid var(--line);border-radius:12px;padding:2rem;box-shadow:0 4px 24px rgba(0,0,0,.08)}\
h1{margin:0 0 .5rem;font-size:1.5rem}\
.lead,.note{color:var(--muted)}.lead strong{color:var(--fg);word-break:break-all}\
.note{font-size:.875rem;margin:1.5rem 0 0}\
form{display:grid;gap:.375rem;margin-top:1.25rem}\
label{font-weight:600;margin-top:.5rem}.hint{font-weight:400;color:var(--muted)}\
input{font:inherit;padding:.625rem .75rem;border:1px solid var(--line);border-radius:8px;background:var(--bg);color:var(--fg)}\
input:focus-visible,button:focus-visible{outline:3px solid var(--accent);outline-offset:2px}\
input[aria-invalid=true]{border-color:var(--bad)}\
button{margin-top:1rem;font:inherit;font-weight:600;padding:.7rem;border:0;border-radius:8px;background:var(--accent);color:#fff;cursor:pointer}\
button:hover{filter:brightness(1.1)}\
.problem{color:var(--bad);font-weight:600;margin:1rem 0 0}";

fn html(status: StatusCode, title: &str, body: &str) -> Response {
    let page = format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<title>{}</title>\n\
         <style>{STYLE}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n",
        escape(title)
    );
    let mut response = (status, Html(page)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // No scripts, no framing (clickjacking), only the inline stylesheet.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// Escapes text for HTML element content and double- or single-quoted attribute values.
pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x" title='y'>&</a>"#),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;"
        );
        assert_eq!(escape("plain"), "plain");
    }
}
