//! The APIServiceExport controller (reference §3.4, upstream `kube-bind-backend-serviceexport`):
//! keeps the export's BoundSchemas in step with their source schemas (upstream never updates
//! them), owned by the export, and reports `ProviderInSync` with the spec-hash annotation.
//!
//! It watches exports; BoundSchemas of a cluster namespace and source schemas re-run the
//! exports that name their resource.

mod reconcile;

use std::sync::Arc;

use kube_bind_apis::{APIServiceExport, BoundSchema, GroupResource};

pub use self::reconcile::ExportError;
use super::ControllerOptions;
use super::schema_source::SourceSchemas;
use crate::runtime::caches::CacheError;
use crate::runtime::{Cache, CacheEvent, Manager, ObjectKey};

/// The caches and options an export reconcile reads.
pub struct ExportReconciler {
    options: ControllerOptions,
    sources: SourceSchemas,
    bound_schemas: Arc<Cache<BoundSchema>>,
}

/// The exports among `exports` that name `resource`.
fn exporting(
    exports: &[Arc<APIServiceExport>],
    resource: &GroupResource,
    cluster: &crate::provider::ClusterId,
) -> Vec<ObjectKey> {
    exports
        .iter()
        .filter(|e| {
            e.spec
                .resources
                .iter()
                .any(|r| r.group_resource() == *resource)
        })
        .map(|e| ObjectKey::from_meta(cluster.clone(), &e.metadata))
        .collect()
}

/// Registers the APIServiceExport controller.
pub fn register(manager: &mut Manager, options: &ControllerOptions) -> Result<(), CacheError> {
    let caches = manager.caches().clone();
    let sources = SourceSchemas::declare(&caches, options.schema_source)?;
    let reconciler = ExportReconciler {
        options: *options,
        sources: sources.clone(),
        bound_schemas: caches.get::<BoundSchema>()?,
    };
    let builder = manager.controller(reconciler)?;
    let exports = builder.primary().clone();
    let by_source = exports.clone();
    let builder = sources.watched_by(builder, move |cluster, resource| {
        exporting(&by_source.list(cluster, None), resource, cluster)
    });
    builder
        .watches::<BoundSchema>(move |event| {
            let key = event.key();
            let entry = match event {
                CacheEvent::Applied { new, .. } => *new,
                CacheEvent::Deleted { old, .. } => *old,
            };
            let Some(schema) = entry.valid() else {
                return Vec::new();
            };
            let resource = GroupResource::new(&schema.spec.group, &schema.spec.names.plural);
            let in_namespace = exports.list(&key.cluster, key.namespace.as_deref());
            exporting(&in_namespace, &resource, &key.cluster)
        })
        .build()
}
