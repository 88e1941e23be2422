//! May this caller use this APIExport's virtual workspace? A TokenReview and then a
//! SubjectAccessReview for `apis.kcp.io apiexports/content` in the export's workspace, as kcp's
//! content authorizer asks; answers are cached briefly, keyed by a hash of the token.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use http::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::member_api::{self, MemberError};

/// How long an answer is reused (the apiserver's webhook authorizer caches for similar times).
const TTL: Duration = Duration::from_secs(5);

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed {
        user: String,
    },
    /// Authenticated as `user` but not allowed.
    Denied {
        user: String,
        reason: String,
    },
    Unauthenticated,
}

/// Answers by (token hash, export, verb), with when they were given.
type Cache = HashMap<(String, String, String), (Decision, Instant)>;

#[derive(Default)]
pub struct Authorizer {
    cache: Mutex<Cache>,
}

impl Authorizer {
    /// Decides whether the bearer `token` may `verb` the content of export `name`, asking the
    /// export's workspace as the stand-in (`home`).
    pub async fn authorize(
        &self,
        home: &kube::Client,
        token: &str,
        export: &str,
        verb: &str,
    ) -> Result<Decision, MemberError> {
        let key = (
            hex(&Sha256::digest(token.as_bytes())),
            export.to_string(),
            verb.to_string(),
        );
        if let Some((decision, at)) = self.lock().get(&key)
            && at.elapsed() < TTL
        {
            return Ok(decision.clone());
        }
        let decision = decide(home, token, export, verb).await?;
        let mut cache = self.lock();
        if cache.len() > 10_000 {
            cache.retain(|_, (_, at)| at.elapsed() < TTL);
        }
        cache.insert(key, (decision.clone(), Instant::now()));
        Ok(decision)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

async fn decide(
    home: &kube::Client,
    token: &str,
    export: &str,
    verb: &str,
) -> Result<Decision, MemberError> {
    let review = json!({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}});
    let reviewed = member_api::call(
        home,
        Method::POST,
        "/apis/authentication.k8s.io/v1/tokenreviews",
        Some(&review),
        "application/json",
    )
    .await?;
    if reviewed.pointer("/status/authenticated") != Some(&Value::Bool(true)) {
        return Ok(Decision::Unauthenticated);
    }
    let user = reviewed
        .pointer("/status/user")
        .cloned()
        .unwrap_or(Value::Null);
    let username = user
        .get("username")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let sar = json!({
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": username,
            "uid": user.get("uid"),
            "groups": user.get("groups"),
            "extra": user.get("extra"),
            "resourceAttributes": {
                "group": "apis.kcp.io",
                "resource": "apiexports",
                "subresource": "content",
                "name": export,
                "verb": verb,
            },
        },
    });
    let answer = member_api::call(
        home,
        Method::POST,
        "/apis/authorization.k8s.io/v1/subjectaccessreviews",
        Some(&sar),
        "application/json",
    )
    .await?;
    if answer.pointer("/status/allowed") == Some(&Value::Bool(true)) {
        Ok(Decision::Allowed { user: username })
    } else {
        let reason = answer
            .pointer("/status/reason")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok(Decision::Denied {
            user: username,
            reason,
        })
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bearer token of an `Authorization` header, if there is one.
pub fn bearer(headers: &http::HeaderMap) -> Option<&str> {
    headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}
