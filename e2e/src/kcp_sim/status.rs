//! Kubernetes `Status` error responses, shaped as an apiserver answers.

use axum::{
    body::Body,
    response::{IntoResponse, Response},
};
use http::{StatusCode, header};
use serde_json::{Value, json};

/// A `Status` object for `code` with the apiserver's reason for it.
pub fn status_object(code: StatusCode, message: &str) -> Value {
    let reason = match code.as_u16() {
        400 => "BadRequest",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "NotFound",
        405 => "MethodNotAllowed",
        409 => "Conflict",
        410 => "Expired",
        503 => "ServiceUnavailable",
        _ => "InternalError",
    };
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code.as_u16(),
    })
}

pub fn error(code: StatusCode, message: impl AsRef<str>) -> Response {
    json_response(code, &status_object(code, message.as_ref()))
}

pub fn json_response(code: StatusCode, body: &Value) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        code,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from(bytes),
    )
        .into_response()
}

/// The apiserver's wording for an RBAC denial, so clients and people recognise it.
pub fn forbidden(user: &str, verb: &str, group: &str, resource: &str, why: &str) -> Response {
    error(
        StatusCode::FORBIDDEN,
        format!(
            "{resource} is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"{group}\": {why}"
        ),
    )
}
