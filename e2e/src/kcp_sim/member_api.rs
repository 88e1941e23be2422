//! The few typed calls the stand-in makes to a member as itself: consistent LISTs (latest or at
//! an exact revision), the global etcd revision, and JSON get/create/replace/patch.

use http::{Method, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;

/// How a member call failed, in the terms the callers decide on.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    /// 410: the revision asked for is compacted or outside the watch cache.
    #[error("resource version too old: {0}")]
    Gone(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    /// The member is down or restarting; retry later.
    #[error("member unavailable: {0}")]
    Unavailable(String),
    #[error("member answered {code}: {message}")]
    Status { code: u16, message: String },
}

impl MemberError {
    pub fn from_status(code: StatusCode, body: &[u8]) -> Self {
        let message = serde_json::from_slice::<Value>(body)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or_else(|| String::from_utf8_lossy(body).chars().take(300).collect());
        match code.as_u16() {
            410 => MemberError::Gone(message),
            404 => MemberError::NotFound(message),
            409 => MemberError::Conflict(message),
            500..=599 => MemberError::Unavailable(message),
            code => MemberError::Status { code, message },
        }
    }
}

/// Sends a JSON request as the stand-in and decodes the JSON answer.
pub async fn call(
    client: &kube::Client,
    method: Method,
    path: &str,
    body: Option<&Value>,
    content_type: &str,
) -> Result<Value, MemberError> {
    let bytes = body
        .map(|b| serde_json::to_vec(b).unwrap_or_default())
        .unwrap_or_default();
    let request = http::Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::ACCEPT, "application/json")
        .header(http::header::CONTENT_TYPE, content_type)
        .body(kube::client::Body::from(bytes))
        .map_err(|e| MemberError::Status {
            code: 400,
            message: e.to_string(),
        })?;
    let resp = client
        .send(request)
        .await
        .map_err(|e| MemberError::Unavailable(e.to_string()))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| MemberError::Unavailable(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        return Err(MemberError::from_status(status, &body));
    }
    serde_json::from_slice(&body).map_err(|e| MemberError::Status {
        code: status.as_u16(),
        message: format!("invalid JSON: {e}"),
    })
}

pub async fn get(client: &kube::Client, path: &str) -> Result<Value, MemberError> {
    call(client, Method::GET, path, None, "application/json").await
}

/// A LIST answer reduced to what merging needs.
#[derive(Debug, Clone)]
pub struct Listed {
    pub revision: u64,
    pub api_version: String,
    pub kind: String,
    pub items: Vec<Value>,
}

/// Where to read a LIST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// A quorum read: the newest state and the current etcd revision.
    Latest,
    /// The state exactly at this revision (`resourceVersionMatch=Exact`).
    Exact(u64),
}

/// LISTs `collection_path` (no query) with extra `query` pairs (already encoded).
pub async fn list(
    client: &kube::Client,
    collection_path: &str,
    query: &str,
    at: At,
) -> Result<Listed, MemberError> {
    let mut q = query.to_string();
    if let At::Exact(rv) = at {
        if !q.is_empty() {
            q.push('&');
        }
        q.push_str(&format!("resourceVersion={rv}&resourceVersionMatch=Exact"));
    }
    let path = if q.is_empty() {
        collection_path.to_string()
    } else {
        format!("{collection_path}?{q}")
    };
    let value = get(client, &path).await?;
    let revision = revision_of(value.pointer("/metadata/resourceVersion")).ok_or_else(|| {
        MemberError::Status {
            code: 500,
            message: format!("LIST {collection_path}: no resourceVersion"),
        }
    })?;
    let items = match value.get("items") {
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    };
    Ok(Listed {
        revision,
        api_version: value
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        kind: value
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string(),
        items,
    })
}

pub fn revision_of(v: Option<&Value>) -> Option<u64> {
    v.and_then(Value::as_str).and_then(|s| s.parse().ok())
}

/// The current etcd revision: every member shares one etcd, so any quorum LIST returns it.
pub async fn global_revision(client: &kube::Client) -> Result<u64, MemberError> {
    Ok(list(client, "/api/v1/namespaces", "limit=1", At::Latest)
        .await?
        .revision)
}

/// `/api/v1` or `/apis/<group>/<version>`.
pub fn group_version_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/api/{version}")
    } else {
        format!("/apis/{group}/{version}")
    }
}

/// The collection URL of a resource, optionally in a namespace.
pub fn collection_path(
    group: &str,
    version: &str,
    resource: &str,
    namespace: Option<&str>,
) -> String {
    let gv = group_version_path(group, version);
    match namespace {
        Some(ns) => format!("{gv}/namespaces/{ns}/{resource}"),
        None => format!("{gv}/{resource}"),
    }
}

/// Creates or replaces a cluster-scoped object at `collection`/`name`, keeping what `keep_fields`
/// says from the live object (e.g. status). Returns the stored object.
pub async fn create_or_replace(
    client: &kube::Client,
    collection: &str,
    object: &Value,
) -> Result<Value, MemberError> {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match call(
        client,
        Method::POST,
        collection,
        Some(object),
        "application/json",
    )
    .await
    {
        Err(MemberError::Conflict(_)) | Err(MemberError::Status { code: 409, .. }) => {
            let live = get(client, &format!("{collection}/{name}")).await?;
            let mut desired = object.clone();
            desired["metadata"]["resourceVersion"] = live
                .pointer("/metadata/resourceVersion")
                .cloned()
                .unwrap_or(Value::Null);
            call(
                client,
                Method::PUT,
                &format!("{collection}/{name}"),
                Some(&desired),
                "application/json",
            )
            .await
        }
        other => other,
    }
}

pub async fn merge_patch(
    client: &kube::Client,
    path: &str,
    patch: &Value,
) -> Result<Value, MemberError> {
    call(
        client,
        Method::PATCH,
        path,
        Some(patch),
        "application/merge-patch+json",
    )
    .await
}

pub async fn delete(client: &kube::Client, path: &str) -> Result<(), MemberError> {
    match call(client, Method::DELETE, path, None, "application/json").await {
        Ok(_) | Err(MemberError::NotFound(_)) => Ok(()),
        Err(e) => Err(e),
    }
}
