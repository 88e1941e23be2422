//! API errors: every failure of an `/api` route answers with upstream's error body
//! (`{"apiVersion":"kube-bind.io/v1alpha2","kind":"Error","message","code","details"}`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kube_bind_apis::wire::{ErrorBody, ErrorCode};

/// An error an API handler answers with: upstream's body, with the status its code implies
/// unless a more precise one (413, 429, 503) was set.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Boxed: handlers return `Result<_, ApiError>` everywhere, and the Ok path stays small.
    pub body: Box<ErrorBody>,
    status: Option<StatusCode>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            body: Box::new(ErrorBody::new(code, message)),
            status: None,
        }
    }

    pub fn with_details(mut self, details: impl Into<String>) -> Self {
        self.body.details = details.into();
        self
    }

    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = Some(status);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status.unwrap_or_else(|| {
            StatusCode::from_u16(self.body.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        })
    }

    /// 401 `AUTHENTICATION_FAILED` "Authentication required", as upstream's middleware.
    pub fn unauthenticated(details: impl Into<String>) -> Self {
        Self::new(ErrorCode::AuthenticationFailed, "Authentication required").with_details(details)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AuthorizationFailed, message)
    }

    /// A dependency (Redis, the OIDC issuer) cannot answer right now: 503, retry later.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::internal(message).with_status(StatusCode::SERVICE_UNAVAILABLE)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::ResourceNotFound, message)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalError, message)
    }

    /// A `cluster_id` that names no engaged cluster.
    pub fn unknown_cluster(cluster_id: &str) -> Self {
        Self::not_found(format!(
            "cluster {cluster_id:?} is not served by this backend; check the cluster id \
             (the last segment of the workspace's LogicalCluster status.URL) or bind the kube-bind.io export first"
        ))
    }

    /// Maps a Kubernetes API error the way upstream does (NotFound→404, Unauthorized→401,
    /// Forbidden→403, BadRequest→400, anything else→500), with the error text as details.
    pub fn from_kube(message: impl Into<String>, err: &kube::Error) -> Self {
        let code = match err {
            kube::Error::Api(status) => match status.code {
                404 => ErrorCode::ResourceNotFound,
                401 => ErrorCode::AuthenticationFailed,
                403 => ErrorCode::AuthorizationFailed,
                400 => ErrorCode::BadRequest,
                _ => ErrorCode::InternalError,
            },
            _ => ErrorCode::InternalError,
        };
        Self::new(code, message).with_details(err.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status(), Json(*self.body)).into_response()
    }
}

impl From<crate::auth::StoreError> for ApiError {
    fn from(err: crate::auth::StoreError) -> Self {
        Self::unavailable(err.to_string())
    }
}
