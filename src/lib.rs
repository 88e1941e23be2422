//! The kube-bind backend: a kcp-first controller and HTTP service that lets consumers bind to a
//! service provider's Kubernetes APIs.
//!
//! Data flows one way: provider → cache → queue → reconciler → API writes; the HTTP layer reads
//! the same caches and never reconciles.

pub mod app;
pub mod auth;
pub mod controllers;
pub mod crypto;
pub mod http;
pub mod metrics;
pub mod oidc_issuer;
pub mod options;
pub mod provider;
pub mod provision;
pub mod readiness;
pub mod resources;
pub mod runtime;
pub mod version;
