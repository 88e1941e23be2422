//! References to the Secret holding a kubeconfig.

use serde::{Deserialize, Serialize};

use crate::open_enum::open_enum;
use crate::strict::check_fields;

open_enum! {
    /// The only key a kubeconfig Secret may use.
    pub enum KubeconfigSecretKey {
        Kubeconfig => "kubeconfig",
    }
}

/// A key of a Secret in the object's own namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LocalSecretKeyRef {
    #[schemars(length(min = 1))]
    pub name: String,
    pub key: KubeconfigSecretKey,
}

/// A key of a Secret in a given namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ClusterSecretKeyRef {
    #[schemars(length(min = 1))]
    pub name: String,
    pub key: KubeconfigSecretKey,
    #[schemars(length(min = 1))]
    pub namespace: String,
}

check_fields!(LocalSecretKeyRef { key => "key" });
check_fields!(ClusterSecretKeyRef { key => "key" });
