//! The merged WATCH of `/clusters/*` in an APIExport virtual workspace.
//!
//! Design (see also `resume` and `member_stream`):
//! - One member stream per bound cluster, all started from the client's resourceVersion, merged
//!   by a single coordinator task into one JSON event stream.
//! - Order: each member's events keep their order; across members they are forwarded as they
//!   arrive. 1.20 members give no timely progress signal for idle resources, so holding events
//!   back until every member has passed them would stall. Instead, what a resume needs is
//!   recorded: every forwarded resourceVersion maps to the member positions at that moment (the
//!   resume registry). A client resuming from RV X continues each member from its own position,
//!   so a member-B event with RV 103 still pending when A's 105 went out is delivered after the
//!   reconnect, not lost. An RV the stand-in never handed out (or has forgotten) gets 410 Gone.
//! - Bookmarks are forwarded only with an RV every member stream has passed (the minimum of the
//!   positions), and only when it moved forward.
//! - Joins: a cluster that binds later gets ADDED for its current objects, then its events.
//!   Leaves: a cluster that unbinds gets DELETED for every object the client knows of it (the
//!   state at its position), then its stream stops.
//! - A member restart is handled inside its stream (re-watch, or catch up by diff after a 410).

use std::{collections::HashMap, sync::Arc, time::Duration};

use axum::{body::Body, response::Response};
use bytes::Bytes;
use http::{StatusCode, header};
use serde_json::{Value, json};
use tokio::{sync::mpsc, task::JoinHandle};
use tracing::{debug, info};

use super::{
    annotate,
    bound::ExportKey,
    forward::{KeepFor, encode_line},
    kcp_types::GroupResource,
    member_api::{self, At, MemberError, revision_of},
    member_stream::{self, MemberMsg, MemberTarget, Start, expired_event},
    metrics::WatchLabels,
    names::ClusterId,
    resume::{Change, Lookup, Position, StreamKey, Vector},
    sim::Sim,
    status,
    workspaces::Member,
};

/// Everything a merged watch is about.
#[derive(Clone)]
pub struct WatchSpec {
    pub export: ExportKey,
    pub home: Arc<Member>,
    pub resource: GroupResource,
    pub version: String,
    pub namespace: Option<String>,
    /// Encoded `labelSelector`/`fieldSelector` pairs for the members.
    pub selectors: String,
    pub resource_version: Option<String>,
    pub bookmarks: bool,
    pub timeout: Duration,
    /// Builds the per-cluster object filter (APIBindings to this export only).
    pub keep_for: Option<KeepFor>,
}

impl WatchSpec {
    pub fn stream_key(&self) -> StreamKey {
        StreamKey {
            export: self.export.to_string(),
            group: self.resource.group.clone(),
            resource: self.resource.resource.clone(),
            filter: super::resume::filter_key(self.namespace.as_deref(), &self.selectors),
        }
    }

    fn collection(&self) -> String {
        member_api::collection_path(
            &self.resource.group,
            &self.version,
            &self.resource.resource,
            self.namespace.as_deref(),
        )
    }
}

/// Starts a merged watch and answers with its event stream.
pub async fn serve(sim: Arc<Sim>, spec: WatchSpec) -> Response {
    let key = spec.stream_key();
    let (vector, base_token) = match spec.resource_version.as_deref() {
        None | Some("") | Some("0") => {
            // "Get state and start at most recent": replay everything at one revision.
            let rv = match member_api::global_revision(&spec.home.admin).await {
                Ok(rv) => rv,
                Err(e) => return status::error(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            };
            let clusters = sim
                .bindings
                .export(&spec.export)
                .map(|s| s.clusters_serving(&spec.resource))
                .unwrap_or_default();
            (
                clusters
                    .into_iter()
                    .map(|c| (c, Position::Joining(rv)))
                    .collect::<Vector>(),
                None,
            )
        }
        Some(rv) => {
            let Ok(token) = rv.parse::<u64>() else {
                return status::error(
                    StatusCode::BAD_REQUEST,
                    format!("invalid resourceVersion {rv:?}"),
                );
            };
            match sim.resume.lookup(&key, token) {
                Lookup::Found(v) => (v, Some(token)),
                Lookup::Unknown => {
                    debug!(export = %spec.export, resource = %spec.resource.display(), token, "unknown resume token: 410");
                    return event_stream_response(futures::stream::iter([Ok::<
                        _,
                        std::convert::Infallible,
                    >(
                        encode_line(&expired_event(&format!(
                            "too old resource version: {token}"
                        ))),
                    )]));
                }
            }
        }
    };
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(256);
    let labels = WatchLabels {
        export: spec.export.name.clone(),
        resource: spec.resource.display(),
    };
    let guard = sim.metrics.watch_opened(labels);
    let log = sim.resume.open(&key, vector.clone(), base_token);
    let coordinator = Coordinator::new(sim, spec, key, log, out_tx, vector);
    tokio::spawn(async move {
        let _guard = guard;
        coordinator.run().await;
    });
    let stream = futures::stream::poll_fn(move |cx| {
        out_rx
            .poll_recv(cx)
            .map(|o| o.map(Ok::<_, std::convert::Infallible>))
    });
    event_stream_response(stream)
}

fn event_stream_response<S>(stream: S) -> Response
where
    S: futures::Stream<Item = Result<Bytes, std::convert::Infallible>> + Send + 'static,
{
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-cache, private")
        .body(Body::from_stream(stream))
        .unwrap_or_else(|_| {
            status::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "cannot build the response",
            )
        })
}

