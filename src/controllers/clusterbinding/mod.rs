//! The ClusterBinding controller (reference §3.2): judges the konnector's heartbeat into
//! `Healthy`, and grants the consumer's `kube-binder` service account what its exports need.
//!
//! It watches ClusterBindings; APIServiceExports and BoundSchemas of a cluster namespace
//! re-run that namespace's `cluster`, and so do the RBAC objects it owns (by owner labels:
//! the cluster-scoped ones cannot carry a namespaced owner reference).

mod reconcile;

use std::sync::Arc;

use dashmap::DashSet;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding};
use kube_bind_apis::{APIServiceExport, BoundSchema, CLUSTER_BINDING_NAME};

pub use self::reconcile::ClusterBindingError;
use super::ControllerOptions;
use crate::provider::ClusterId;
use crate::resources::owner::{OWNER_KIND_LABEL, owner_of};
use crate::resources::rbac::CLUSTER_BINDING_KIND;
use crate::runtime::caches::CacheError;
use crate::runtime::{Cache, CacheEvent, CachedResource, Manager, ObjectKey};

/// The caches and options a ClusterBinding reconcile reads.
pub struct ClusterBindingReconciler {
    options: ControllerOptions,
    namespaces: Arc<Cache<Namespace>>,
    exports: Arc<Cache<APIServiceExport>>,
    schemas: Arc<Cache<BoundSchema>>,
    role_bindings: Arc<Cache<RoleBinding>>,
    cluster_roles: Arc<Cache<ClusterRole>>,
    cluster_role_bindings: Arc<Cache<ClusterRoleBinding>>,
    /// Clusters whose global `kube-binder` ClusterRole this process has written or found.
    binder_role_ensured: DashSet<ClusterId>,
}

/// The ClusterBinding of the namespace an event's object lives in.
fn binding_of_namespace<C: CachedResource>(event: &CacheEvent<'_, C>) -> Vec<ObjectKey> {
    let key = event.key();
    key.namespace
        .iter()
        .map(|ns| ObjectKey::new(key.cluster.clone(), Some(ns.clone()), CLUSTER_BINDING_NAME))
        .collect()
}

/// The ClusterBinding a cluster namespace would hold.
fn binding_of_cluster_namespace(event: &CacheEvent<'_, Namespace>) -> Vec<ObjectKey> {
    let key = event.key();
    vec![ObjectKey::new(
        key.cluster.clone(),
        Some(key.name.clone()),
        CLUSTER_BINDING_NAME,
    )]
}

/// The ClusterBinding whose owner labels an RBAC object carries.
fn binding_of_labels<C: CachedResource>(event: &CacheEvent<'_, C>) -> Vec<ObjectKey> {
    let (key, entry) = match event {
        CacheEvent::Applied { key, new, .. } => (*key, *new),
        CacheEvent::Deleted { key, old } => (*key, *old),
    };
    let labels = entry.meta().labels.as_ref();
    labels
        .and_then(|l| owner_of(l, CLUSTER_BINDING_KIND))
        .map(|(namespace, name)| ObjectKey::new(key.cluster.clone(), Some(namespace), name))
        .into_iter()
        .collect()
}

/// Registers the ClusterBinding controller.
pub fn register(manager: &mut Manager, options: &ControllerOptions) -> Result<(), CacheError> {
    let caches = manager.caches().clone();
    // Only RBAC carrying owner labels is cached, so memory does not grow with every role of a
    // cluster. Every kube-bind controller selects RBAC the same way (one selector per type).
    let namespaces = caches.get::<Namespace>()?;
    let exports = caches.get::<APIServiceExport>()?;
    let schemas = caches.get::<BoundSchema>()?;
    let role_bindings = caches.get_selected::<RoleBinding>(Some(OWNER_KIND_LABEL))?;
    let cluster_roles = caches.get_selected::<ClusterRole>(Some(OWNER_KIND_LABEL))?;
    let cluster_role_bindings =
        caches.get_selected::<ClusterRoleBinding>(Some(OWNER_KIND_LABEL))?;
    let reconciler = ClusterBindingReconciler {
        options: *options,
        namespaces,
        exports,
        schemas,
        role_bindings,
        cluster_roles,
        cluster_role_bindings,
        binder_role_ensured: DashSet::new(),
    };
    let builder = manager.controller(reconciler)?;
    builder
        // RBAC waits for the cluster namespace to be cached (its uid is the owner).
        .watches::<Namespace>(binding_of_cluster_namespace)
        .watches::<APIServiceExport>(binding_of_namespace)
        .watches::<BoundSchema>(binding_of_namespace)
        .watches::<RoleBinding>(binding_of_labels)
        .watches::<ClusterRole>(binding_of_labels)
        .watches::<ClusterRoleBinding>(binding_of_labels)
        .build()
}
