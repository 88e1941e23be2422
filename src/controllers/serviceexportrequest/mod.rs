//! The APIServiceExportRequest controller (reference §3.3, upstream
//! `kube-bind-backend-serviceexportrequest`): validates a consumer's request against the
//! exported schemas, creates the BoundSchemas, the APIServiceExport and the requested
//! APIServiceNamespaces, and records the outcome in the request's phase and conditions.
//!
//! It watches requests; their export (same name), and source schemas of the resources they
//! name, re-run them.

mod reconcile;

use std::sync::Arc;

use kube_bind_apis::{APIServiceExport, APIServiceNamespace, BoundSchema, Isolation};

pub use self::reconcile::ExportRequestError;
use super::ControllerOptions;
use super::schema_source::SourceSchemas;
use crate::options;
use crate::runtime::caches::CacheError;
use crate::runtime::{Cache, Manager, ObjectKey};

/// The caches and options a request reconcile reads.
pub struct ExportRequestReconciler {
    options: ControllerOptions,
    sources: SourceSchemas,
    bound_schemas: Arc<Cache<BoundSchema>>,
    exports: Arc<Cache<APIServiceExport>>,
    namespaces: Arc<Cache<APIServiceNamespace>>,
}

/// `--cluster-scoped-isolation` as written into exports.
pub(crate) fn isolation(options: &ControllerOptions) -> Isolation {
    match options.cluster_scoped_isolation {
        options::Isolation::Prefixed => Isolation::Prefixed,
        options::Isolation::Namespaced => Isolation::Namespaced,
        options::Isolation::None => Isolation::None,
    }
}

/// Registers the APIServiceExportRequest controller.
pub fn register(manager: &mut Manager, options: &ControllerOptions) -> Result<(), CacheError> {
    let caches = manager.caches().clone();
    let sources = SourceSchemas::declare(&caches, options.schema_source)?;
    let reconciler = ExportRequestReconciler {
        options: *options,
        sources: sources.clone(),
        bound_schemas: caches.get::<BoundSchema>()?,
        exports: caches.get::<APIServiceExport>()?,
        namespaces: caches.get::<APIServiceNamespace>()?,
    };
    let mut builder = manager.controller(reconciler)?;
    let _ = builder.reads::<BoundSchema>();
    let _ = builder.reads::<APIServiceNamespace>();
    let requests = builder.primary().clone();
    let builder = sources.watched_by(builder, move |cluster, resource| {
        requests
            .list(cluster, None)
            .iter()
            .filter(|r| {
                r.spec
                    .resources
                    .iter()
                    .any(|x| x.group_resource() == *resource)
            })
            .map(|r| ObjectKey::from_meta(cluster.clone(), &r.metadata))
            .collect()
    });
    // The export has the request's name.
    builder
        .watches::<APIServiceExport>(|event| vec![event.key().clone()])
        .build()
}
