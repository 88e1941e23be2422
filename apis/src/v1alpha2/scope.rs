//! Scope of an export's informers and how cluster-scoped objects are kept apart per consumer.

use crate::open_enum::open_enum;

open_enum! {
    /// Whether the konnector watches bound objects cluster-wide or per namespace.
    pub enum InformerScope {
        Cluster => "Cluster",
        Namespaced => "Namespaced",
    }
}

open_enum! {
    /// How cluster-scoped consumer objects are stored on the provider.
    pub enum Isolation {
        /// Cluster-scoped, name prefixed with the cluster namespace.
        Prefixed => "Prefixed",
        /// Namespaced in the cluster namespace, same name.
        Namespaced => "Namespaced",
        /// Cluster-scoped, same name.
        None => "None",
    }
}
