//! The APIServiceNamespace controller (reference §3.5): the provider namespace of a consumer
//! namespace, the `kube-binder` RoleBinding in it (Namespaced scope), and the RBAC of every
//! export's permission claims; on deletion, the provider namespace and the cluster-scoped claim
//! RBAC go too.
//!
//! No finalizer: what a deleted APIServiceNamespace leaves (its annotated provider namespace,
//! its labelled RBAC) maps back to its key, so the deletion is reconciled even when it happened
//! while the backend was down (the first LIST of those caches enqueues it).

mod reconcile;

use std::sync::Arc;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube_bind_apis::{APIServiceExport, ClusterBinding};

pub use self::reconcile::ServiceNamespaceError;
use super::ControllerOptions;
use crate::provider::ClusterId;
use crate::resources::namespaces::api_service_namespace_of;
use crate::resources::owner::{OWNER_KIND_LABEL, owner_of};
use crate::resources::rbac::API_SERVICE_NAMESPACE_KIND;
use crate::runtime::caches::CacheError;
use crate::runtime::{Cache, CacheEvent, CachedResource, Manager, ObjectKey};

/// The caches and options an APIServiceNamespace reconcile reads.
pub struct ServiceNamespaceReconciler {
    options: ControllerOptions,
    namespaces: Arc<Cache<Namespace>>,
    exports: Arc<Cache<APIServiceExport>>,
    roles: Arc<Cache<Role>>,
    role_bindings: Arc<Cache<RoleBinding>>,
    cluster_roles: Arc<Cache<ClusterRole>>,
    cluster_role_bindings: Arc<Cache<ClusterRoleBinding>>,
}

fn object_of<'e, C: CachedResource>(
    event: &'e CacheEvent<'_, C>,
) -> (&'e ObjectKey, &'e kube::api::ObjectMeta) {
    match event {
        CacheEvent::Applied { key, new, .. } => (key, new.meta()),
        CacheEvent::Deleted { key, old } => (key, old.meta()),
    }
}

/// The APIServiceNamespace whose owner labels an RBAC object carries.
fn owner_by_labels<C: CachedResource>(event: &CacheEvent<'_, C>) -> Vec<ObjectKey> {
    let (key, meta) = object_of(event);
    meta.labels
        .as_ref()
        .and_then(|l| owner_of(l, API_SERVICE_NAMESPACE_KIND))
        .map(|(namespace, name)| ObjectKey::new(key.cluster.clone(), Some(namespace), name))
        .into_iter()
        .collect()
}

/// The APIServiceNamespace a provider namespace's annotation names.
fn owner_by_annotation(event: &CacheEvent<'_, Namespace>) -> Vec<ObjectKey> {
    let (key, namespace) = match event {
        CacheEvent::Applied { key, new, .. } => (*key, new.valid()),
        CacheEvent::Deleted { key, old } => (*key, old.valid()),
    };
    namespace
        .and_then(|ns| api_service_namespace_of(ns))
        .map(|(cluster_ns, name)| ObjectKey::new(key.cluster.clone(), Some(cluster_ns), name))
        .into_iter()
        .collect()
}

/// Registers the APIServiceNamespace controller.
pub fn register(manager: &mut Manager, options: &ControllerOptions) -> Result<(), CacheError> {
    let caches = manager.caches().clone();
    // RBAC is cached only when it carries owner labels, as the ClusterBinding controller does.
    let reconciler = ServiceNamespaceReconciler {
        options: *options,
        namespaces: caches.get::<Namespace>()?,
        exports: caches.get::<APIServiceExport>()?,
        roles: caches.get_selected::<Role>(Some(OWNER_KIND_LABEL))?,
        role_bindings: caches.get_selected::<RoleBinding>(Some(OWNER_KIND_LABEL))?,
        cluster_roles: caches.get_selected::<ClusterRole>(Some(OWNER_KIND_LABEL))?,
        cluster_role_bindings: caches.get_selected::<ClusterRoleBinding>(Some(OWNER_KIND_LABEL))?,
    };
    let builder = manager.controller(reconciler)?;
    // ClusterBinding and export events re-run every APIServiceNamespace of their namespace.
    let primary = builder.primary().clone();
    let all_in_namespace = move |cluster: &ClusterId, namespace: &str| -> Vec<ObjectKey> {
        primary
            .list(cluster, Some(namespace))
            .iter()
            .filter_map(|o| o.metadata.name.as_deref())
            .map(|name| ObjectKey::new(cluster.clone(), Some(namespace.to_owned()), name))
            .collect()
    };
    let in_namespace_of = {
        let all_in_namespace = all_in_namespace.clone();
        move |key: &ObjectKey| match key.namespace.as_deref() {
            Some(namespace) => all_in_namespace(&key.cluster, namespace),
            None => Vec::new(),
        }
    };
    let for_exports = in_namespace_of.clone();
    builder
        .watches::<ClusterBinding>(move |event| in_namespace_of(event.key()))
        .watches::<APIServiceExport>(move |event| for_exports(event.key()))
        // A provider namespace maps to its APIServiceNamespace; a cluster namespace to all of
        // those it holds (they wait for it to be cached).
        .watches::<Namespace>(move |event| {
            let key = event.key();
            let mut keys = owner_by_annotation(event);
            keys.extend(all_in_namespace(&key.cluster, &key.name));
            keys
        })
        .watches::<Role>(owner_by_labels)
        .watches::<RoleBinding>(owner_by_labels)
        .watches::<ClusterRole>(owner_by_labels)
        .watches::<ClusterRoleBinding>(owner_by_labels)
        .build()
}
