//! The kube-bind controllers, on the generic runtime of `crate::runtime`. Each kind has its own
//! module (`mod.rs`: wiring, `reconcile.rs`: the logic as named steps), registered here.

pub mod apply;
pub mod clusterbinding;
pub mod schema_source;
pub mod serviceexport;
pub mod serviceexportrequest;
pub mod servicenamespace;
pub mod status;

use std::time::Duration;

use kube_bind_apis::InformerScope;

use crate::options::{ConsumerScope, Isolation, Options, SchemaSource};
use crate::runtime::Manager;
use crate::runtime::caches::CacheError;

/// What the controllers take from the backend's options.
#[derive(Debug, Clone, Copy)]
pub struct ControllerOptions {
    /// Where exported schemas come from (CRDs, or kcp APIResourceSchemas).
    pub schema_source: SchemaSource,
    /// Whether consumers get Namespaced or Cluster access.
    pub consumer_scope: ConsumerScope,
    /// How cluster-scoped exported objects are kept apart per consumer.
    pub cluster_scoped_isolation: Isolation,
    /// Age at which an APIServiceExportRequest is deleted.
    pub request_ttl: Duration,
}

impl ControllerOptions {
    /// The consumer scope as the API spells it (`spec.informerScope`).
    pub fn informer_scope(&self) -> InformerScope {
        match self.consumer_scope {
            ConsumerScope::Namespaced => InformerScope::Namespaced,
            ConsumerScope::Cluster => InformerScope::Cluster,
        }
    }

    pub fn from_options(options: &Options) -> Self {
        Self {
            schema_source: options.schema_source,
            consumer_scope: options.consumer_scope,
            cluster_scoped_isolation: options.cluster_scoped_isolation,
            request_ttl: options.request_ttl,
        }
    }
}

/// Registers every kube-bind controller with `manager`. Called before the provider starts, so
/// every cache they declare is in place when the first endpoint opens.
pub fn register_all(manager: &mut Manager, options: &ControllerOptions) -> Result<(), CacheError> {
    clusterbinding::register(manager, options)?;
    servicenamespace::register(manager, options)?;
    serviceexportrequest::register(manager, options)?;
    serviceexport::register(manager, options)?;
    Ok(())
}
