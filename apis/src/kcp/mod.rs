//! The subset of kcp's APIs (`apis.kcp.io`, `core.kcp.io`) the backend uses.
//!
//! Only the fields we read or write are modelled; everything else is dropped on decode. These
//! types are not written back whole by the backend (it uses patches), so nothing is lost.

pub mod apibinding;
pub mod apiexport;
pub mod apiexportendpointslice;
pub mod apiresourceschema;
pub mod logicalcluster;
pub mod permission_claim;

pub use apibinding::{
    APIBinding, APIBindingPhase, APIBindingSpec, APIBindingStatus, BindingReference,
    BoundAPIResource, BoundAPIResourceSchema, ExportBindingReference,
};
pub use apiexport::{
    APIExport, APIExportSpec, APIExportStatus, ResourceSchema, ResourceSchemaStorage,
};
pub use apiexportendpointslice::{
    APIExportEndpoint, APIExportEndpointSlice, APIExportEndpointSliceSpec,
    APIExportEndpointSliceStatus,
};
pub use apiresourceschema::{APIResourceSchema, APIResourceSchemaSpec, APIResourceSchemaVersion};
pub use logicalcluster::{
    LOGICAL_CLUSTER_NAME, LogicalCluster, LogicalClusterSpec, LogicalClusterStatus,
};
pub use permission_claim::{
    AcceptablePermissionClaim, ClaimState, PermissionClaim, PermissionClaimSelector,
};

/// Annotation kcp sets on every object served through a wildcard or virtual-workspace request:
/// the logical cluster the object lives in.
pub const CLUSTER_ANNOTATION: &str = "kcp.io/cluster";
/// Annotation on a LogicalCluster (and workspaces) with its human-readable path, e.g. `root:org`.
pub const PATH_ANNOTATION: &str = "kcp.io/path";
/// API group of APIExport, APIBinding, APIResourceSchema and APIExportEndpointSlice.
pub const APIS_GROUP: &str = "apis.kcp.io";
/// API group of LogicalCluster.
pub const CORE_GROUP: &str = "core.kcp.io";
