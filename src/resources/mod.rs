//! Pure builders and decisions for what the controllers write: conditions, RBAC, namespaces,
//! request verdicts and spec hashes. Nothing here does I/O; the controllers call these and apply
//! the result.

pub mod bound_schema;
pub mod export;
pub mod export_hash;
pub mod export_request;
pub mod heartbeat;
pub mod namespaces;
pub mod owner;
pub mod rbac;
