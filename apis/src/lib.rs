//! kube-bind.io API types, wire bodies, and the kcp subset the backend reads and writes.
//!
//! - [`v1alpha2`]: every kube-bind kind (stored version); [`v1alpha1`]: older versions still served.
//! - [`wire`]: non-Kubernetes JSON bodies of the HTTP API (BindingProvider, BindingResponse, errors).
//! - [`conditions`]: condition types and the rules for setting them.
//! - [`kcp`]: `apis.kcp.io` / `core.kcp.io` types.
//! - [`crds`]: the final CustomResourceDefinitions, as committed under `apis/crds/`.
//! - [`strict`]: strict decoding for input from people; everything else decodes tolerantly.

pub(crate) mod open_enum;

pub mod claimable;
pub mod conditions;
pub mod crds;
pub mod kcp;
pub mod kcp_config;
pub mod keys;
pub(crate) mod schema;
pub mod strict;
pub mod v1alpha1;
pub mod v1alpha2;
pub mod wire;

pub use claimable::{CLAIMABLE_APIS, ClaimableApi, resolve_claimable_api};
pub use conditions::{Condition, ConditionSeverity, ConditionStatus, HasConditions};
pub use v1alpha2::*;