struct Reader {
    epoch: u64,
    task: JoinHandle<()>,
}

struct Coordinator {
    sim: Arc<Sim>,
    spec: WatchSpec,
    key: StreamKey,
    log: u64,
    out: mpsc::Sender<Bytes>,
    positions: Vector,
    readers: HashMap<ClusterId, Reader>,
    next_gen: u64,
    msg_tx: mpsc::Sender<MemberMsg>,
    msg_rx: mpsc::Receiver<MemberMsg>,
    type_meta: Option<(String, String)>,
    last_bookmark: u64,
}

/// Why the coordinator stops.
enum Stop {
    ClientGone,
    Expired,
}

impl Coordinator {
    fn new(
        sim: Arc<Sim>,
        spec: WatchSpec,
        key: StreamKey,
        log: u64,
        out: mpsc::Sender<Bytes>,
        positions: Vector,
    ) -> Self {
        let (msg_tx, msg_rx) = mpsc::channel(256);
        let last_bookmark = positions.values().map(|p| p.revision()).min().unwrap_or(0);
        Self {
            sim,
            spec,
            key,
            log,
            out,
            positions,
            readers: HashMap::new(),
            next_gen: 0,
            msg_tx,
            msg_rx,
            type_meta: None,
            last_bookmark,
        }
    }

    async fn run(mut self) {
        let mut generation = self.sim.bindings.subscribe();
        generation.mark_changed();
        let deadline = tokio::time::sleep(self.spec.timeout);
        tokio::pin!(deadline);
        let result: Result<(), Stop> = loop {
            tokio::select! {
                msg = self.msg_rx.recv() => {
                    // The coordinator holds a sender, so the channel never closes while it runs.
                    let Some(msg) = msg else { break Ok(()) };
                    if let Err(stop) = self.handle(msg).await { break Err(stop) }
                }
                changed = generation.changed() => {
                    if changed.is_err() { break Ok(()) }
                    if let Err(stop) = self.reconcile_membership().await { break Err(stop) }
                }
                _ = &mut deadline => break Ok(()),
                _ = self.out.closed() => break Err(Stop::ClientGone),
            }
        };
        if let Err(Stop::Expired) = result {
            info!(export = %self.spec.export, resource = %self.spec.resource.display(), "merged watch expired: client must relist");
        }
        for (_, reader) in self.readers.drain() {
            reader.task.abort();
        }
        self.sim.resume.end(&self.key, self.log);
    }

    async fn write(&self, value: &Value) -> Result<(), Stop> {
        self.out
            .send(encode_line(value))
            .await
            .map_err(|_| Stop::ClientGone)
    }

    fn record(&self, token: Option<u64>, change: Option<Change>) {
        self.sim.resume.record(&self.key, self.log, token, change);
    }

    /// Starts streams for clusters that serve the resource now, stops those that no longer do.
    async fn reconcile_membership(&mut self) -> Result<(), Stop> {
        let serving = self
            .sim
            .bindings
            .export(&self.spec.export)
            .map(|s| s.clusters_serving(&self.spec.resource))
            .unwrap_or_default();
        let leaving: Vec<ClusterId> = self
            .positions
            .keys()
            .chain(self.readers.keys())
            .filter(|c| !serving.contains(c))
            .cloned()
            .collect();
        for cluster in leaving {
            self.leave(&cluster).await?;
        }
        for cluster in serving {
            if self.readers.contains_key(&cluster) {
                continue;
            }
            let start = match self.positions.get(&cluster) {
                Some(pos) => Start::At(*pos),
                None => Start::Latest,
            };
            self.start_reader(cluster, start);
        }
        Ok(())
    }

    fn start_reader(&mut self, cluster: ClusterId, start: Start) {
        let Some(member) = self.sim.workspaces.by_id(&cluster) else {
            return;
        };
        self.next_gen += 1;
        let target = MemberTarget {
            cluster: cluster.clone(),
            epoch: self.next_gen,
            member,
            collection: self.spec.collection(),
            selectors: self.spec.selectors.clone(),
            keep: self.spec.keep_for.as_ref().map(|f| f(&cluster)),
            restarts: self.sim.metrics.member_watch_restarts.clone(),
        };
        let task = tokio::spawn(member_stream::run(target, start, self.msg_tx.clone()));
        self.readers.insert(
            cluster,
            Reader {
                epoch: self.next_gen,
                task,
            },
        );
    }

