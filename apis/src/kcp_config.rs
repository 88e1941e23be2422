//! The objects that set kube-bind up in a kcp workspace, as committed under `kcp-config/`.
//!
//! [`render`] builds them from the CRDs in [`crate::crds`]; `cargo run -p xtask -- generate`
//! writes them out, and [`committed`] hands the committed files (embedded at compile time) to the
//! e2e harness and the quickstart in apply order, so nobody has to list paths by hand.
//!
//! APIResourceSchemas are named `v<yymmdd>-<hash>.<plural>.kube-bind.io`, where `<hash>` is
//! derived from the schema spec. A regenerated schema keeps its previous name while the hash
//! still matches, so the name (and the date in it) changes only when the schema does.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::crds::{self, CrdError};
use crate::kcp::permission_claim::{AcceptablePermissionClaim, PermissionClaim};

/// Name of the APIExport (and of the self APIBinding and the endpoint slice kcp creates).
pub const EXPORT_NAME: &str = "kube-bind.io";
/// Workspace holding the export, as upstream's bootstrap creates it.
pub const HOME_WORKSPACE: &str = "root:kube-bind";
/// The backend's ServiceAccount in its home workspace.
pub const CONTROLLER_SERVICE_ACCOUNT: (&str, &str) = ("default", "kube-bind-controller");
/// Name of the ClusterRole (and binding) giving that ServiceAccount access to the export.
pub const CONTROLLER_ROLE: &str = "kube-bind:controller";
/// Name of the ClusterRole (and binding) that lets service-provider workspaces bind the export.
pub const BIND_ROLE: &str = "kube-bind:bind";
/// The file holding [`BIND_ROLE`], for those who apply kcp-config without it (see its README).
pub const BIND_GRANT_FILE: &str = "rbac-kube-bind-bind.yaml";
/// The file holding the home workspace's own APIBinding to the export.
pub const SELF_BINDING_FILE: &str = "apibinding-kube-bind.io.yaml";
/// Who may bind the export by default: every authenticated kcp user, as kcp grants `bind` on its
/// own `tenancy.kcp.io` and `topology.kcp.io` exports. Binding only changes the binder's own
/// workspace, whose owner accepts the claims there.
pub const BIND_GROUP: &str = "system:authenticated";

/// Length of the hash part of a schema name.
const HASH_LEN: usize = 7;

/// One generated file: its name under `kcp-config/` and the objects in it.
#[derive(Clone, Debug, PartialEq)]
pub struct ConfigFile {
    pub file_name: String,
    pub objects: Vec<Value>,
}

impl ConfigFile {
    /// The file's YAML text (documents separated by `---`).
    pub fn to_yaml(&self) -> Result<String, CrdError> {
        let mut out = String::new();
        for object in &self.objects {
            out.push_str("---\n");
            let text = serde_saphyr::to_string(object).map_err(|e| CrdError::Yaml {
                name: self.file_name.clone(),
                message: e.to_string(),
            })?;
            out.push_str(&text);
        }
        Ok(out)
    }
}

/// The claims the export makes (and its self-binding accepts): the resources the backend writes
/// through the virtual workspace, all verbs, and the events it writes about failing objects
/// (create and patch only).
pub fn permission_claims() -> Vec<PermissionClaim> {
    let events = PermissionClaim {
        // Core events: kcp does not serve events.k8s.io.
        group: String::new(),
        resource: "events".to_owned(),
        verbs: vec!["create".to_owned(), "patch".to_owned()],
        identity_hash: String::new(),
    };
    let all_verbs = [
        ("rbac.authorization.k8s.io", "clusterrolebindings"),
        ("rbac.authorization.k8s.io", "clusterroles"),
        ("rbac.authorization.k8s.io", "roles"),
        ("rbac.authorization.k8s.io", "rolebindings"),
        ("", "serviceaccounts"),
        ("", "configmaps"),
        ("", "secrets"),
        ("", "namespaces"),
        ("apiextensions.k8s.io", "customresourcedefinitions"),
        ("apis.kcp.io", "apiresourceschemas"),
    ]
    .into_iter()
    .map(|(group, resource)| PermissionClaim {
        group: group.to_owned(),
        resource: resource.to_owned(),
        verbs: vec!["*".to_owned()],
        identity_hash: String::new(),
    });
    all_verbs.chain(std::iter::once(events)).collect()
}

