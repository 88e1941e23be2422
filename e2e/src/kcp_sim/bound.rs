//! Which logical clusters are bound to which APIExport, with the resources each binding serves:
//! the source of truth for the APIExport virtual workspace. Merged watches subscribe to changes.

use std::{
    collections::{BTreeMap, HashMap},
    fmt,
    sync::RwLock,
};

use tokio::sync::watch;

use super::{
    kcp_types::{Claim, ExportSpec, GroupResource},
    names::ClusterId,
};

/// An APIExport: the logical cluster holding it and its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExportKey {
    pub cluster: ClusterId,
    pub name: String,
}

impl fmt::Display for ExportKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.cluster, self.name)
    }
}

/// Discovery facts of one exported resource, taken from its APIResourceSchema.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedApi {
    pub group: String,
    pub plural: String,
    pub singular: String,
    pub kind: String,
    pub list_kind: String,
    pub namespaced: bool,
    pub versions: Vec<String>,
    /// Versions with a status subresource.
    pub status_versions: Vec<String>,
    pub short_names: Vec<String>,
    pub categories: Vec<String>,
}

/// A cluster bound to an export through one APIBinding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoundCluster {
    pub binding: String,
    /// Claims the binding accepted, with the verbs in force.
    pub claims: Vec<Claim>,
}

/// How the virtual workspace serves a resource to one bound cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// An exported resource: every verb.
    Exported,
    /// An accepted permission claim: its verbs.
    Claimed(Claim),
    /// APIBindings to this export: read only.
    Bindings,
}

impl Access {
    pub fn allows(&self, verb: &str) -> bool {
        match self {
            Access::Exported => true,
            Access::Claimed(claim) => claim.allows(verb),
            Access::Bindings => matches!(verb, "get" | "list" | "watch"),
        }
    }
}

pub const BINDINGS: (&str, &str) = ("apis.kcp.io", "apibindings");

/// An export as the virtual workspace sees it.
#[derive(Clone, Debug, Default)]
pub struct ExportState {
    pub spec: ExportSpec,
    pub apis: Vec<ExportedApi>,
    pub bound: BTreeMap<ClusterId, BoundCluster>,
}

impl ExportState {
    /// How `resource` is served to `cluster`, if at all.
    pub fn access(&self, cluster: &ClusterId, resource: &GroupResource) -> Option<Access> {
        let bound = self.bound.get(cluster)?;
        self.access_for(bound, resource)
    }

    fn access_for(&self, bound: &BoundCluster, resource: &GroupResource) -> Option<Access> {
        if self
            .spec
            .resources
            .iter()
            .any(|r| r.group == resource.group && r.resource == resource.resource)
        {
            return Some(Access::Exported);
        }
        if (resource.group.as_str(), resource.resource.as_str()) == BINDINGS {
            return Some(Access::Bindings);
        }
        bound
            .claims
            .iter()
            .find(|c| &c.resource == resource)
            .map(|c| Access::Claimed(c.clone()))
    }

    /// The bound clusters serving `resource` (for merged LIST/WATCH).
    pub fn clusters_serving(&self, resource: &GroupResource) -> Vec<ClusterId> {
        self.bound
            .iter()
            .filter(|(_, b)| self.access_for(b, resource).is_some())
            .map(|(c, _)| c.clone())
            .collect()
    }

    /// Whether the export's API set (what discovery shows) contains `resource`.
    pub fn serves(&self, resource: &GroupResource) -> bool {
        self.spec
            .resources
            .iter()
            .any(|r| r.group == resource.group && r.resource == resource.resource)
            || (resource.group.as_str(), resource.resource.as_str()) == BINDINGS
            || self.spec.claims.iter().any(|c| &c.resource == resource)
    }
}

/// All exports and their bindings; every change bumps a generation that watchers observe.
pub struct BindingRegistry {
    exports: RwLock<HashMap<ExportKey, ExportState>>,
    generation: watch::Sender<u64>,
}

impl Default for BindingRegistry {
    fn default() -> Self {
        Self {
            exports: RwLock::default(),
            generation: watch::channel(0).0,
        }
    }
}

