//! Forwarding one HTTP request to a member apiserver and its answer back, optionally stamping
//! `kcp.io/cluster` on JSON objects (whole bodies, or event by event for watches).

use axum::{body::Body, response::Response};
use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderName, Method, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::Value;

use super::{annotate, lines::lines, names::ClusterId, status};

/// Largest request body the stand-in forwards (the apiserver's own limit is 3 MiB per object).
pub const MAX_REQUEST_BODY: usize = 8 << 20;

/// Headers never forwarded: hop-by-hop ones, and those the stand-in recomputes.
const DROPPED: &[HeaderName] = &[
    header::CONNECTION,
    header::HOST,
    header::CONTENT_LENGTH,
    header::TRANSFER_ENCODING,
    header::TE,
    header::TRAILER,
    header::UPGRADE,
    header::PROXY_AUTHORIZATION,
    // Bodies are rewritten as JSON; compression would hide them.
    header::ACCEPT_ENCODING,
];

/// Who the member sees as the caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Identity {
    /// The caller's own `Authorization` (and impersonation) headers.
    Caller,
    /// The stand-in's admin identity: caller credentials are dropped.
    StandIn,
}

/// A request ready to send to a member.
pub struct Outgoing {
    pub method: Method,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Outgoing {
    pub fn new(
        method: Method,
        path_and_query: String,
        incoming: &HeaderMap,
        body: Bytes,
        identity: Identity,
    ) -> Self {
        let mut headers = HeaderMap::new();
        for (name, value) in incoming {
            if DROPPED.contains(name) {
                continue;
            }
            let n = name.as_str();
            if identity == Identity::StandIn
                && (name == header::AUTHORIZATION || n.starts_with("impersonate-"))
            {
                continue;
            }
            headers.append(name.clone(), value.clone());
        }
        Self {
            method,
            path_and_query,
            headers,
            body,
        }
    }

    pub async fn send(
        self,
        client: &kube::Client,
    ) -> Result<http::Response<kube::client::Body>, kube::Error> {
        let mut builder = http::Request::builder()
            .method(self.method)
            .uri(self.path_and_query);
        if let Some(h) = builder.headers_mut() {
            *h = self.headers;
        }
        let request = builder
            .body(kube::client::Body::from(self.body))
            .map_err(kube::Error::HttpError)?;
        client.send(request).await
    }
}

/// A predicate on objects (e.g. "an APIBinding to this export").
pub type Keep = std::sync::Arc<dyn Fn(&Value) -> bool + Send + Sync>;

/// Builds the [`Keep`] predicate for one logical cluster.
pub type KeepFor = std::sync::Arc<dyn Fn(&ClusterId) -> Keep + Send + Sync>;

/// What to do to a JSON answer on the way back.
#[derive(Clone)]
pub enum Rewrite {
    None,
    /// Stamp `kcp.io/cluster`, optionally keeping only objects `keep` accepts (list items and
    /// watch events; a single object failing it becomes 404).
    Annotate {
        cluster: ClusterId,
        keep: Option<Keep>,
    },
}

/// Turns a member's answer into the stand-in's answer.
pub async fn respond(
    resp: http::Response<kube::client::Body>,
    rewrite: Rewrite,
    is_watch: bool,
) -> Response {
    let (parts, body) = resp.into_parts();
    let is_json = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    let mut builder = Response::builder().status(parts.status);
    for (name, value) in &parts.headers {
        if !DROPPED.contains(name) {
            builder = builder.header(name, value);
        }
    }
    let Rewrite::Annotate { cluster, keep } = rewrite else {
        return builder.body(Body::new(body)).unwrap_or_else(|_| internal());
    };
    if !is_json {
        return builder.body(Body::new(body)).unwrap_or_else(|_| internal());
    }
    if is_watch && parts.status.is_success() {
        let stream = lines(body.into_data_stream()).filter_map(move |line| {
            let cluster = cluster.clone();
            let keep = keep.clone();
            async move {
                match line {
                    Ok(line) => {
                        let Ok(mut event) = serde_json::from_slice::<Value>(&line) else {
                            return Some(Ok(with_newline(&line)));
                        };
                        if let (Some(keep), Some(obj)) = (keep.as_ref(), event.get("object"))
                            && event.get("type").and_then(Value::as_str) != Some("BOOKMARK")
                            && event.get("type").and_then(Value::as_str) != Some("ERROR")
                            && !keep(obj)
                        {
                            return None;
                        }
                        annotate::response(&mut event, &cluster);
                        Some(Ok(encode_line(&event)))
                    }
                    Err(e) => Some(Err(e)),
                }
            }
        });
        return builder
            .body(Body::from_stream(stream))
            .unwrap_or_else(|_| internal());
    }
    let bytes = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return status::error(
                StatusCode::BAD_GATEWAY,
                format!("reading the member's answer: {e}"),
            );
        }
    };
    let Ok(mut value) = serde_json::from_slice::<Value>(&bytes) else {
        return builder
            .body(Body::from(bytes))
            .unwrap_or_else(|_| internal());
    };
    if let Some(keep) = keep {
        if let Some(items) = value.get_mut("items").and_then(Value::as_array_mut) {
            items.retain(|item| keep(item));
        } else if parts.status.is_success()
            && value.get("kind").and_then(Value::as_str) != Some("Status")
            && !keep(&value)
        {
            return status::error(StatusCode::NOT_FOUND, "not found in this virtual workspace");
        }
    }
    annotate::response(&mut value, &cluster);
    builder
        .body(Body::from(serde_json::to_vec(&value).unwrap_or_default()))
        .unwrap_or_else(|_| internal())
}

fn with_newline(line: &[u8]) -> Bytes {
    let mut v = Vec::with_capacity(line.len() + 1);
    v.extend_from_slice(line);
    v.push(b'\n');
    Bytes::from(v)
}

/// One watch event as the apiserver writes it: a JSON document and a newline.
pub fn encode_line(value: &Value) -> Bytes {
    let mut v = serde_json::to_vec(value).unwrap_or_default();
    v.push(b'\n');
    Bytes::from(v)
}

fn internal() -> Response {
    status::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "cannot build the response",
    )
}

/// Reads a request body up to [`MAX_REQUEST_BODY`].
pub async fn read_body(body: Body) -> Result<Bytes, Response> {
    match axum::body::to_bytes(body, MAX_REQUEST_BODY).await {
        Ok(b) => Ok(b),
        Err(e) => Err(status::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body: {e}"),
        )),
    }
}
