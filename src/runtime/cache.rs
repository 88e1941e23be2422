//! A multicluster cache of one resource type, filled by one wildcard watch per endpoint.
//!
//! Cost grows with objects, not with clusters × types: whatever the number of logical clusters
//! behind a virtual-workspace URL, there is exactly one watch per resource type on it
//! (`/clusters/*/…`), and every object is filed under the cluster its `kcp.io/cluster`
//! annotation names.
//!
//! NOTE: `clusters` is canonical; indexes live inside each cluster's entry and change under the
//! same shard lock as the objects they point to, so they can never disagree with them.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::pin::pin;
use std::sync::{Arc, RwLock};

use dashmap::DashMap;
use futures::StreamExt as _;
use kube::api::{Api, ObjectMeta};
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use super::object::{Entry, LocalName, ObjectKey, Tolerant};
use crate::provider::{ClusterId, Endpoint};

/// The built-in index of objects by the uid of their controller owner.
pub const OWNER_INDEX: &str = "owner-uid";

/// What a controller needs to know of a cache it reads, whatever the cached type.
pub trait SyncState: Send + Sync {
    /// `<plural>.<group>` of the cached type.
    fn resource(&self) -> &str;
    /// Whether the watch of endpoint `instance` completed its first LIST (true if the endpoint
    /// is not watched: nothing to wait for).
    fn is_endpoint_synced(&self, instance: u64) -> bool;
}

impl<K: CachedResource> SyncState for Cache<K> {
    fn resource(&self) -> &str {
        Cache::resource(self)
    }
    fn is_endpoint_synced(&self, instance: u64) -> bool {
        Cache::is_endpoint_synced(self, instance)
    }
}

/// Computes the values an object is indexed under (several allowed).
pub type Indexer<K> = Arc<dyn Fn(&K) -> Vec<String> + Send + Sync>;

/// What resource types a [`Cache`] can hold.
pub trait CachedResource:
    Resource<DynamicType = ()> + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static
{
}

impl<K> CachedResource for K where
    K: Resource<DynamicType = ()> + DeserializeOwned + Clone + fmt::Debug + Send + Sync + 'static
{
}

/// A change the cache made, as listeners see it.
#[derive(Debug)]
pub enum CacheEvent<'a, K> {
    /// Created or changed (`old` is `None` when new to the cache).
    Applied {
        key: &'a ObjectKey,
        old: Option<&'a Entry<K>>,
        new: &'a Entry<K>,
    },
    /// Gone from the cluster.
    Deleted {
        key: &'a ObjectKey,
        old: &'a Entry<K>,
    },
}

impl<K> CacheEvent<'_, K> {
    pub fn key(&self) -> &ObjectKey {
        match self {
            Self::Applied { key, .. } | Self::Deleted { key, .. } => key,
        }
    }
}