/// An APIResourceSchema spec converted from a CRD: same group, names, scope and conversion; each
/// version keeps its fields, with the bare OpenAPI schema instead of `{openAPIV3Schema: …}`.
pub fn schema_spec_from_crd(crd: &Value) -> Value {
    let spec = &crd["spec"];
    let mut out = json!({
        "group": spec["group"],
        "names": spec["names"],
        "scope": spec["scope"],
    });
    if let Some(conversion) = spec.get("conversion") {
        out["conversion"] = conversion.clone();
    }
    let versions: Vec<Value> = spec["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|version| {
            let mut v = version.clone();
            if let Some(obj) = v.as_object_mut() {
                let bare = obj
                    .get("schema")
                    .and_then(|s| s.get("openAPIV3Schema"))
                    .cloned()
                    .unwrap_or(json!({}));
                obj.insert("schema".into(), bare);
            }
            v
        })
        .collect();
    out["versions"] = Value::Array(versions);
    out
}

/// The hash part of a schema name: the first characters of the SHA-256 of the spec's JSON.
pub fn schema_hash(spec: &Value) -> String {
    let digest = Sha256::digest(spec.to_string().as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    hex[..HASH_LEN].to_owned()
}

/// Splits `v<yymmdd>-<hash>.<plural>.<group>` into (date, hash, rest).
pub fn parse_schema_name(name: &str) -> Option<(&str, &str, &str)> {
    let (prefix, rest) = name.split_once('.')?;
    let (date, hash) = prefix.strip_prefix('v')?.split_once('-')?;
    Some((date, hash, rest))
}

/// File name of the schema for `plural`.
pub fn schema_file_name(plural: &str) -> String {
    format!("apiresourceschema-{plural}.{EXPORT_NAME}.yaml")
}

/// Every file, in apply order.
///
/// `today` is the `yymmdd` used for new schema names; `previous(plural)` returns the name the
/// committed schema file has, so an unchanged schema keeps it.
pub fn render(
    today: &str,
    previous: &dyn Fn(&str) -> Option<String>,
) -> Result<Vec<ConfigFile>, CrdError> {
    let mut files = vec![bootstrap(), controller_rbac(), bind_grant()];
    let mut export_resources = Vec::new();
    for crd in crds::all()? {
        let plural = crd.spec.names.plural.clone();
        let crd = serde_json::to_value(&crd).map_err(|source| CrdError::Convert {
            name: plural.clone(),
            source,
        })?;
        let spec = schema_spec_from_crd(&crd);
        let hash = schema_hash(&spec);
        let name = previous(&plural)
            .filter(|old| parse_schema_name(old).is_some_and(|(_, old_hash, _)| old_hash == hash))
            .unwrap_or_else(|| format!("v{today}-{hash}.{plural}.{EXPORT_NAME}"));
        export_resources.push(json!({
            "group": crate::v1alpha2::GROUP,
            "name": plural,
            "schema": name,
            "storage": { "crd": {} },
        }));
        files.push(ConfigFile {
            file_name: schema_file_name(&plural),
            objects: vec![json!({
                "apiVersion": "apis.kcp.io/v1alpha1",
                "kind": "APIResourceSchema",
                "metadata": { "name": name },
                "spec": spec,
            })],
        });
    }
    files.push(ConfigFile {
        file_name: format!("apiexport-{EXPORT_NAME}.yaml"),
        objects: vec![json!({
            "apiVersion": "apis.kcp.io/v1alpha2",
            "kind": "APIExport",
            "metadata": { "name": EXPORT_NAME },
            "spec": { "permissionClaims": permission_claims(), "resources": export_resources },
        })],
    });
    files.push(self_binding());
    Ok(files)
}

/// Namespace, ServiceAccount and token, and the cluster-admin binding upstream's kcp-init creates.
fn bootstrap() -> ConfigFile {
    let (sa_namespace, sa_name) = CONTROLLER_SERVICE_ACCOUNT;
    ConfigFile {
        file_name: "bootstrap.yaml".into(),
        objects: vec![
            json!({ "apiVersion": "v1", "kind": "Namespace", "metadata": { "name": "controllers" } }),
            json!({
                "apiVersion": "v1", "kind": "ServiceAccount",
                "metadata": { "name": sa_name, "namespace": sa_namespace },
            }),
            json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {
                    "name": format!("{sa_name}-secret"), "namespace": sa_namespace,
                    "annotations": { "kubernetes.io/service-account.name": sa_name },
                },
                "type": "kubernetes.io/service-account-token",
            }),
            // Upstream binds cluster-admin to `admin-service-account` (not the controller's SA).
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": { "name": "kube-bind-service-account-binding" },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
                "subjects": [{ "kind": "ServiceAccount", "name": "admin-service-account", "namespace": "default" }],
            }),
        ],
    }
}

