//! API errors: every failure of an `/api` route answers with upstream's error body
//! (`{"apiVersion":"kube-bind.io/v1alpha2","kind":"Error","message","code","details"}`).

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kube_bind_apis::wire::{ErrorBody, ErrorCode};

/// An error an API handler answers with.
#[derive(Debug, Clone)]
pub struct ApiError(pub ErrorBody);

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self(ErrorBody::new(code, message))
    }

    pub fn with_details(self, details: impl Into<String>) -> Self {
        Self(self.0.with_details(details))
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
        let status =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
    }
}