    /// The cluster left: DELETED for everything the client knows of it, then forget it.
    async fn leave(&mut self, cluster: &ClusterId) -> Result<(), Stop> {
        if let Some(reader) = self.readers.remove(cluster) {
            reader.task.abort();
        }
        let Some(pos) = self.positions.get(cluster).copied() else {
            return Ok(());
        };
        if let Some(member) = self.sim.workspaces.by_id(cluster) {
            let keep = self.spec.keep_for.as_ref().map(|f| f(cluster));
            let mut attempts = 0;
            let items = loop {
                match member_api::list(
                    &member.admin,
                    &self.spec.collection(),
                    &self.spec.selectors,
                    At::Exact(pos.revision()),
                )
                .await
                {
                    Ok(listed) => break listed.items,
                    // The resource went away with the binding: its objects were deleted (and
                    // their DELETED events forwarded) before the binding let go.
                    Err(MemberError::NotFound(_)) => break Vec::new(),
                    Err(MemberError::Gone(message)) => {
                        self.write(&expired_event(&message)).await?;
                        return Err(Stop::Expired);
                    }
                    Err(e) if attempts < 20 => {
                        attempts += 1;
                        debug!(cluster = %cluster, "leave: listing the known state failed, retrying: {e}");
                        tokio::time::sleep(Duration::from_millis(250)).await;
                    }
                    Err(e) => {
                        self.write(&expired_event(&format!(
                            "cannot list the state of a leaving cluster: {e}"
                        )))
                        .await?;
                        return Err(Stop::Expired);
                    }
                }
            };
            for mut item in items {
                if keep.as_ref().is_some_and(|k| !k(&item)) {
                    continue;
                }
                annotate::object(&mut item, cluster);
                let token = revision_of(item.pointer("/metadata/resourceVersion"));
                self.write(&json!({"type": "DELETED", "object": item}))
                    .await?;
                self.record(token, None);
            }
        }
        self.positions.remove(cluster);
        self.record(None, Some(Change::Remove(cluster.clone())));
        Ok(())
    }

    async fn handle(&mut self, msg: MemberMsg) -> Result<(), Stop> {
        let (cluster, epoch) = match &msg {
            MemberMsg::Event { cluster, epoch, .. }
            | MemberMsg::Progress { cluster, epoch, .. }
            | MemberMsg::Expired { cluster, epoch, .. } => (cluster.clone(), *epoch),
        };
        if self.readers.get(&cluster).map(|r| r.epoch) != Some(epoch) {
            return Ok(()); // from a stream stopped since
        }
        match msg {
            MemberMsg::Event {
                event_type,
                object,
                pos,
                ..
            } => {
                if self.type_meta.is_none() {
                    self.type_meta = type_meta(&object);
                }
                let token = revision_of(object.pointer("/metadata/resourceVersion"));
                self.write(&json!({"type": event_type, "object": object}))
                    .await?;
                self.positions.insert(cluster.clone(), pos);
                self.record(token, Some(Change::Set(cluster, pos)));
            }
            MemberMsg::Progress { pos, bookmark, .. } => {
                self.positions.insert(cluster.clone(), pos);
                self.record(None, Some(Change::Set(cluster, pos)));
                if let Some(tm) = bookmark
                    && self.type_meta.is_none()
                    && !tm.1.is_empty()
                {
                    self.type_meta = Some(tm);
                }
                self.maybe_bookmark().await?;
            }
            MemberMsg::Expired { message, .. } => {
                self.write(&expired_event(&message)).await?;
                return Err(Stop::Expired);
            }
        }
        Ok(())
    }

    /// A BOOKMARK at the oldest member position, when every stream watches and it moved on.
    async fn maybe_bookmark(&mut self) -> Result<(), Stop> {
        if !self.spec.bookmarks || self.readers.keys().any(|c| !self.positions.contains_key(c)) {
            return Ok(());
        }
        let Some((api_version, kind)) = self.type_meta.clone() else {
            return Ok(());
        };
        let mut min = u64::MAX;
        for pos in self.positions.values() {
            match pos {
                Position::Watching(rv) => min = min.min(*rv),
                Position::Joining(_) => return Ok(()),
            }
        }
        if min == u64::MAX || min <= self.last_bookmark {
            return Ok(());
        }
        self.last_bookmark = min;
        let event = json!({"type": "BOOKMARK", "object": {
            "apiVersion": api_version, "kind": kind, "metadata": {"resourceVersion": min.to_string()}}});
        self.write(&event).await?;
        self.record(Some(min), None);
        Ok(())
    }
}

fn type_meta(object: &Value) -> Option<(String, String)> {
    let api_version = object.get("apiVersion").and_then(Value::as_str)?;
    let kind = object.get("kind").and_then(Value::as_str)?;
    Some((api_version.to_string(), kind.to_string()))
}
