//! `kube-bind.io/v1alpha2`, the stored version of every kind.

pub mod apiconversion;
pub mod apiservicebinding;
pub mod apiserviceexport;
pub mod apiserviceexportrequest;
pub mod apiserviceexporttemplate;
pub mod apiservicenamespace;
pub mod bindableresourcesrequest;
pub mod boundschema;
pub mod clusterbinding;
pub mod collection;
pub mod group_resource;
pub mod permission_claim;
pub mod scope;
pub mod secret_ref;

pub use apiconversion::{
    APIConversion, APIConversionRule, APIConversionSpec, APIVersionConversion,
};
pub use apiservicebinding::{APIServiceBinding, APIServiceBindingSpec, APIServiceBindingStatus};
pub use apiserviceexport::{APIServiceExport, APIServiceExportSpec, APIServiceExportStatus};
pub use apiserviceexportrequest::{
    APIServiceExportRequest, APIServiceExportRequestPhase, APIServiceExportRequestSpec,
    APIServiceExportRequestStatus, Namespaces,
};
pub use apiserviceexporttemplate::{
    APIServiceExportTemplate, APIServiceExportTemplateSpec, APIServiceExportTemplateStatus,
};
pub use apiservicenamespace::{
    APIServiceNamespace, APIServiceNamespaceSpec, APIServiceNamespaceStatus,
};
pub use bindableresourcesrequest::{
    APIServiceExportTemplateRef, BindRequestError, BindableResourcesRequest,
};
pub use boundschema::{
    APIResourceVersion, BoundSchema, BoundSchemaSpec, BoundSchemaStatus, ConversionStrategy,
    CrdNames, CustomResourceConversion, PrinterColumn, ResourceScope, ScaleSubresource,
    Subresources, WebhookClientConfig, WebhookConversion,
};
pub use clusterbinding::{
    CLUSTER_BINDING_NAME, ClusterBinding, ClusterBindingSpec, ClusterBindingStatus,
};
pub use collection::{
    APIServiceExportTemplateReference, Collection, CollectionSpec, CollectionStatus,
};
pub use group_resource::{
    APIServiceExportRequestResource, APIServiceExportResource, GroupResource, resource_group_name,
};
pub use permission_claim::{
    JsonPathReference, NamedResource, PermissionClaim, Selector, SelectorReference,
};
pub use scope::{InformerScope, Isolation};
pub use secret_ref::{ClusterSecretKeyRef, KubeconfigSecretKey, LocalSecretKeyRef};

/// API group of every kube-bind kind.
pub const GROUP: &str = "kube-bind.io";
/// This version.
pub const VERSION: &str = "v1alpha2";
