//! The fields of kcp's apis.kcp.io objects the stand-in reads, parsed leniently from JSON so
//! both v1alpha1 and v1alpha2 shapes of APIBinding permission claims are understood.

use serde_json::Value;

/// `apis.kcp.io/v1alpha2` APIExport `spec.resources[]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportedResource {
    pub group: String,
    /// The plural resource name.
    pub resource: String,
    /// Name of the APIResourceSchema in the export's workspace.
    pub schema: String,
}

/// A group/resource pair (`""` is the core group).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    pub group: String,
    pub resource: String,
}

impl GroupResource {
    pub fn new(group: &str, resource: &str) -> Self {
        Self {
            group: group.to_string(),
            resource: resource.to_string(),
        }
    }

    /// `configmaps` or `apibindings.apis.kcp.io`, as kube names a group-resource.
    pub fn display(&self) -> String {
        if self.group.is_empty() {
            self.resource.clone()
        } else {
            format!("{}.{}", self.resource, self.group)
        }
    }
}

/// A permission claim of an APIExport (v1alpha2: with verbs).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    pub resource: GroupResource,
    /// `["*"]` for everything.
    pub verbs: Vec<String>,
}

impl Claim {
    pub fn allows(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == "*" || v == verb)
    }
}

/// What an APIExport says: its resources and claims.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExportSpec {
    pub resources: Vec<ExportedResource>,
    pub claims: Vec<Claim>,
}

/// `spec.reference.export` of an APIBinding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportReference {
    /// Empty means the binding's own workspace.
    pub path: String,
    pub name: String,
}

/// A claim the binding accepted, as written in its spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedClaim {
    pub resource: GroupResource,
    /// v1alpha2 bindings repeat the verbs; v1alpha1 ones do not (`None`).
    pub verbs: Option<Vec<String>>,
}

fn str_at<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

pub fn export_spec(export: &Value) -> ExportSpec {
    let spec = export.get("spec").unwrap_or(&Value::Null);
    let resources = spec
        .get("resources")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|r| ExportedResource {
                    group: str_at(r, "group").to_string(),
                    resource: str_at(r, "name").to_string(),
                    schema: str_at(r, "schema").to_string(),
                })
                .filter(|r| !r.resource.is_empty() && !r.schema.is_empty())
                .collect()
        })
        .unwrap_or_default();
    let claims = spec
        .get("permissionClaims")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .map(|c| Claim {
                    resource: GroupResource::new(str_at(c, "group"), str_at(c, "resource")),
                    // v1alpha1 exports had no verbs: they meant every verb.
                    verbs: match c.get("verbs") {
                        Some(v) => strings(Some(v)),
                        None => vec!["*".to_string()],
                    },
                })
                .filter(|c| !c.resource.resource.is_empty())
                .collect()
        })
        .unwrap_or_default();
    ExportSpec { resources, claims }
}

pub fn export_reference(binding: &Value) -> Option<ExportReference> {
    let export = binding.pointer("/spec/reference/export")?;
    let name = str_at(export, "name");
    (!name.is_empty()).then(|| ExportReference {
        path: str_at(export, "path").to_string(),
        name: name.to_string(),
    })
}

pub fn accepted_claims(binding: &Value) -> Vec<AcceptedClaim> {
    binding
        .pointer("/spec/permissionClaims")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter(|c| str_at(c, "state") == "Accepted")
                .map(|c| AcceptedClaim {
                    resource: GroupResource::new(str_at(c, "group"), str_at(c, "resource")),
                    verbs: c.get("verbs").map(|v| strings(Some(v))),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The claims in force for a binding: the export's claims the binding accepted, with the verbs
/// both agree on.
pub fn effective_claims(export: &ExportSpec, accepted: &[AcceptedClaim]) -> Vec<Claim> {
    export
        .claims
        .iter()
        .filter_map(|claim| {
            let acc = accepted.iter().find(|a| a.resource == claim.resource)?;
            let verbs = match &acc.verbs {
                None => claim.verbs.clone(),
                Some(bv) if claim.verbs.iter().any(|v| v == "*") => bv.clone(),
                Some(bv) if bv.iter().any(|v| v == "*") => claim.verbs.clone(),
                Some(bv) => claim
                    .verbs
                    .iter()
                    .filter(|v| bv.contains(v))
                    .cloned()
                    .collect(),
            };
            Some(Claim {
                resource: claim.resource.clone(),
                verbs,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_exports_and_both_binding_claim_shapes() {
        let export = json!({"spec": {
        "resources": [{"group": "kube-bind.io", "name": "clusterbindings", "schema": "v1.clusterbindings.kube-bind.io", "storage": {"crd": {}}}],
        "permissionClaims": [
            {"group": "", "resource": "configmaps", "verbs": ["*"]},
            {"group": "", "resource": "secrets", "verbs": ["get", "list"]},
            {"group": "rbac.authorization.k8s.io", "resource": "roles", "verbs": ["*"]}
        ]}});
        let spec = export_spec(&export);
        assert_eq!(spec.resources[0].resource, "clusterbindings");
        let binding = json!({"spec": {
        "reference": {"export": {"path": "root:kube-bind", "name": "kube-bind.io"}},
        "permissionClaims": [
            {"group": "", "resource": "configmaps", "state": "Accepted", "all": true},
            {"group": "", "resource": "secrets", "state": "Accepted", "verbs": ["get"], "selector": {"matchAll": true}},
            {"group": "rbac.authorization.k8s.io", "resource": "roles", "state": "Rejected"}
        ]}});
        assert_eq!(
            export_reference(&binding),
            Some(ExportReference {
                path: "root:kube-bind".into(),
                name: "kube-bind.io".into()
            })
        );
        let eff = effective_claims(&spec, &accepted_claims(&binding));
        assert_eq!(eff.len(), 2);
        assert!(eff[0].allows("delete"));
        assert_eq!(eff[1].verbs, vec!["get".to_string()]);
        assert!(!eff[1].allows("list"));
    }
}
