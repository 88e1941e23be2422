//! The one way controllers write status: a merge patch of the status subresource, guarded by
//! the resourceVersion the reconciler decided on, under one field manager.
//!
//! The guard matters because other writers share these objects (in kube-bind, the consumer's
//! konnector writes conditions on the same status): a write based on an old read fails with 409
//! instead of erasing theirs, and the manager runs the key again at once on the newer object.

use std::fmt::Debug;

use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt as _};
use serde::de::DeserializeOwned;

/// The field manager of every write the backend makes.
pub const FIELD_MANAGER: &str = "kube-bind-backend";

/// Merge-patches `status` into the status of `object` (as read by the reconciler), failing with
/// 409 if the object changed since.
pub async fn patch_status<K>(
    api: &Api<K>,
    object: &K,
    status: serde_json::Value,
) -> Result<K, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    let patch = guarded_status_patch(object, status);
    api.patch_status(&object.name_any(), &params(), &Patch::Merge(&patch))
        .await
}

/// The patch [`patch_status`] sends: the status and the resourceVersion precondition.
fn guarded_status_patch<K: Resource>(object: &K, status: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"resourceVersion": object.meta().resource_version},
        "status": status,
    })
}

/// Write parameters with the backend's field manager.
pub fn params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_owned()),
        ..PatchParams::default()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    #[test]
    fn the_patch_carries_the_version_it_was_decided_on() {
        let mut object = ConfigMap::default();
        object.metadata.name = Some("x".into());
        object.metadata.resource_version = Some("42".into());
        let patch = guarded_status_patch(&object, serde_json::json!({"phase": "Ready"}));
        assert_eq!(
            patch,
            serde_json::json!({"metadata": {"resourceVersion": "42"}, "status": {"phase": "Ready"}})
        );
        assert_eq!(params().field_manager.as_deref(), Some(FIELD_MANAGER));
    }
}
