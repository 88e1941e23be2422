//! APIConversion: field-level conversion rules between versions of a kcp APIResourceSchema.
//!
//! A kcp-era kind with a CRD but no Go type upstream and no use in the backend; modelled so the
//! CRD can be generated and objects read without loss. Its name equals the schema's name.

use kube::CustomResource;
use serde::{Deserialize, Serialize};

use super::boundschema::VERSION_PATTERN;
use crate::strict::no_open_enums;

/// The conversions, keyed by (from, to).
#[derive(
    CustomResource,
    Clone,
    Debug,
    Default,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[kube(
    group = "kube-bind.io",
    version = "v1alpha2",
    kind = "APIConversion",
    doc = "Field-level conversion rules between versions of a kcp APIResourceSchema.",
    category = "kcp",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    derive = "PartialEq",
    derive = "Default"
)]
pub struct APIConversionSpec {
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["from", "to"]))]
    pub conversions: Vec<APIVersionConversion>,
}

/// How objects move from one version to another.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct APIVersionConversion {
    #[schemars(length(min = 1), pattern(VERSION_PATTERN))]
    pub from: String,
    #[schemars(length(min = 1), pattern(VERSION_PATTERN))]
    pub to: String,
    /// Field moves, keyed by destination.
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["destination"]))]
    pub rules: Vec<APIConversionRule>,
    /// JSON paths kept verbatim in an annotation for the round trip back.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preserve: Vec<String>,
}

/// Moves one field, optionally transforming it with a CEL expression.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct APIConversionRule {
    #[schemars(length(min = 1))]
    pub field: String,
    #[schemars(length(min = 1))]
    pub destination: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub transformation: String,
}

no_open_enums!(
    APIConversionSpec,
    APIVersionConversion,
    APIConversionRule,
    APIConversion
);