/// What the backend's ServiceAccount needs in its home workspace: find the endpoint slice and
/// use the export's virtual workspace.
fn controller_rbac() -> ConfigFile {
    let (sa_namespace, sa_name) = CONTROLLER_SERVICE_ACCOUNT;
    ConfigFile {
        file_name: "rbac-kube-bind-controller.yaml".into(),
        objects: vec![
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": { "name": CONTROLLER_ROLE },
                "rules": [
                    { "apiGroups": ["apis.kcp.io"], "resources": ["apiexportendpointslices"],
                      "verbs": ["get", "list", "watch"] },
                    { "apiGroups": ["apis.kcp.io"], "resources": ["apiexports"],
                      "verbs": ["get", "list", "watch"] },
                    { "apiGroups": ["apis.kcp.io"], "resources": ["apiexports/content"],
                      "resourceNames": [EXPORT_NAME], "verbs": ["*"] },
                    // `--leader-elect` keeps a Lease in the home workspace.
                    { "apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                      "verbs": ["get", "list", "watch", "create", "update", "patch"] },
                ],
            }),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": { "name": CONTROLLER_ROLE },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": CONTROLLER_ROLE },
                "subjects": [{ "kind": "ServiceAccount", "name": sa_name, "namespace": sa_namespace }],
            }),
        ],
    }
}

/// kcp's APIBinding admission checks verb `bind` on `apiexports/<export>` in the export's
/// workspace for whoever creates the binding; without this only kcp admins could bind.
fn bind_grant() -> ConfigFile {
    ConfigFile {
        file_name: BIND_GRANT_FILE.into(),
        objects: vec![
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
                "metadata": { "name": BIND_ROLE },
                "rules": [
                    { "apiGroups": ["apis.kcp.io"], "resources": ["apiexports"],
                      "resourceNames": [EXPORT_NAME], "verbs": ["bind"] },
                ],
            }),
            json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
                "metadata": { "name": BIND_ROLE },
                "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": BIND_ROLE },
                "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": BIND_GROUP }],
            }),
        ],
    }
}

/// The home workspace binds its own export, accepting every claim for all objects.
fn self_binding() -> ConfigFile {
    let claims: Vec<AcceptablePermissionClaim> = permission_claims()
        .iter()
        .map(AcceptablePermissionClaim::accept_all)
        .collect();
    ConfigFile {
        file_name: SELF_BINDING_FILE.into(),
        objects: vec![json!({
            "apiVersion": "apis.kcp.io/v1alpha2",
            "kind": "APIBinding",
            "metadata": { "name": EXPORT_NAME },
            "spec": {
                "reference": { "export": { "path": HOME_WORKSPACE, "name": EXPORT_NAME } },
                "permissionClaims": claims,
            },
        })],
    }
}

/// The committed `kcp-config/` files, in apply order, as (file name, YAML text).
pub fn committed_files() -> Vec<(&'static str, &'static str)> {
    macro_rules! files {
        ($($name:literal),+ $(,)?) => {
            vec![$(($name, include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../kcp-config/", $name)))),+]
        };
    }
    files![
        "bootstrap.yaml",
        "rbac-kube-bind-controller.yaml",
        "rbac-kube-bind-bind.yaml",
        "apiresourceschema-apiconversions.kube-bind.io.yaml",
        "apiresourceschema-apiservicebindings.kube-bind.io.yaml",
        "apiresourceschema-apiserviceexportrequests.kube-bind.io.yaml",
        "apiresourceschema-apiserviceexports.kube-bind.io.yaml",
        "apiresourceschema-apiserviceexporttemplates.kube-bind.io.yaml",
        "apiresourceschema-apiservicenamespaces.kube-bind.io.yaml",
        "apiresourceschema-bindableresourcesrequests.kube-bind.io.yaml",
        "apiresourceschema-boundschemas.kube-bind.io.yaml",
        "apiresourceschema-clusterbindings.kube-bind.io.yaml",
        "apiresourceschema-collections.kube-bind.io.yaml",
        "apiexport-kube-bind.io.yaml",
        "apibinding-kube-bind.io.yaml",
    ]
}

/// Every committed object, in apply order, parsed from [`committed_files`].
pub fn committed() -> Result<Vec<Value>, CrdError> {
    committed_without(&[])
}

/// The committed objects in apply order, leaving out the files named in `without` (e.g.
/// [`BIND_GRANT_FILE`], for an installation that grants `bind` its own way).
pub fn committed_without(without: &[&str]) -> Result<Vec<Value>, CrdError> {
    let mut objects = Vec::new();
    for (name, text) in committed_files() {
        if !without.contains(&name) {
            objects.extend(parse_file(name, text)?);
        }
    }
    Ok(objects)
}

/// The objects of the committed file `name`.
pub fn committed_file(name: &str) -> Result<Vec<Value>, CrdError> {
    let (name, text) = committed_files()
        .into_iter()
        .find(|(file, _)| *file == name)
        .ok_or_else(|| CrdError::Yaml {
            name: name.to_owned(),
            message: "no such file in kcp-config".to_owned(),
        })?;
    parse_file(name, text)
}

fn parse_file(name: &str, text: &str) -> Result<Vec<Value>, CrdError> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).map_err(|e| CrdError::Yaml {
        name: name.to_owned(),
        message: e.to_string(),
    })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}
