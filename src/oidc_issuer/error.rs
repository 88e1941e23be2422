//! The issuer's error answers: a page for the browser when the client cannot be trusted with a
//! redirect, a redirect to the client otherwise (RFC 6749 §4.1.2.1), JSON from the token endpoint
//! (RFC 6749 §5.2) and a `WWW-Authenticate` challenge from userinfo (RFC 6750 §3).

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::page;

/// The realm named in `WWW-Authenticate` challenges.
pub(super) const REALM: &str = "kube-bind embedded OIDC issuer";

/// A failed authorization request (GET or POST `/authorize`).
#[derive(Debug)]
pub(super) enum AuthorizeError {
    /// Shown to the user, never redirected: the client or its redirect_uri is unknown, or the
    /// login form cannot be trusted.
    Page { status: StatusCode, message: String },
    /// Sent back to the client's registered redirect_uri.
    Redirect {
        redirect_uri: String,
        error: &'static str,
        description: String,
        state: Option<String>,
    },
}

impl AuthorizeError {
    pub(super) fn page(message: impl Into<String>) -> Self {
        Self::Page {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for AuthorizeError {
    fn into_response(self) -> Response {
        match self {
            Self::Page { status, message } => page::error(status, &message),
            Self::Redirect {
                redirect_uri,
                error,
                description,
                state,
            } => {
                let mut pairs = vec![("error", error), ("error_description", &description)];
                if let Some(state) = &state {
                    pairs.push(("state", state));
                }
                redirect(&redirect_uri, &pairs)
            }
        }
    }
}

/// A 302 to `base` with `pairs` appended to its query (its own query parameters are kept).
pub(super) fn redirect(base: &str, pairs: &[(&str, &str)]) -> Response {
    let Ok(mut url) = url::Url::parse(base) else {
        return page::error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "The registered redirect URI is not an absolute URL; fix the issuer's configuration.",
        );
    };
    url.query_pairs_mut().extend_pairs(pairs);
    let location = HeaderValue::try_from(url.as_str()).expect("a serialized URL is ASCII");
    (
        StatusCode::FOUND,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response()
}

/// RFC 6749 §5.2 error codes the token endpoint answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    /// Not in RFC 6749 §5.2, but what OAuth servers commonly answer for their own failures.
    ServerError,
}

impl TokenErrorCode {
    fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid_request",
            Self::InvalidClient => "invalid_client",
            Self::InvalidGrant => "invalid_grant",
            Self::UnsupportedGrantType => "unsupported_grant_type",
            Self::ServerError => "server_error",
        }
    }
}

/// A failed token request.
#[derive(Debug)]
pub(super) struct TokenError {
    pub(super) code: TokenErrorCode,
    pub(super) description: String,
}

impl TokenError {
    pub(super) fn new(code: TokenErrorCode, description: impl Into<String>) -> Self {
        Self {
            code,
            description: description.into(),
        }
    }

    pub(super) fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(TokenErrorCode::InvalidRequest, description)
    }

    pub(super) fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(TokenErrorCode::InvalidClient, description)
    }

    pub(super) fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(TokenErrorCode::InvalidGrant, description)
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let body = json!({"error": self.code.as_str(), "error_description": self.description});
        let mut response = if self.code == TokenErrorCode::InvalidClient {
            let challenge = HeaderValue::try_from(format!("Basic realm=\"{REALM}\""))
                .expect("the realm is ASCII");
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
                Json(body),
            )
                .into_response()
        } else if self.code == TokenErrorCode::ServerError {
            (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response()
        } else {
            (StatusCode::BAD_REQUEST, Json(body)).into_response()
        };
        no_store(&mut response);
        response
    }
}

/// A refused userinfo request: 401 with a Bearer challenge.
#[derive(Debug)]
pub(super) enum BearerError {
    /// No bearer token at all: the challenge names no error (RFC 6750 §3.1).
    Missing,
    Invalid(&'static str),
}

impl IntoResponse for BearerError {
    fn into_response(self) -> Response {
        let (challenge, body) = match self {
            Self::Missing => (
                format!("Bearer realm=\"{REALM}\""),
                json!({"error": "invalid_request", "error_description": "a bearer access token is required"}),
            ),
            Self::Invalid(description) => (
                format!(
                    "Bearer realm=\"{REALM}\", error=\"invalid_token\", error_description=\"{description}\""
                ),
                json!({"error": "invalid_token", "error_description": description}),
            ),
        };
        let challenge = HeaderValue::try_from(challenge).expect("the challenge is ASCII");
        let mut response = (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, challenge)],
            Json(body),
        )
            .into_response();
        no_store(&mut response);
        response
    }
}

/// Token responses and their errors must not be cached (RFC 6749 §5.1).
pub(super) fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
}
