//! The caches of a process, one per resource type, wired to the provider: every endpoint that
//! opens gets one watch per cached type.
//!
//! Caches are declared before the first endpoint opens; a type asked for later is refused, so
//! no controller can stall on a cache that started late (see [`Caches::get`]). A cache may hold
//! only the objects of a label selector ([`Caches::get_selected`]).
//!
//! A disengaged cluster's objects stay cached: the shared wildcard watch does not send them
//! again when the cluster comes back (e.g. rebound in kcp), so dropping them would make
//! unchanged objects look deleted. Work only runs for engaged clusters (see the manager).
//!
//! Watch tasks are owned by the [`TaskTracker`] here and stop with their endpoint's cancellation
//! token (a child of the process shutdown token).

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use futures::future::BoxFuture;
use tokio_util::task::TaskTracker;

use super::cache::{Cache, CachedResource};
use crate::provider::{Change, Endpoint, Endpoints};

/// What the wiring needs from a cache, whatever its type.
trait AnyCache: Send + Sync {
    fn watch(self: Arc<Self>, endpoint: Arc<Endpoint>) -> BoxFuture<'static, ()>;
    fn is_synced(&self) -> bool;
    fn counts(&self) -> CacheCounts;
    fn resource(&self) -> &str;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
}

impl<K: CachedResource> AnyCache for Cache<K> {
    fn watch(self: Arc<Self>, endpoint: Arc<Endpoint>) -> BoxFuture<'static, ()> {
        Box::pin(self.watch_endpoint(endpoint))
    }
    fn is_synced(&self) -> bool {
        Cache::is_synced(self)
    }
    fn counts(&self) -> CacheCounts {
        CacheCounts {
            objects: self.len(),
            malformed: self.malformed().len(),
            clusters: self.cluster_count(),
        }
    }
    fn resource(&self) -> &str {
        Cache::resource(self)
    }
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

/// All caches of the process.
#[derive(Clone)]
pub struct Caches {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    tasks: TaskTracker,
}

#[derive(Default)]
struct State {
    by_type: HashMap<TypeId, Arc<dyn AnyCache>>,
    /// (cache, [`Endpoint::instance`]) pairs with a running watch, so no pair is ever watched
    /// twice. An endpoint is known by its instance everywhere in the runtime: a URL closed and
    /// opened again is a new endpoint, and the old one's ending watch cannot touch the new one's.
    watching: HashSet<(TypeId, u64)>,
    /// Set when the first endpoint opens: from then on no cache type can be added.
    started: bool,
}

impl Inner {
    /// Starts the watches of `endpoint` that are not running yet.
    fn watch_endpoint(&self, state: &mut State, endpoint: &Arc<Endpoint>) {
        for (type_id, cache) in &state.by_type {
            if state.watching.insert((*type_id, endpoint.instance())) {
                self.tasks.spawn(cache.clone().watch(endpoint.clone()));
            }
        }
    }
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let resources: Vec<String> = self
            .lock()
            .by_type
            .values()
            .map(|c| c.resource().to_owned())
            .collect();
        f.debug_struct("Caches")
            .field("resources", &resources)
            .finish()
    }
}

impl Caches {
    /// Caches fed by `endpoints`.
    pub fn new(endpoints: &Endpoints) -> Self {
        let caches = Self {
            inner: Arc::new(Inner {
                state: Mutex::default(),
                tasks: TaskTracker::new(),
            }),
        };
        let weak = Arc::downgrade(&caches.inner);
        endpoints.on_change(move |change| {
            let Some(inner) = weak.upgrade() else { return };
            let mut state = lock(&inner.state);
            match change {
                Change::Added(endpoint) => {
                    state.started = true;
                    inner.watch_endpoint(&mut state, endpoint);
                }
                // Its watches stop on the endpoint's cancellation token.
                Change::Removed(endpoint) => {
                    let gone = endpoint.instance();
                    state.watching.retain(|(_, instance)| *instance != gone);
                }
                Change::Touched(_) => {}
            }
        });
        caches
    }

    /// The cache of `K` as declared (with its label selector, if it was declared with one), or
    /// a new cache of every object of the type. Declare every type before the provider opens
    /// its first endpoint; asking for a new type later is refused (it would start cold while
    /// controllers run).
    pub fn get<K: CachedResource>(&self) -> Result<Arc<Cache<K>>, CacheError> {
        let declared = self
            .lock()
            .by_type
            .get(&TypeId::of::<K>())
            .and_then(|c| c.clone().into_any().downcast::<Cache<K>>().ok());
        match declared {
            Some(cache) => Ok(cache),
            None => self.get_selected(None),
        }
    }

