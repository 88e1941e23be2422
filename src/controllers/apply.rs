//! Writes shared by the kube-bind controllers for the children they own: server-side apply of
//! the desired object under the backend's field manager, and deletes that tolerate absence.

use std::fmt::Debug;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::runtime::status::FIELD_MANAGER;

/// Server-side applies `desired` (its name taken from its metadata), taking over the fields it
/// sets from other managers: the backend is the only intended writer of its children.
pub async fn apply<K>(api: &Api<K>, desired: &K) -> Result<K, kube::Error>
where
    K: Resource + Clone + Serialize + DeserializeOwned + Debug,
{
    let params = PatchParams::apply(FIELD_MANAGER).force();
    api.patch(&desired.name_any(), &params, &Patch::Apply(desired))
        .await
}

/// Deletes `name`; an object already gone is not an error. Returns whether a delete was sent
/// that found the object.
pub async fn delete_if_present<K>(api: &Api<K>, name: &str) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + Debug,
{
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(false),
        Err(err) => Err(err),
    }
}
