//! `apis.kcp.io/v1alpha1` APIExportEndpointSlice: the virtual-workspace URLs serving an APIExport.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::apibinding::ExportBindingReference;
use crate::conditions::Condition;

/// Which export the slice lists endpoints for.
#[derive(
    CustomResource, Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[kube(
    group = "apis.kcp.io",
    version = "v1alpha1",
    kind = "APIExportEndpointSlice",
    status = "APIExportEndpointSliceStatus",
    derive = "PartialEq",
    derive = "Default"
)]
pub struct APIExportEndpointSliceSpec {
    pub export: ExportBindingReference,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub partition: String,
}

/// The endpoints kcp currently serves the export at.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct APIExportEndpointSliceStatus {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub endpoints: Vec<APIExportEndpoint>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub shard_selector: String,
}

/// One virtual-workspace URL, e.g. `https://host/services/apiexport/<cluster>/<export>`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct APIExportEndpoint {
    pub url: String,
}

impl APIExportEndpointSlice {
    /// The endpoint URLs, in order, without duplicates.
    pub fn urls(&self) -> Vec<&str> {
        let mut urls: Vec<&str> = Vec::new();
        for endpoint in self.status.iter().flat_map(|s| &s.endpoints) {
            if !urls.contains(&endpoint.url.as_str()) {
                urls.push(&endpoint.url);
            }
        }
        urls
    }
}
