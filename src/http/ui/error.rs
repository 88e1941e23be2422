//! A failure of a UI route as an HTML page: the API error's status and sentence, never its JSON.

use askama::Template as _;
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};

use super::pages::ErrorPage;
use crate::http::ApiError;
use crate::http::routes::no_cache;

/// An [`ApiError`] a UI handler answers with, rendered for a person.
#[derive(Debug)]
pub struct UiError {
    provider: String,
    error: ApiError,
}

impl UiError {
    pub fn new(provider: &str, error: ApiError) -> Self {
        Self {
            provider: provider.to_owned(),
            error,
        }
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        let status = self.error.status();
        let response = match ErrorPage::of(&self.provider, &self.error).render() {
            Ok(page) => (status, Html(page)).into_response(),
            // The template is checked at compile time; rendering can only fail on a formatter
            // error, and the sentence still reaches the person.
            Err(_) => (
                status,
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                self.error.body.message.clone(),
            )
                .into_response(),
        };
        no_cache(response)
    }
}
