//! Status writes as the konnector's committer makes them: a JSON merge patch on `/status` that
//! carries the read `resourceVersion` and `uid` as preconditions; on 409 the object is read
//! again and the decision re-applied.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams};
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;

use super::KonnectorError;

/// How often a write is retried after a conflict before giving up.
pub const CONFLICT_RETRIES: usize = 5;

/// Reads `name`, asks `decide` for the new status (`None`: nothing to change), and patches it
/// with the read resourceVersion as precondition, re-reading on conflict. Returns the object
/// as written (or as read when nothing changed).
pub async fn write_status<K, F>(
    api: &Api<K>,
    namespace: &str,
    name: &str,
    mut decide: F,
) -> Result<K, KonnectorError>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
    F: FnMut(&K, &Time) -> Option<serde_json::Value>,
{
    let kind = K::kind(&()).into_owned();
    let failed = |action: &'static str, source: kube::Error| KonnectorError::Kube {
        action,
        kind: kind.clone(),
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        source,
    };
    for _ in 0..CONFLICT_RETRIES {
        let current = api.get(name).await.map_err(|e| failed("get", e))?;
        let now = Time(Timestamp::now());
        let Some(status) = decide(&current, &now) else {
            return Ok(current);
        };
        let patch = serde_json::json!({
            "metadata": {
                "resourceVersion": current.resource_version(),
                "uid": current.uid(),
            },
            "status": status,
        });
        match api
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Ok(written) => return Ok(written),
            Err(kube::Error::Api(status)) if status.code == 409 => continue,
            Err(e) => return Err(failed("patch status of", e)),
        }
    }
    Err(KonnectorError::Conflict {
        kind,
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        attempts: CONFLICT_RETRIES,
    })
}
