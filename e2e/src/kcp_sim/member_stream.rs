//! One member's part of a merged watch: replays state when asked, watches from a revision, and
//! survives the member restarting.
//!
//! After a restart the member's watch cache starts at its restart revision, so re-watching from
//! an older position answers 410. The member's objects could not change while it was down (only
//! it writes its etcd prefix), but events accepted just before it stopped may never have reached
//! us. So on 410 the stream compares the state at its position (a LIST at that exact revision)
//! with the state now and emits the difference, then watches on from now. Only if that old
//! revision is compacted too does the client get 410 (and relists). Nothing is lost silently.

use std::{collections::HashMap, sync::Arc, time::Duration};

use futures::StreamExt;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::{
    annotate,
    forward::Keep,
    lines::lines,
    member_api::{self, At, Listed, MemberError, revision_of},
    names::ClusterId,
    resume::Position,
    workspaces::Member,
};

/// What a member stream reports to its merged watch, in member order.
#[derive(Debug)]
pub enum MemberMsg {
    /// An event for the client; after it the member stands at `pos`.
    Event {
        cluster: ClusterId,
        epoch: u64,
        event_type: &'static str,
        object: Value,
        pos: Position,
    },
    /// The member moved to `pos` without anything for the client (filtered events, bookmarks,
    /// the end of a replay).
    Progress {
        cluster: ClusterId,
        epoch: u64,
        pos: Position,
        bookmark: Option<(String, String)>,
    },
    /// The member cannot continue without the client relisting.
    Expired {
        cluster: ClusterId,
        epoch: u64,
        message: String,
    },
}

/// Where the stream starts.
#[derive(Clone, Copy, Debug)]
pub enum Start {
    /// Replay the newest state (ADDED for each object), then watch (a cluster joining).
    Latest,
    At(Position),
}

/// What one member stream watches.
#[derive(Clone)]
pub struct MemberTarget {
    pub cluster: ClusterId,
    pub epoch: u64,
    pub member: Arc<Member>,
    /// The collection path, e.g. `/api/v1/configmaps`.
    pub collection: String,
    /// Encoded `labelSelector`/`fieldSelector` pairs.
    pub selectors: String,
    pub keep: Option<Keep>,
    pub restarts: prometheus_client::metrics::counter::Counter,
}

const MAX_BACKOFF: Duration = Duration::from_secs(2);

impl MemberTarget {
    fn passes(&self, obj: &Value) -> bool {
        self.keep.as_ref().is_none_or(|keep| keep(obj))
    }

    /// Tells the merger this member's state at the wanted revision is gone for good (410).
    async fn expired(&self, tx: &mpsc::Sender<MemberMsg>, message: String) -> Result<(), Closed> {
        let msg = MemberMsg::Expired {
            cluster: self.cluster.clone(),
            epoch: self.epoch,
            message,
        };
        self.send(tx, msg).await
    }

    async fn send(&self, tx: &mpsc::Sender<MemberMsg>, msg: MemberMsg) -> Result<(), Closed> {
        tx.send(msg).await.map_err(|_| Closed)
    }

    async fn event(
        &self,
        tx: &mpsc::Sender<MemberMsg>,
        event_type: &'static str,
        mut object: Value,
        pos: Position,
    ) -> Result<(), Closed> {
        if !self.passes(&object) {
            return self
                .send(
                    tx,
                    MemberMsg::Progress {
                        cluster: self.cluster.clone(),
                        epoch: self.epoch,
                        pos,
                        bookmark: None,
                    },
                )
                .await;
        }
        annotate::object(&mut object, &self.cluster);
        self.send(
            tx,
            MemberMsg::Event {
                cluster: self.cluster.clone(),
                epoch: self.epoch,
                event_type,
                object,
                pos,
            },
        )
        .await
    }

    async fn progress(&self, tx: &mpsc::Sender<MemberMsg>, pos: Position) -> Result<(), Closed> {
        self.send(
            tx,
            MemberMsg::Progress {
                cluster: self.cluster.clone(),
                epoch: self.epoch,
                pos,
                bookmark: None,
            },
        )
        .await
    }

    async fn list(&self, at: At) -> Result<Listed, MemberError> {
        member_api::list(&self.member.admin, &self.collection, &self.selectors, at).await
    }
}

/// The merged watch went away.
#[derive(Debug)]
pub struct Closed;

/// How one member WATCH request ended.
enum WatchEnd {
    /// The member closed it (its timeout): reopen from the position.
    Closed,
    /// 410: position outside the member's watch cache.
    Gone,
    /// Connection failure or error: retry after a pause.
    Failed(String),
}

