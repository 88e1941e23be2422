//! Declaring a controller: its primary kind, what else it watches (and how those events map to
//! its keys), and what caches it reads.

use std::sync::Arc;

use super::{Manager, Reconciler, Registered, WorkKey};
use crate::runtime::cache::{Cache, CacheEvent, CachedResource, SyncState};
use crate::runtime::caches::CacheError;
use crate::runtime::object::{ObjectKey, is_namespaced};

/// Declares what else a controller watches and reads; finish with [`ControllerBuilder::build`].
#[must_use = "a controller is only registered by `build`"]
pub struct ControllerBuilder<'m, R: Reconciler> {
    pub(super) manager: &'m mut Manager,
    pub(super) reconciler: Arc<R>,
    pub(super) primary: Arc<Cache<R::Object>>,
    pub(super) reads: Vec<Arc<dyn SyncState>>,
    /// The first cache that could not be declared, reported by `build`.
    pub(super) refused: Option<CacheError>,
}

impl<R: Reconciler> ControllerBuilder<'_, R> {
    /// The primary kind's cache (to read objects in the reconciler).
    pub fn primary(&self) -> &Arc<Cache<R::Object>> {
        &self.primary
    }

    /// Events of `C` enqueue their controller owner of the primary kind.
    pub fn owns<C: CachedResource>(self) -> Self {
        let queue = self.manager.queue.clone();
        self.on::<C>(move |event| {
            for owner in controller_owners::<R::Object, C>(event) {
                queue.add(WorkKey {
                    controller: R::NAME,
                    object: owner,
                });
            }
        })
    }

    /// Events of `C` enqueue whatever primary keys `map` returns (e.g. through an index).
    pub fn watches<C: CachedResource>(
        self,
        map: impl Fn(&CacheEvent<'_, C>) -> Vec<ObjectKey> + Send + Sync + 'static,
    ) -> Self {
        let queue = self.manager.queue.clone();
        self.on::<C>(move |event| {
            for object in map(event) {
                queue.add(WorkKey {
                    controller: R::NAME,
                    object,
                });
            }
        })
    }

    /// Declares that the reconciler reads the cache of `C` (its keys wait for its first LIST)
    /// and returns it: as declared before (see [`Self::reads_selected`]), else of every object
    /// of `C`. `owns` and `watches` declare their caches this way themselves. `None` if it could
    /// not be declared; `build` then says why.
    pub fn reads<C: CachedResource>(&mut self) -> Option<Arc<Cache<C>>> {
        let declared = self.manager.caches.get::<C>();
        self.declared(declared)
    }

    /// Like [`Self::reads`], for a cache of only the objects of `C` matching `label_selector`.
    /// Declare it before `owns`/`watches` of the same type, which take it as it is.
    pub fn reads_selected<C: CachedResource>(
        &mut self,
        label_selector: &str,
    ) -> Option<Arc<Cache<C>>> {
        let declared = self.manager.caches.get_selected::<C>(Some(label_selector));
        self.declared(declared)
    }

    fn declared<C: CachedResource>(
        &mut self,
        declared: Result<Arc<Cache<C>>, CacheError>,
    ) -> Option<Arc<Cache<C>>> {
        match declared {
            Ok(cache) => {
                self.reads.push(cache.clone());
                Some(cache)
            }
            Err(refused) => {
                self.refused.get_or_insert(refused);
                None
            }
        }
    }

    /// Events of the cluster-scoped `C` enqueue the namespaced primary object its labels name
    /// (`namespace_label`, `name_label`): a cluster-scoped child (ClusterRole, Namespace)
    /// cannot carry a namespaced owner's ownerReference, so the labels stand in for it.
    pub fn owns_by_labels<C: CachedResource>(
        self,
        namespace_label: &'static str,
        name_label: &'static str,
    ) -> Self {
        let queue = self.manager.queue.clone();
        self.on::<C>(move |event| {
            if let Some(owner) = labelled_owner(event, namespace_label, name_label) {
                queue.add(WorkKey {
                    controller: R::NAME,
                    object: owner,
                });
            }
        })
    }

    fn on<C: CachedResource>(
        mut self,
        listener: impl Fn(&CacheEvent<'_, C>) + Send + Sync + 'static,
    ) -> Self {
        if let Some(cache) = self.reads::<C>() {
            cache.on_change(listener);
        }
        self
    }

    /// Registers the controller with the manager; refused if one of its caches could not be
    /// declared (too late, or with a conflicting label selector).
    pub fn build(self) -> Result<(), CacheError> {
        if let Some(refused) = self.refused {
            return Err(refused);
        }
        let registered = Registered {
            reconciler: self.reconciler,
            primary: self.primary,
            reads: self.reads,
        };
        self.manager.register(registered);
        Ok(())
    }
}

/// The namespaced owner `event`'s object names in its labels, if both are there.
fn labelled_owner<C: CachedResource>(
    event: &CacheEvent<'_, C>,
    namespace_label: &str,
    name_label: &str,
) -> Option<ObjectKey> {
    let (key, entry) = match event {
        CacheEvent::Applied { key, new, .. } => (*key, *new),
        CacheEvent::Deleted { key, old } => (*key, *old),
    };
    let labels = entry.meta().labels.as_ref()?;
    let (namespace, name) = (labels.get(namespace_label)?, labels.get(name_label)?);
    Some(ObjectKey::new(
        key.cluster.clone(),
        Some(namespace.clone()),
        name,
    ))
}

/// The keys of `event`'s controller owners of kind `O` (owners live in the child's namespace
/// if `O` is namespaced, else at cluster scope).
fn controller_owners<O: CachedResource, C: CachedResource>(
    event: &CacheEvent<'_, C>,
) -> Vec<ObjectKey> {
    let (key, entry) = match event {
        CacheEvent::Applied { key, new, .. } => (*key, *new),
        CacheEvent::Deleted { key, old } => (*key, *old),
    };
    let kind = O::kind(&());
    let group = O::group(&());
    let namespace = if is_namespaced::<O>() {
        key.namespace.clone()
    } else {
        None
    };
    entry
        .meta()
        .owner_references
        .iter()
        .flatten()
        .filter(|r| {
            r.controller == Some(true) && r.kind == kind && group_of(&r.api_version) == group
        })
        .map(|r| ObjectKey::new(key.cluster.clone(), namespace.clone(), &r.name))
        .collect()
}

/// The group of an `apiVersion` (`""` for the core `v1`).
fn group_of(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use kube_bind_apis::{APIServiceExport, APIServiceExportRequest};

    use super::*;
    use crate::provider::ClusterId;
    use crate::runtime::object::Entry;

    fn owned_config_map(owners: Vec<OwnerReference>) -> Entry<ConfigMap> {
        let mut cm = ConfigMap::default();
        cm.metadata.name = Some("child".into());
        cm.metadata.namespace = Some("ns".into());
        cm.metadata.owner_references = Some(owners);
        Entry::Valid(Arc::new(cm))
    }

    fn owner(api_version: &str, kind: &str, name: &str, controller: bool) -> OwnerReference {
        OwnerReference {
            api_version: api_version.into(),
            kind: kind.into(),
            name: name.into(),
            uid: format!("uid-{name}"),
            controller: Some(controller),
            ..Default::default()
        }
    }

    #[test]
    fn owned_objects_map_to_their_controller_owner_of_the_primary_kind() {
        let key = ObjectKey::new(ClusterId::new("c1"), Some("ns".into()), "child");
        let entry = owned_config_map(vec![
            owner("kube-bind.io/v1alpha2", "APIServiceExport", "export", true),
            // Not the controller: ignored.
            owner("kube-bind.io/v1alpha2", "APIServiceExport", "other", false),
            // Another kind: ignored.
            owner(
                "kube-bind.io/v1alpha2",
                "APIServiceExportRequest",
                "request",
                true,
            ),
        ]);
        let event = CacheEvent::Applied {
            key: &key,
            old: None,
            new: &entry,
        };
        assert_eq!(
            controller_owners::<APIServiceExport, ConfigMap>(&event),
            [ObjectKey::new(
                ClusterId::new("c1"),
                Some("ns".into()),
                "export"
            )]
        );
        assert_eq!(
            controller_owners::<APIServiceExportRequest, ConfigMap>(&event),
            [ObjectKey::new(
                ClusterId::new("c1"),
                Some("ns".into()),
                "request"
            )]
        );
    }

    #[test]
    fn an_older_version_of_the_owner_still_maps_and_cluster_scoped_owners_have_no_namespace() {
        let key = ObjectKey::new(ClusterId::new("c1"), Some("ns".into()), "child");
        let entry = owned_config_map(vec![
            owner("kube-bind.io/v1alpha1", "APIServiceExport", "export", true),
            owner("v1", "Namespace", "ns", true),
        ]);
        let event = CacheEvent::Deleted {
            key: &key,
            old: &entry,
        };
        assert_eq!(
            controller_owners::<APIServiceExport, ConfigMap>(&event).len(),
            1
        );
        assert_eq!(
            controller_owners::<Namespace, ConfigMap>(&event),
            [ObjectKey::new(ClusterId::new("c1"), None, "ns")]
        );
    }

    #[test]
    fn cluster_scoped_children_map_to_the_owner_their_labels_name() {
        let key = ObjectKey::new(ClusterId::new("c1"), None, "kube-binder-ns1");
        let mut role = k8s_openapi::api::rbac::v1::ClusterRole::default();
        role.metadata.labels = Some(
            [
                ("owner-namespace".to_owned(), "cluster-ns".to_owned()),
                ("owner-name".to_owned(), "binding".to_owned()),
            ]
            .into(),
        );
        let entry = Entry::Valid(Arc::new(role));
        let event = CacheEvent::Applied {
            key: &key,
            old: None,
            new: &entry,
        };
        assert_eq!(
            labelled_owner(&event, "owner-namespace", "owner-name"),
            Some(ObjectKey::new(
                ClusterId::new("c1"),
                Some("cluster-ns".into()),
                "binding"
            ))
        );
        assert_eq!(labelled_owner(&event, "owner-namespace", "missing"), None);
    }

    #[test]
    fn groups_of_api_versions() {
        assert_eq!(group_of("v1"), "");
        assert_eq!(group_of("kube-bind.io/v1alpha2"), "kube-bind.io");
        assert_eq!(group_of("apis.kcp.io/v1alpha1"), "apis.kcp.io");
    }
}