impl BindingRegistry {
    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<ExportKey, ExportState>> {
        self.exports
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<ExportKey, ExportState>> {
        self.exports
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn bump(&self) {
        self.generation.send_modify(|g| *g += 1);
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    pub fn set_export(&self, key: ExportKey, spec: ExportSpec, apis: Vec<ExportedApi>) {
        let changed = {
            let mut exports = self.write();
            let state = exports.entry(key).or_default();
            let changed = state.spec != spec || state.apis != apis;
            state.spec = spec;
            state.apis = apis;
            changed
        };
        if changed {
            self.bump();
        }
    }

    /// Forgets a deleted export (its bindings stop being served).
    pub fn remove_export(&self, key: &ExportKey) {
        if self.write().remove(key).is_some() {
            self.bump();
        }
    }

    pub fn bind(&self, key: &ExportKey, cluster: ClusterId, bound: BoundCluster) {
        let changed = {
            let mut exports = self.write();
            let state = exports.entry(key.clone()).or_default();
            state.bound.insert(cluster, bound.clone()) != Some(bound)
        };
        if changed {
            self.bump();
        }
    }

    /// Removes `binding` of `cluster` from whatever export it was bound to.
    pub fn unbind(&self, cluster: &ClusterId, binding: &str) {
        let changed = {
            let mut exports = self.write();
            let mut changed = false;
            for state in exports.values_mut() {
                if state
                    .bound
                    .get(cluster)
                    .is_some_and(|b| b.binding == binding)
                {
                    state.bound.remove(cluster);
                    changed = true;
                }
            }
            changed
        };
        if changed {
            self.bump();
        }
    }

    pub fn export(&self, key: &ExportKey) -> Option<ExportState> {
        self.read().get(key).cloned()
    }

    /// The export `cluster` is bound to through `binding`, if any.
    pub fn export_of_binding(&self, cluster: &ClusterId, binding: &str) -> Option<ExportKey> {
        self.read()
            .iter()
            .find(|(_, s)| s.bound.get(cluster).is_some_and(|b| b.binding == binding))
            .map(|(k, _)| k.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kcp_sim::kcp_types::ExportedResource;

    #[test]
    fn access_follows_exports_claims_and_bindings() {
        let a = ClusterId::parse("aaaaaaaaaaaaaaaa").unwrap();
        let b = ClusterId::parse("bbbbbbbbbbbbbbbb").unwrap();
        let key = ExportKey {
            cluster: ClusterId::parse("kkkkkkkkkkkkkkkk").unwrap(),
            name: "e".into(),
        };
        let reg = BindingRegistry::default();
        let mut rx = reg.subscribe();
        let cm = GroupResource::new("", "configmaps");
        let claim = Claim {
            resource: cm.clone(),
            verbs: vec!["get".into(), "list".into(), "watch".into()],
        };
        reg.set_export(
            key.clone(),
            ExportSpec {
                resources: vec![ExportedResource {
                    group: "x.dev".into(),
                    resource: "widgets".into(),
                    schema: "s".into(),
                }],
                claims: vec![claim.clone()],
            },
            vec![],
        );
        reg.bind(
            &key,
            a.clone(),
            BoundCluster {
                binding: "e".into(),
                claims: vec![claim],
            },
        );
        reg.bind(
            &key,
            b.clone(),
            BoundCluster {
                binding: "e".into(),
                claims: vec![],
            },
        );
        assert!(rx.has_changed().unwrap());
        let state = reg.export(&key).unwrap();
        assert_eq!(
            state.access(&a, &GroupResource::new("x.dev", "widgets")),
            Some(Access::Exported)
        );
        assert!(state.access(&a, &cm).unwrap().allows("list"));
        assert!(!state.access(&a, &cm).unwrap().allows("delete"));
        assert_eq!(state.access(&b, &cm), None, "b did not accept the claim");
        assert_eq!(state.clusters_serving(&cm), vec![a.clone()]);
        assert!(
            !state
                .access(&a, &GroupResource::new("apis.kcp.io", "apibindings"))
                .unwrap()
                .allows("create")
        );
        assert_eq!(state.access(&a, &GroupResource::new("", "secrets")), None);
        rx.mark_unchanged();
        reg.unbind(&a, "e");
        assert!(rx.has_changed().unwrap());
        assert!(!reg.export(&key).unwrap().bound.contains_key(&a));
    }
}
