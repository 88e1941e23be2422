//! Writes shared by the kube-bind controllers for the children they own: server-side apply of
//! the desired object under the backend's field manager, and deletes that tolerate absence.

use std::collections::BTreeMap;
use std::fmt::Debug;

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use kube::api::{Api, DeleteParams, Patch, PatchParams};
use kube::{Resource, ResourceExt as _};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::provision::objects::binder_cluster_role;
use crate::resources::rbac::BINDER_ROLE_NAME;
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

/// The global ClusterRole `kube-binder` that the RoleBinding of every cluster namespace refers
/// to: read, and applied when missing or different. When two writers create it at once, the
/// one refused with 409 reads it again (once).
pub async fn ensure_binder_cluster_role(api: &Api<ClusterRole>) -> Result<(), kube::Error> {
    let desired = binder_cluster_role();
    let mut read_again = true;
    loop {
        let current = api.get_opt(BINDER_ROLE_NAME).await?;
        match ensure_rules(api, current.as_ref(), &desired).await {
            Err(kube::Error::Api(status)) if status.code == 409 && read_again => {
                read_again = false;
            }
            done => return done,
        }
    }
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

/// Whether `current` carries what the backend sets on `desired`: its owner references, and its
/// labels and annotations (others' labels and annotations are left alone).
pub fn metadata_matches(current: &ObjectMeta, desired: &ObjectMeta) -> bool {
    let includes = |have: &Option<BTreeMap<String, String>>,
                    want: &Option<BTreeMap<String, String>>| {
        want.iter()
            .flatten()
            .all(|(k, v)| have.as_ref().and_then(|h| h.get(k)) == Some(v))
    };
    current.owner_references == desired.owner_references
        && includes(&current.labels, &desired.labels)
        && includes(&current.annotations, &desired.annotations)
}

/// A (Cluster)RoleBinding as far as the backend decides it.
pub trait Binding:
    Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug
{
    fn role_ref(&self) -> &RoleRef;
    fn subjects(&self) -> &Option<Vec<Subject>>;
}

impl Binding for RoleBinding {
    fn role_ref(&self) -> &RoleRef {
        &self.role_ref
    }
    fn subjects(&self) -> &Option<Vec<Subject>> {
        &self.subjects
    }
}

impl Binding for ClusterRoleBinding {
    fn role_ref(&self) -> &RoleRef {
        &self.role_ref
    }
    fn subjects(&self) -> &Option<Vec<Subject>> {
        &self.subjects
    }
}

/// A (Cluster)Role as far as the backend decides it.
pub trait Rules: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + Debug {
    fn rules(&self) -> &Option<Vec<PolicyRule>>;
}

impl Rules for Role {
    fn rules(&self) -> &Option<Vec<PolicyRule>> {
        &self.rules
    }
}

impl Rules for ClusterRole {
    fn rules(&self) -> &Option<Vec<PolicyRule>> {
        &self.rules
    }
}

/// Makes the binding `desired` exist as it is, given `current` (as cached): nothing when it
/// matches, an apply when it differs, delete and apply when its roleRef (immutable) differs.
pub async fn ensure_binding<K: Binding>(
    api: &Api<K>,
    current: Option<&K>,
    desired: &K,
) -> Result<(), kube::Error> {
    if let Some(current) = current {
        if current.role_ref() == desired.role_ref()
            && current.subjects() == desired.subjects()
            && metadata_matches(current.meta(), desired.meta())
        {
            return Ok(());
        }
        if current.role_ref() != desired.role_ref() {
            delete_if_present(api, &desired.name_any()).await?;
        }
    }
    apply(api, desired).await.map(drop)
}

/// Makes the role `desired` exist as it is, given `current` (as cached).
pub async fn ensure_rules<K: Rules>(
    api: &Api<K>,
    current: Option<&K>,
    desired: &K,
) -> Result<(), kube::Error> {
    let up_to_date = current.is_some_and(|c| {
        c.rules() == desired.rules() && metadata_matches(c.meta(), desired.meta())
    });
    if up_to_date {
        return Ok(());
    }
    apply(api, desired).await.map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(labels: &[(&str, &str)], owner: Option<&str>) -> ObjectMeta {
        ObjectMeta {
            labels: Some(
                labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
            ),
            owner_references: owner.map(|uid| {
                vec![
                    k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference {
                        uid: uid.to_owned(),
                        ..Default::default()
                    },
                ]
            }),
            ..Default::default()
        }
    }

    #[test]
    fn metadata_matches_table() {
        let desired = meta(&[("a", "1")], Some("u1"));
        let cases = [
            ("same", meta(&[("a", "1")], Some("u1")), true),
            (
                "others' labels kept",
                meta(&[("a", "1"), ("b", "2")], Some("u1")),
                true,
            ),
            (
                "label value differs",
                meta(&[("a", "2")], Some("u1")),
                false,
            ),
            ("label missing", meta(&[], Some("u1")), false),
            ("owner differs", meta(&[("a", "1")], Some("u2")), false),
            ("owner missing", meta(&[("a", "1")], None), false),
        ];
        for (name, current, want) in cases {
            assert_eq!(metadata_matches(&current, &desired), want, "{name}");
        }
    }
}