    /// The cache of `K`, holding only objects matching `label_selector` (`None`: all), so
    /// memory does not grow with every object of a common type (Secrets, Roles) in every
    /// cluster. A type has one cache: declaring it with two different selectors is refused.
    pub fn get_selected<K: CachedResource>(
        &self,
        label_selector: Option<&str>,
    ) -> Result<Arc<Cache<K>>, CacheError> {
        let mut state = self.lock();
        if let Some(existing) = state.by_type.get(&TypeId::of::<K>())
            && let Ok(cache) = existing.clone().into_any().downcast::<Cache<K>>()
        {
            if cache.label_selector() != label_selector {
                return Err(CacheError::SelectorConflict {
                    resource: cache.resource().to_owned(),
                    declared: cache.label_selector().unwrap_or("everything").to_owned(),
                    requested: label_selector.unwrap_or("everything").to_owned(),
                });
            }
            return Ok(cache);
        }
        let cache = Arc::new(Cache::<K>::selecting(label_selector.map(str::to_owned)));
        if state.started {
            return Err(CacheError::Late {
                resource: cache.resource().to_owned(),
            });
        }
        state.by_type.insert(TypeId::of::<K>(), cache.clone());
        Ok(cache)
    }

    /// Whether every cache completed its first LIST on every open endpoint.
    pub fn is_synced(&self) -> bool {
        self.lock().by_type.values().all(|c| c.is_synced())
    }

    /// The resources (`<plural>.<group>`) still waiting for their first LIST.
    pub fn unsynced(&self) -> Vec<String> {
        self.lock()
            .by_type
            .values()
            .filter(|c| !c.is_synced())
            .map(|c| c.resource().to_owned())
            .collect()
    }

    /// Registers `kube_bind_cache_*` gauges (objects, malformed objects, clusters per resource),
    /// computed from the caches whenever metrics are scraped.
    pub fn register_metrics(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(CacheMetrics {
            inner: Arc::downgrade(&self.inner),
        }));
    }

    /// Waits until every watch task ended (after shutdown).
    pub async fn join(&self) {
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.inner.state)
    }
}

/// A cache declared in a way the caches cannot serve.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error(
        "the cache of {resource} was asked for after the provider opened its first endpoint; \
         declare every cached type (controllers' `owns`, `watches`, `reads`) before the backend starts"
    )]
    Late { resource: String },
    #[error(
        "the cache of {resource} is declared for {declared} and asked for {requested}; \
         a type has one cache: declare it with one label selector"
    )]
    SelectorConflict {
        resource: String,
        declared: String,
        requested: String,
    },
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a cache holds, for metrics.
struct CacheCounts {
    objects: usize,
    malformed: usize,
    /// Clusters with at least one cached object.
    clusters: usize,
}

type CountOf = fn(&CacheCounts) -> usize;

/// Scrape-time view of every cache.
#[derive(Debug)]
struct CacheMetrics {
    inner: Weak<Inner>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Caches")
    }
}

impl Collector for CacheMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(inner) = self.inner.upgrade() else {
            return Ok(());
        };
        let samples: Vec<(String, CacheCounts)> = lock(&inner.state)
            .by_type
            .values()
            .map(|c| (c.resource().to_owned(), c.counts()))
            .collect();
        let families: [(&str, &str, CountOf); 3] = [
            ("cache_objects", "Objects cached, over all clusters", |c| {
                c.objects
            }),
            (
                "cache_malformed_objects",
                "Cached objects that do not decode (see the logs for which)",
                |c| c.malformed,
            ),
            (
                "cache_clusters",
                "Clusters with at least one cached object",
                |c| c.clusters,
            ),
        ];
        for (name, help, pick) in families {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (resource, counts) in &samples {
                let value = i64::try_from(pick(counts)).unwrap_or(i64::MAX);
                ConstGauge::new(value)
                    .encode(family.encode_family(&[("resource", resource.as_str())])?)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use tokio_util::sync::CancellationToken;

    use super::*;
    use crate::provider::EndpointKind;

    #[test]
    fn a_type_has_one_cache_with_one_selector() {
        let caches = Caches::new(&Endpoints::default());
        let selected = caches.get_selected::<ConfigMap>(Some("app=x")).unwrap();
        assert_eq!(selected.label_selector(), Some("app=x"));
        assert!(Arc::ptr_eq(
            &caches.get_selected::<ConfigMap>(Some("app=x")).unwrap(),
            &selected
        ));
        assert!(
            Arc::ptr_eq(&caches.get::<ConfigMap>().unwrap(), &selected),
            "taken as declared"
        );
        let conflict = caches.get_selected::<ConfigMap>(None).unwrap_err();
        assert!(
            matches!(conflict, CacheError::SelectorConflict { .. }),
            "{conflict}"
        );
    }

    #[tokio::test]
    async fn cache_types_are_declared_before_the_first_endpoint_opens() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let endpoints = Endpoints::default();
        let caches = Caches::new(&endpoints);
        let config_maps = caches.get::<ConfigMap>().unwrap();
        let client =
            kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse().unwrap()))
                .unwrap();
        let shutdown = CancellationToken::new();
        endpoints.insert(Arc::new(Endpoint::new(
            "http://127.0.0.1:9",
            EndpointKind::Direct,
            client,
            shutdown.clone(),
        )));
        assert!(
            Arc::ptr_eq(&caches.get::<ConfigMap>().unwrap(), &config_maps),
            "a declared type is found again"
        );
        let late = caches.get::<Namespace>().unwrap_err();
        assert!(
            matches!(&late, CacheError::Late { resource } if resource == "namespaces"),
            "{late}"
        );
        assert!(caches.unsynced().contains(&"configmaps".to_owned()));
        assert_eq!(caches.unsynced().len(), 1, "the refused type is not cached");
        shutdown.cancel();
    }
}
