//! Status writes shared by the kube-bind controllers.

use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};

use crate::provider::Cluster;
use crate::runtime::{CachedResource, Malformed, ObjectKey};

/// Writes `Ready=False` (reason `InvalidObject`, the decode error as message) into the status
/// conditions of the malformed object at `key`, replacing them: they cannot be trusted when the
/// object does not decode.
///
/// An object that does not fit `K`'s schema is often refused by the apiserver in that version
/// too (e.g. one written through an older served version with `conversion: None`), so the
/// status is tried in `K`'s version first, then in each of `older_versions`, the first the
/// apiserver accepts wins. Returns whether one did; when none does, the object is logged and
/// left alone (retrying would not help). Transient errors are returned, to be retried.
pub async fn report_on_conditions<K: CachedResource>(
    cluster: &Cluster,
    key: &ObjectKey,
    malformed: &Malformed,
    older_versions: &[&str],
) -> Result<bool, kube::Error> {
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let patch = serde_json::json!({
        "status": {
            "conditions": [{
                "type": "Ready",
                "status": "False",
                "severity": "Error",
                "reason": "InvalidObject",
                "message": format!("the object cannot be read by kube-bind: {}; fix or recreate it", malformed.error),
                "lastTransitionTime": now,
            }]
        }
    });
    let current = K::version(&());
    let versions = std::iter::once(current.as_ref()).chain(older_versions.iter().copied());
    let mut refusals = Vec::new();
    for version in versions {
        let mut resource = ApiResource::erase::<K>(&());
        resource.version = version.to_owned();
        resource.api_version = match resource.group.as_str() {
            "" => version.to_owned(),
            group => format!("{group}/{version}"),
        };
        let api: Api<DynamicObject> = match &key.namespace {
            Some(namespace) => Api::namespaced_with(cluster.client(), namespace, &resource),
            None => Api::all_with(cluster.client(), &resource),
        };
        match api
            .patch_status(&key.name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(_) => return Ok(true),
            // Refused as it stands (invalid, not served in that version, forbidden): try the next.
            Err(kube::Error::Api(status))
                if (400..500).contains(&status.code) && status.code != 429 =>
            {
                refusals.push(format!("{version}: {}", status.message));
            }
            Err(err) => return Err(err),
        }
    }
    tracing::warn!(
        object = %key, error = %malformed.error, refusals = ?refusals,
        "object cannot be decoded and its status cannot be written; fix or delete it"
    );
    Ok(false)
}