type Listener<K> = Box<dyn Fn(&CacheEvent<'_, K>) + Send + Sync>;

/// The objects of one cluster, and where they came from.
struct ClusterObjects<K> {
    /// [`Endpoint::instance`] of the watch that filled it.
    endpoint: u64,
    objects: HashMap<LocalName, Entry<K>>,
    /// (index name, value) → objects.
    index: HashMap<(&'static str, String), HashSet<LocalName>>,
}

impl<K> ClusterObjects<K> {
    fn new(endpoint: u64) -> Self {
        Self {
            endpoint,
            objects: HashMap::new(),
            index: HashMap::new(),
        }
    }
}

/// One resource type, across every engaged cluster.
pub struct Cache<K: CachedResource> {
    resource: String,
    /// Only objects matching it are watched (`None`: all).
    label_selector: Option<String>,
    clusters: DashMap<ClusterId, ClusterObjects<K>>,
    indexers: RwLock<Vec<(&'static str, Indexer<K>)>>,
    listeners: RwLock<Vec<Listener<K>>>,
    /// [`Endpoint::instance`] → whether its first LIST completed.
    synced: DashMap<u64, bool>,
    synced_changed: watch::Sender<()>,
}

impl<K: CachedResource> fmt::Debug for Cache<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("resource", &self.resource)
            .field("clusters", &self.clusters.len())
            .finish()
    }
}

impl<K: CachedResource> Default for Cache<K> {
    fn default() -> Self {
        Self::new()
    }
}

impl<K: CachedResource> Cache<K> {
    /// A cache of every object of `K`.
    pub fn new() -> Self {
        Self::selecting(None)
    }

    /// A cache of the objects of `K` matching `label_selector` (`None`: all).
    pub fn selecting(label_selector: Option<String>) -> Self {
        let resource = match K::group(&()).as_ref() {
            "" => K::plural(&()).into_owned(),
            group => format!("{}.{group}", K::plural(&())),
        };
        let owner_indexer: Indexer<K> = Arc::new(|object: &K| {
            object
                .owner_references()
                .iter()
                .filter(|r| r.controller == Some(true))
                .map(|r| r.uid.clone())
                .collect()
        });
        Self {
            resource,
            label_selector,
            clusters: DashMap::new(),
            indexers: RwLock::new(vec![(OWNER_INDEX, owner_indexer)]),
            listeners: RwLock::default(),
            synced: DashMap::new(),
            synced_changed: watch::channel(()).0,
        }
    }

    /// `<plural>.<group>` of the cached type.
    pub fn resource(&self) -> &str {
        &self.resource
    }

    /// The label selector the cache watches with, if any.
    pub fn label_selector(&self) -> Option<&str> {
        self.label_selector.as_deref()
    }

    /// Adds an index. Call before the cache starts watching.
    pub fn add_index(
        &self,
        name: &'static str,
        indexer: impl Fn(&K) -> Vec<String> + Send + Sync + 'static,
    ) {
        self.indexers
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push((name, Arc::new(indexer)));
    }

    /// Calls `listener` on every later change. Listeners run on the watch task: keep them quick.
    pub fn on_change(&self, listener: impl Fn(&CacheEvent<'_, K>) + Send + Sync + 'static) {
        self.listeners
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .push(Box::new(listener));
    }

    /// The object at `key`, if cached and well-formed.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<K>> {
        self.entry(key).and_then(|e| e.valid().cloned())
    }

    /// Whatever is cached at `key`, malformed objects included.
    pub fn entry(&self, key: &ObjectKey) -> Option<Entry<K>> {
        self.clusters
            .get(&key.cluster)?
            .objects
            .get(&key.local())
            .cloned()
    }

    /// The well-formed objects of `cluster`, optionally only those in `namespace`.
    pub fn list(&self, cluster: &ClusterId, namespace: Option<&str>) -> Vec<Arc<K>> {
        let Some(objects) = self.clusters.get(cluster) else {
            return Vec::new();
        };
        objects
            .objects
            .iter()
            .filter(|((ns, _), _)| namespace.is_none() || ns.as_deref() == namespace)
            .filter_map(|(_, entry)| entry.valid().cloned())
            .collect()
    }

    /// Keys of every object (malformed included) of `cluster`.
    pub fn keys(&self, cluster: &ClusterId) -> Vec<ObjectKey> {
        let Some(objects) = self.clusters.get(cluster) else {
            return Vec::new();
        };
        objects
            .objects
            .keys()
            .map(|(ns, name)| ObjectKey::new(cluster.clone(), ns.clone(), name))
            .collect()
    }

    /// Well-formed objects of `cluster` that `index` files under `value`.
    pub fn by_index(&self, cluster: &ClusterId, index: &'static str, value: &str) -> Vec<Arc<K>> {
        let Some(objects) = self.clusters.get(cluster) else {
            return Vec::new();
        };
        let Some(names) = objects.index.get(&(index, value.to_owned())) else {
            return Vec::new();
        };
        names
            .iter()
            .filter_map(|name| objects.objects.get(name))
            .filter_map(|e| e.valid().cloned())
            .collect()
    }

    /// Keys of the cached objects that do not decode, over all clusters.
    pub fn malformed(&self) -> Vec<ObjectKey> {
        let mut keys = Vec::new();
        for cluster in self.clusters.iter() {
            for ((namespace, name), entry) in &cluster.objects {
                if matches!(entry, Entry::Malformed(_)) {
                    keys.push(ObjectKey::new(
                        cluster.key().clone(),
                        namespace.clone(),
                        name,
                    ));
                }
            }
        }
        keys
    }

    /// Number of cached objects over all clusters.
    pub fn len(&self) -> usize {
        self.clusters.iter().map(|c| c.objects.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of clusters with at least one cached object.
    pub fn cluster_count(&self) -> usize {
        self.clusters.len()
    }

    /// Whether every endpoint watched so far completed its first LIST.
    pub fn is_synced(&self) -> bool {
        self.synced.iter().all(|e| *e.value())
    }

    /// Whether the watch of endpoint `instance` completed its first LIST (true if it is not
    /// watched: nothing to wait for).
    pub fn is_endpoint_synced(&self, instance: u64) -> bool {
        self.synced.get(&instance).is_none_or(|synced| *synced)
    }

    /// Waits until [`Self::is_synced`].
    pub async fn wait_synced(&self) {
        let mut changed = self.synced_changed.subscribe();
        while !self.is_synced() {
            if changed.changed().await.is_err() {
                return;
            }
        }
    }

    /// Watches `endpoint` until it is cancelled; then forgets its objects.
    ///
    /// Relists (after a 410 Gone or a reconnect) are reconciled against the cache: unchanged
    /// objects (same resourceVersion) make no event, vanished ones make a `Deleted`.
    ///
    /// The endpoint counts as unsynced from the moment this is called, not when the returned
    /// future first runs, so no reconcile can start in between on an empty cache.
    pub fn watch_endpoint(
        self: Arc<Self>,
        endpoint: Arc<Endpoint>,
    ) -> impl Future<Output = ()> + Send + 'static {
        let id = endpoint.instance();
        self.synced.insert(id, false);
        self.run_watch(endpoint)
    }

    async fn run_watch(self: Arc<Self>, endpoint: Arc<Endpoint>) {
        let id = endpoint.instance();
        let api = Api::<Tolerant<K>>::all(endpoint.wildcard_client());
        let mut config = watcher::Config::default();
        if let Some(selector) = &self.label_selector {
            config = config.labels(selector);
        }
        let mut events = pin!(watcher::watcher(api, config).default_backoff());
        let mut relisted: Option<HashSet<ObjectKey>> = None;
        let cancel = endpoint.cancellation().clone();
        loop {
            let event = tokio::select! {
                () = cancel.cancelled() => break,
                event = events.next() => event,
            };
            match event {
                None => break,
                Some(Ok(Event::Init)) => relisted = Some(HashSet::new()),
                Some(Ok(Event::InitApply(object))) => {
                    if let Some(key) = self.apply(&endpoint, object) {
                        relisted.get_or_insert_with(HashSet::new).insert(key);
                    }
                }
                Some(Ok(Event::InitDone)) => {
                    self.prune(id, &relisted.take().unwrap_or_default());
                    self.mark_synced(&endpoint);
                }
                Some(Ok(Event::Apply(object))) => {
                    self.apply(&endpoint, object);
                }
                Some(Ok(Event::Delete(object))) => self.delete(&endpoint, object),
                Some(Err(err)) => {
                    tracing::warn!(resource = %self.resource, endpoint = endpoint.url(), error = %err, "watch failed; retrying");
                }
            }
        }
        self.forget_endpoint(id);
    }

    fn apply(&self, endpoint: &Endpoint, mut object: Tolerant<K>) -> Option<ObjectKey> {
        // Field-manager bookkeeping is often the largest part of an object and no reconciler
        // reads it (as controller-runtime's TransformStripManagedFields).
        object.meta_mut().managed_fields = None;
        let entry = Entry::from(object);
        let key = self.key_of(endpoint, entry.meta())?;
        if let Entry::Malformed(malformed) = &entry {
            tracing::warn!(
                resource = %self.resource, cluster = %key.cluster, namespace = ?key.namespace, name = %key.name,
                error = %malformed.error, "object does not decode; it is reported on itself and skipped"
            );
        }
        let indexers = self.indexers.read().unwrap_or_else(|p| p.into_inner());
        let mut cluster = self
            .clusters
            .entry(key.cluster.clone())
            .or_insert_with(|| ClusterObjects::new(endpoint.instance()));
        cluster.endpoint = endpoint.instance();
        let local = key.local();
        let old = cluster.objects.get(&local);
        if old.is_some_and(|old| {
            old.resource_version() == entry.resource_version() && entry.resource_version().is_some()
        }) {
            return Some(key);
        }
        let old = cluster.objects.insert(local.clone(), entry.clone());
        if let Some(old) = &old {
            unindex(&mut cluster, &indexers, old, &local);
        }
        index(&mut cluster, &indexers, &entry, &local);
        drop(cluster);
        self.notify(&CacheEvent::Applied {
            key: &key,
            old: old.as_ref(),
            new: &entry,
        });
        Some(key)
    }

    fn delete(&self, endpoint: &Endpoint, object: Tolerant<K>) {
        let entry = Entry::from(object);
        let Some(key) = self.key_of(endpoint, entry.meta()) else {
            return;
        };
        self.remove(&key);
    }

    fn remove(&self, key: &ObjectKey) {
        let indexers = self.indexers.read().unwrap_or_else(|p| p.into_inner());
        let Some(mut cluster) = self.clusters.get_mut(&key.cluster) else {
            return;
        };
        let local = key.local();
        let Some(old) = cluster.objects.remove(&local) else {
            return;
        };
        unindex(&mut cluster, &indexers, &old, &local);
        let now_empty = cluster.objects.is_empty();
        drop(cluster);
        if now_empty {
            self.clusters
                .remove_if(&key.cluster, |_, c| c.objects.is_empty());
        }
        self.notify(&CacheEvent::Deleted { key, old: &old });
    }

    /// After a relist of `endpoint`: everything of it not seen again is gone.
    fn prune(&self, endpoint: u64, seen: &HashSet<ObjectKey>) {
        let mut vanished = Vec::new();
        for cluster in self.clusters.iter().filter(|c| c.endpoint == endpoint) {
            for (ns, name) in cluster.objects.keys() {
                let key = ObjectKey::new(cluster.key().clone(), ns.clone(), name);
                if !seen.contains(&key) {
                    vanished.push(key);
                }
            }
        }
        for key in vanished {
            self.remove(&key);
        }
    }

    fn forget_endpoint(&self, endpoint: u64) {
        self.clusters.retain(|_, c| c.endpoint != endpoint);
        self.synced.remove(&endpoint);
        self.synced_changed.send_replace(());
    }

    fn mark_synced(&self, endpoint: &Endpoint) {
        if let Some(mut synced) = self.synced.get_mut(&endpoint.instance())
            && !*synced
        {
            *synced = true;
            tracing::debug!(resource = %self.resource, endpoint = endpoint.url(), "cache synced");
        }
        self.synced_changed.send_replace(());
    }

    fn key_of(&self, endpoint: &Endpoint, meta: &ObjectMeta) -> Option<ObjectKey> {
        match endpoint.cluster_of(meta) {
            Some(cluster) => Some(ObjectKey::from_meta(cluster, meta)),
            None => {
                tracing::warn!(
                    resource = %self.resource, endpoint = endpoint.url(), name = ?meta.name,
                    "object from a wildcard watch has no kcp.io/cluster annotation; ignored"
                );
                None
            }
        }
    }

    fn notify(&self, event: &CacheEvent<'_, K>) {
        let listeners = self.listeners.read().unwrap_or_else(|p| p.into_inner());
        for listener in listeners.iter() {
            listener(event);
        }
    }
}

/// The (index, value) slots `entry` is filed under; malformed objects are in no index.
fn index_slots<K: CachedResource>(
    indexers: &[(&'static str, Indexer<K>)],
    entry: &Entry<K>,
) -> Vec<(&'static str, String)> {
    let Entry::Valid(object) = entry else {
        return Vec::new();
    };
    indexers
        .iter()
        .flat_map(|(name, indexer)| indexer(object).into_iter().map(|value| (*name, value)))
        .collect()
}

fn index<K: CachedResource>(
    cluster: &mut ClusterObjects<K>,
    indexers: &[(&'static str, Indexer<K>)],
    entry: &Entry<K>,
    local: &LocalName,
) {
    for slot in index_slots(indexers, entry) {
        cluster.index.entry(slot).or_default().insert(local.clone());
    }
}

fn unindex<K: CachedResource>(
    cluster: &mut ClusterObjects<K>,
    indexers: &[(&'static str, Indexer<K>)],
    entry: &Entry<K>,
    local: &LocalName,
) {
    for slot in index_slots(indexers, entry) {
        if let Some(names) = cluster.index.get_mut(&slot) {
            names.remove(local);
            if names.is_empty() {
                cluster.index.remove(&slot);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::provider::EndpointKind;

    fn vw_endpoint() -> Endpoint {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
                .unwrap();
        Endpoint::new(
            "https://vw/services/apiexport/x/kube-bind.io",
            EndpointKind::VirtualWorkspace,
            client,
            CancellationToken::new(),
        )
    }

    fn config_map(cluster: &str, name: &str, rv: &str, owner: Option<&str>) -> Tolerant<ConfigMap> {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some(name.into());
        cm.metadata.namespace = Some("ns".into());
        cm.metadata.resource_version = Some(rv.into());
        cm.metadata.annotations = Some([("kcp.io/cluster".to_owned(), cluster.to_owned())].into());
        cm.metadata.owner_references = owner.map(|uid| {
            vec![OwnerReference {
                uid: uid.into(),
                controller: Some(true),
                ..Default::default()
            }]
        });
        Tolerant::Valid(cm)
    }

    fn key(cluster: &str, name: &str) -> ObjectKey {
        ObjectKey::new(ClusterId::new(cluster), Some("ns".into()), name)
    }

    fn recorded(cache: &Cache<ConfigMap>) -> Arc<Mutex<Vec<String>>> {
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = log.clone();
        cache.on_change(move |event| {
            let line = match event {
                CacheEvent::Applied { key, old: None, .. } => format!("add {key}"),
                CacheEvent::Applied {
                    key, old: Some(_), ..
                } => format!("update {key}"),
                CacheEvent::Deleted { key, .. } => format!("delete {key}"),
            };
            sink.lock().unwrap().push(line);
        });
        log
    }

    #[tokio::test]
    async fn objects_are_filed_by_their_cluster_annotation() {
        let cache = Cache::<ConfigMap>::new();
        let endpoint = vw_endpoint();
        cache.apply(&endpoint, config_map("a", "x", "1", None));
        cache.apply(&endpoint, config_map("b", "x", "2", None));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.cluster_count(), 2);
        assert!(cache.get(&key("a", "x")).is_some());
        assert_eq!(cache.list(&ClusterId::new("b"), Some("ns")).len(), 1);
        assert!(cache.list(&ClusterId::new("b"), Some("other")).is_empty());

        let mut unannotated = config_map("a", "y", "3", None);
        if let Tolerant::Valid(cm) = &mut unannotated {
            cm.metadata.annotations = None;
        }
        assert!(
            cache.apply(&endpoint, unannotated).is_none(),
            "no cluster, no entry"
        );
        assert_eq!(cache.len(), 2);
    }

    #[tokio::test]
    async fn unchanged_resource_versions_make_no_event() {
        let cache = Cache::<ConfigMap>::new();
        let log = recorded(&cache);
        let endpoint = vw_endpoint();
        cache.apply(&endpoint, config_map("a", "x", "1", None));
        cache.apply(&endpoint, config_map("a", "x", "1", None));
        cache.apply(&endpoint, config_map("a", "x", "2", None));
        assert_eq!(*log.lock().unwrap(), ["add a|ns/x", "update a|ns/x"]);
    }

    #[tokio::test]
    async fn a_relist_deletes_what_was_not_seen_again() {
        let cache = Cache::<ConfigMap>::new();
        let log = recorded(&cache);
        let endpoint = vw_endpoint();
        cache.apply(&endpoint, config_map("a", "x", "1", None));
        cache.apply(&endpoint, config_map("a", "y", "2", None));
        let seen: HashSet<ObjectKey> = [cache
            .apply(&endpoint, config_map("a", "y", "2", None))
            .unwrap()]
        .into();
        cache.prune(endpoint.instance(), &seen);
        assert_eq!(
            *log.lock().unwrap(),
            ["add a|ns/x", "add a|ns/y", "delete a|ns/x"]
        );
        assert_eq!(cache.keys(&ClusterId::new("a")), [key("a", "y")]);
    }

    #[tokio::test]
    async fn the_owner_index_follows_updates_and_deletes() {
        let cache = Cache::<ConfigMap>::new();
        let endpoint = vw_endpoint();
        let cluster = ClusterId::new("a");
        cache.apply(&endpoint, config_map("a", "x", "1", Some("owner-1")));
        cache.apply(&endpoint, config_map("a", "y", "1", Some("owner-1")));
        assert_eq!(cache.by_index(&cluster, OWNER_INDEX, "owner-1").len(), 2);
        cache.apply(&endpoint, config_map("a", "x", "2", Some("owner-2")));
        assert_eq!(cache.by_index(&cluster, OWNER_INDEX, "owner-1").len(), 1);
        assert_eq!(cache.by_index(&cluster, OWNER_INDEX, "owner-2").len(), 1);
        cache.remove(&key("a", "y"));
        assert!(cache.by_index(&cluster, OWNER_INDEX, "owner-1").is_empty());
    }

    #[tokio::test]
    async fn custom_indexes() {
        let cache = Cache::<ConfigMap>::new();
        cache.add_index("by-name-length", |cm: &ConfigMap| {
            vec![cm.name_any().len().to_string()]
        });
        let endpoint = vw_endpoint();
        cache.apply(&endpoint, config_map("a", "xx", "1", None));
        cache.apply(&endpoint, config_map("b", "yy", "1", None));
        assert_eq!(
            cache
                .by_index(&ClusterId::new("a"), "by-name-length", "2")
                .len(),
            1
        );
        cache.remove(&key("a", "xx"));
        assert!(
            cache
                .by_index(&ClusterId::new("a"), "by-name-length", "2")
                .is_empty()
        );
        assert_eq!(cache.len(), 1);
    }

    #[tokio::test]
    async fn the_ending_watch_of_a_closed_endpoint_leaves_its_reopened_successor_alone() {
        let cache = Cache::<ConfigMap>::new();
        // The same URL closed and opened again: two endpoints, two instances.
        let (old, new) = (vw_endpoint(), vw_endpoint());
        assert_eq!(old.url(), new.url());
        cache.apply(&old, config_map("a", "x", "1", None));
        cache.apply(&new, config_map("a", "x", "1", None));
        cache.apply(&new, config_map("a", "y", "2", None));
        cache.forget_endpoint(old.instance());
        assert_eq!(cache.len(), 2, "what the new watch loaded stays");
        cache.forget_endpoint(new.instance());
        assert!(cache.is_empty());
    }

    #[tokio::test]
    async fn malformed_objects_are_kept_but_not_served_as_valid() {
        let cache = Cache::<ConfigMap>::new();
        let endpoint = vw_endpoint();
        let json = r#"{"metadata":{"name":"bad","namespace":"ns","resourceVersion":"5","annotations":{"kcp.io/cluster":"a"}},"data":{"k":1}}"#;
        let decoded: Tolerant<ConfigMap> = serde_json::from_str(json).unwrap();
        cache.apply(&endpoint, decoded);
        assert!(cache.get(&key("a", "bad")).is_none());
        assert!(matches!(
            cache.entry(&key("a", "bad")),
            Some(Entry::Malformed(_))
        ));
        assert_eq!(
            cache.keys(&ClusterId::new("a")).len(),
            1,
            "its key is still known, to report on it"
        );
    }
}
