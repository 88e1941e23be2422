//! Well-known label, annotation and finalizer keys shared by the backend and the konnector.

use crate::open_enum::open_enum;

/// Annotation on an APIServiceExport: hash of the source spec it was built from.
pub const SOURCE_SPEC_HASH_ANNOTATION: &str = "kube-bind.io/source-spec-hash";
/// Label naming who created an object, see [`Owner`].
pub const OWNER_LABEL: &str = "kube-bind.io/owner";
/// Annotation on a provider namespace: `<cluster namespace>/<APIServiceNamespace name>`.
pub const API_SERVICE_NAMESPACE_ANNOTATION: &str = "kube-bind.io/api-service-namespace";
/// Label marking CRDs and APIResourceSchemas the provider offers for binding (value `true`).
pub const EXPORTED_LABEL: &str = "kube-bind.io/exported";
/// Annotation on a cluster namespace naming the consumer identity it belongs to.
pub const IDENTITY_ANNOTATION: &str = "backend.kube-bind.io/identity";
/// Older spelling of [`IDENTITY_ANNOTATION`], still read.
pub const LEGACY_IDENTITY_ANNOTATION: &str = "example-backend.kube-bind.io/identity";
/// Annotation on synced provider objects: the consumer's cluster namespace (set by the konnector).
pub const CLUSTER_NAMESPACE_ANNOTATION: &str = "kube-bind.io/cluster-namespace";
/// Annotation on an APIServiceBinding listing its resources (shown as a printer column).
pub const RESOURCES_ANNOTATION: &str = "kube-bind.io/resources";
/// Finalizer the konnector puts on downstream objects (note: no dash in `kubebind`).
pub const SYNCER_FINALIZER: &str = "kubebind.io/syncer";

open_enum! {
    /// Value of [`OWNER_LABEL`]: which side created the object.
    pub enum Owner {
        Provider => "provider",
        Consumer => "consumer",
    }
}