/// Runs the stream until the merged watch drops its receiver.
pub async fn run(target: MemberTarget, start: Start, tx: mpsc::Sender<MemberMsg>) {
    let _ = run_inner(&target, start, &tx).await;
}

async fn run_inner(
    target: &MemberTarget,
    start: Start,
    tx: &mpsc::Sender<MemberMsg>,
) -> Result<(), Closed> {
    let start = match start {
        Start::Latest => replay(target, At::Latest, tx).await?,
        Start::At(Position::Joining(rv)) => replay(target, At::Exact(rv), tx).await?,
        Start::At(Position::Watching(rv)) => Some(rv),
    };
    let Some(mut pos_rv) = start else {
        return Ok(());
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        match watch_once(target, &mut pos_rv, tx).await? {
            WatchEnd::Closed => backoff = Duration::from_millis(100),
            WatchEnd::Gone => {
                target.restarts.inc();
                match catch_up(target, pos_rv, tx).await? {
                    Some(now) => pos_rv = now,
                    None => return Ok(()),
                }
            }
            WatchEnd::Failed(why) => {
                debug!(cluster = %target.cluster, collection = %target.collection, "member watch failed, retrying from {pos_rv}: {why}");
                target.restarts.inc();
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Emits ADDED for the state at `at` (retrying while the member is unavailable) and returns the
/// revision to watch from; `None` if the state is gone for good (the client was told).
async fn replay(
    target: &MemberTarget,
    at: At,
    tx: &mpsc::Sender<MemberMsg>,
) -> Result<Option<u64>, Closed> {
    let mut backoff = Duration::from_millis(100);
    let listed = loop {
        match target.list(at).await {
            Ok(l) => break l,
            Err(MemberError::NotFound(_)) => {
                // The resource is not (yet) served there: an empty state at the current revision.
                match member_api::global_revision(&target.member.admin).await {
                    Ok(rv) => {
                        break Listed {
                            revision: if let At::Exact(r) = at { r } else { rv },
                            api_version: String::new(),
                            kind: String::new(),
                            items: vec![],
                        };
                    }
                    Err(e) => debug!(cluster = %target.cluster, "replay: {e}"),
                }
            }
            Err(MemberError::Gone(message)) => {
                target.expired(tx, message).await?;
                return Ok(None);
            }
            Err(e) => debug!(cluster = %target.cluster, "replay list failed, retrying: {e}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    };
    let joining = Position::Joining(listed.revision);
    for item in listed.items {
        target.event(tx, "ADDED", item, joining).await?;
    }
    target
        .progress(tx, Position::Watching(listed.revision))
        .await?;
    Ok(Some(listed.revision))
}

/// After a 410: emit what changed between `pos` and now, return the revision to watch from.
async fn catch_up(
    target: &MemberTarget,
    pos: u64,
    tx: &mpsc::Sender<MemberMsg>,
) -> Result<Option<u64>, Closed> {
    let mut backoff = Duration::from_millis(100);
    let (old, new) = loop {
        let result = async {
            Ok::<_, MemberError>((
                target.list(At::Exact(pos)).await?,
                target.list(At::Latest).await?,
            ))
        }
        .await;
        match result {
            Ok(pair) => break pair,
            Err(MemberError::Gone(message)) => {
                target.expired(tx, message).await?;
                return Ok(None);
            }
            Err(e) => debug!(cluster = %target.cluster, "catch-up list failed, retrying: {e}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    };
    let events = diff(&old.items, &new.items);
    info!(cluster = %target.cluster, collection = %target.collection, from = pos, to = new.revision, missed = events.len(), "member watch resumed after 410");
    // Until the catch-up is complete a resuming client must start over from `pos`.
    for (event_type, object) in events {
        target
            .event(tx, event_type, object, Position::Watching(pos))
            .await?;
    }
    target
        .progress(tx, Position::Watching(new.revision))
        .await?;
    Ok(Some(new.revision))
}

fn object_key(obj: &Value) -> (String, String) {
    let s = |p: &str| {
        obj.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    (s("/metadata/namespace"), s("/metadata/name"))
}

/// The events that turn state `old` into state `new`.
pub fn diff(old: &[Value], new: &[Value]) -> Vec<(&'static str, Value)> {
    let old_by_key: HashMap<(String, String), &Value> =
        old.iter().map(|o| (object_key(o), o)).collect();
    let new_keys: std::collections::HashSet<(String, String)> =
        new.iter().map(object_key).collect();
    let mut out = Vec::new();
    for obj in new {
        match old_by_key.get(&object_key(obj)) {
            None => out.push(("ADDED", obj.clone())),
            Some(prev)
                if prev.pointer("/metadata/resourceVersion")
                    != obj.pointer("/metadata/resourceVersion") =>
            {
                out.push(("MODIFIED", obj.clone()));
            }
            Some(_) => {}
        }
    }
    for obj in old {
        if !new_keys.contains(&object_key(obj)) {
            out.push(("DELETED", obj.clone()));
        }
    }
    out
}

/// One WATCH request from `pos`; forwards events and advances `pos`.
async fn watch_once(
    target: &MemberTarget,
    pos: &mut u64,
    tx: &mpsc::Sender<MemberMsg>,
) -> Result<WatchEnd, Closed> {
    // Short member timeouts make 1.20 send a bookmark (2 s before the deadline) about once a
    // minute, which keeps positions fresh for idle members.
    let timeout = 50 + (pos.wrapping_mul(7919) % 20);
    let mut query =
        format!("watch=1&allowWatchBookmarks=true&timeoutSeconds={timeout}&resourceVersion={pos}");
    if !target.selectors.is_empty() {
        query.push('&');
        query.push_str(&target.selectors);
    }
    let request = match http::Request::builder()
        .uri(format!("{}?{query}", target.collection))
        .header(http::header::ACCEPT, "application/json")
        .body(kube::client::Body::empty())
    {
        Ok(r) => r,
        Err(e) => return Ok(WatchEnd::Failed(e.to_string())),
    };
    let resp = match target.member.admin.send(request).await {
        Ok(r) => r,
        Err(e) => return Ok(WatchEnd::Failed(e.to_string())),
    };
    let status = resp.status();
    if status == http::StatusCode::GONE {
        return Ok(WatchEnd::Gone);
    }
    if !status.is_success() {
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|c| c.to_bytes())
            .unwrap_or_default();
        return Ok(WatchEnd::Failed(
            MemberError::from_status(status, &body).to_string(),
        ));
    }
    let mut events = Box::pin(lines(resp.into_body().into_data_stream()));
    while let Some(line) = events.next().await {
        let line = match line {
            Ok(l) => l,
            Err(e) => return Ok(WatchEnd::Failed(e.to_string())),
        };
        let Ok(event) = serde_json::from_slice::<Value>(&line) else {
            return Ok(WatchEnd::Failed(format!(
                "undecodable watch event: {}",
                String::from_utf8_lossy(&line)
            )));
        };
        let event_type = event
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let object = event.get("object").cloned().unwrap_or(Value::Null);
        match event_type {
            "ERROR" => {
                if object.get("code").and_then(Value::as_u64) == Some(410) {
                    return Ok(WatchEnd::Gone);
                }
                return Ok(WatchEnd::Failed(format!("watch error: {object}")));
            }
            "BOOKMARK" => {
                if let Some(rv) = revision_of(object.pointer("/metadata/resourceVersion")) {
                    *pos = (*pos).max(rv);
                    let type_meta = (
                        object
                            .get("apiVersion")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                        object
                            .get("kind")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    );
                    target
                        .send(
                            tx,
                            MemberMsg::Progress {
                                cluster: target.cluster.clone(),
                                epoch: target.epoch,
                                pos: Position::Watching(*pos),
                                bookmark: Some(type_meta),
                            },
                        )
                        .await?;
                }
            }
            "ADDED" | "MODIFIED" | "DELETED" => {
                let Some(rv) = revision_of(object.pointer("/metadata/resourceVersion")) else {
                    continue;
                };
                *pos = rv;
                let event_type = match event_type {
                    "ADDED" => "ADDED",
                    "MODIFIED" => "MODIFIED",
                    _ => "DELETED",
                };
                target
                    .event(tx, event_type, object, Position::Watching(rv))
                    .await?;
            }
            _ => {}
        }
    }
    Ok(WatchEnd::Closed)
}

/// The `ERROR` event an apiserver sends when a watch's revision is too old.
pub fn expired_event(message: &str) -> Value {
    json!({"type": "ERROR", "object": super::status::status_object(http::StatusCode::GONE, message)})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(name: &str, rv: &str) -> Value {
        json!({"metadata": {"namespace": "n", "name": name, "resourceVersion": rv}})
    }

    #[test]
    fn diff_turns_old_state_into_new() {
        let old = vec![obj("same", "1"), obj("changed", "2"), obj("gone", "3")];
        let new = vec![obj("same", "1"), obj("changed", "9"), obj("added", "10")];
        let mut events: Vec<(&str, String)> = diff(&old, &new)
            .into_iter()
            .map(|(t, o)| (t, o["metadata"]["name"].as_str().unwrap().to_string()))
            .collect();
        events.sort();
        assert_eq!(
            events,
            vec![
                ("ADDED", "added".into()),
                ("DELETED", "gone".into()),
                ("MODIFIED", "changed".into())
            ]
        );
    }
}
