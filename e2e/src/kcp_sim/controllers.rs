//! Wires the stand-in's controllers: watches APIExports, APIBindings and APIExportEndpointSlices
//! in every workspace, maps events to keys, and runs one worker over the queue.

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use kube::{
    api::{Api, ApiResource, DynamicObject, GroupVersionKind},
    runtime::watcher::{self, Event},
};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{
    binding_reconcile, export_reconcile,
    sim::{Key, Sim},
    slice_reconcile,
    workspaces::Member,
};

fn api_resource(version: &str, kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("apis.kcp.io", version, kind), plural)
}

/// Makes the queue key of a watched object from its workspace and name.
type KeyOf = fn(&Member, String) -> Key;

/// Starts the watches of every workspace and the worker.
pub fn start(sim: Arc<Sim>, rx: mpsc::UnboundedReceiver<Key>) {
    for member in sim.workspaces.all() {
        let kinds: [(ApiResource, KeyOf); 3] = [
            (
                api_resource("v1alpha2", "APIExport", "apiexports"),
                |m, n| Key::Export(m.id.clone(), n),
            ),
            (
                api_resource("v1alpha1", "APIBinding", "apibindings"),
                |m, n| Key::Binding(m.id.clone(), n),
            ),
            (
                api_resource(
                    "v1alpha1",
                    "APIExportEndpointSlice",
                    "apiexportendpointslices",
                ),
                |m, n| Key::Slice(m.id.clone(), n),
            ),
        ];
        for (resource, to_key) in kinds {
            let sim = sim.clone();
            let member = member.clone();
            tokio::spawn(async move {
                let api: Api<DynamicObject> = Api::all_with(member.admin.clone(), &resource);
                let mut events = watcher::watcher(api, watcher::Config::default()).boxed();
                while let Some(event) = events.next().await {
                    match event {
                        Ok(Event::Apply(obj) | Event::InitApply(obj) | Event::Delete(obj)) => {
                            if let Some(name) = obj.metadata.name {
                                sim.queue.add(to_key(&member, name));
                            }
                        }
                        Ok(Event::Init | Event::InitDone) => {}
                        Err(e) => {
                            debug!(workspace = %member.path, kind = %resource.kind, "watch error (retrying): {e}");
                            tokio::time::sleep(Duration::from_millis(500)).await;
                        }
                    }
                }
            });
        }
    }
    tokio::spawn(worker(sim, rx));
}

/// Runs reconciles concurrently, never two of one key at once (a busy key is retried shortly).
async fn worker(sim: Arc<Sim>, mut rx: mpsc::UnboundedReceiver<Key>) {
    let in_flight: Arc<Mutex<HashSet<Key>>> = Arc::default();
    while let Some(key) = rx.recv().await {
        sim.queue.take(&key);
        if !lock(&in_flight).insert(key.clone()) {
            sim.queue.add_after(key, Duration::from_millis(100));
            continue;
        }
        let sim = sim.clone();
        let in_flight = in_flight.clone();
        tokio::spawn(async move {
            let result = match &key {
                Key::Export(cluster, name) => {
                    export_reconcile::reconcile(&sim, cluster, name).await
                }
                Key::Binding(cluster, name) => {
                    binding_reconcile::reconcile(&sim, cluster, name).await
                }
                Key::Slice(cluster, name) => slice_reconcile::reconcile(&sim, cluster, name).await,
            };
            lock(&in_flight).remove(&key);
            match result {
                Ok(Some(after)) => sim.queue.add_after(key, after),
                Ok(None) => {}
                Err(e) => {
                    warn!(?key, "reconcile failed (retrying): {e}");
                    sim.queue.add_after(key, Duration::from_millis(500));
                }
            }
        });
    }
}

fn lock(set: &Mutex<HashSet<Key>>) -> std::sync::MutexGuard<'_, HashSet<Key>> {
    set.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
