//! `kube-bind.io/v1alpha1`: older versions upstream still serves (not stored) so that older
//! konnectors keep working. The CRDs carry these schemas with `conversion: {strategy: None}`;
//! the backend itself only reads and writes v1alpha2.

pub mod apiservicebinding;
pub mod apiserviceexport;
pub mod apiserviceexportrequest;
pub mod apiservicenamespace;
pub mod clusterbinding;

pub use apiservicebinding::{APIServiceBinding, APIServiceBindingSpec, APIServiceBindingStatus};
pub use apiserviceexport::{
    APIServiceExport, APIServiceExportCRDSpec, APIServiceExportSpec, APIServiceExportStatus,
    APIServiceExportVersion, CustomResourceValidation,
};
pub use apiserviceexportrequest::{
    APIServiceExportRequest, APIServiceExportRequestResource, APIServiceExportRequestSpec,
};
pub use apiservicenamespace::{APIServiceNamespace, APIServiceNamespaceSpec};
pub use clusterbinding::{ClusterBinding, ClusterBindingSpec};

/// This version.
pub const VERSION: &str = "v1alpha1";
