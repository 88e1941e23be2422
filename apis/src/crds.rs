//! The ten kube-bind.io CustomResourceDefinitions, exactly as committed under `apis/crds/`.
//!
//! Most of each CRD is derived from the Rust types by kube-derive; this module then reshapes the
//! result where upstream's controller-gen output differs: it merges the served v1alpha1 versions,
//! sets `conversion: {strategy: None}` where upstream's patches do, drops `nullable`/`title`
//! (upstream has neither), declares `apiVersion`/`kind`/`metadata` at the root, and fixes the
//! root `required` list per kind. Regenerate the YAML with `cargo run -p xtask -- generate`.

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;
use serde_json::{Value, json};

use crate::{v1alpha1, v1alpha2};

/// Why a CRD could not be assembled (only a bug in this crate can cause it).
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    #[error("CRD {name} could not be converted: {source}")]
    Convert {
        name: String,
        source: serde_json::Error,
    },
    #[error("CRD {name} could not be rendered as YAML: {message}")]
    Yaml { name: String, message: String },
}

/// How one kind differs from what kube-derive produces.
struct Shape {
    /// Upstream's root `required: [spec]` on the v1alpha2 schema.
    requires_spec: bool,
    /// Upstream's root `required: [spec]` on the v1alpha1 schema, if that version is served.
    v1alpha1: Option<(CustomResourceDefinition, bool)>,
    /// `spec.conversion: {strategy: None}` is present upstream.
    conversion_none: bool,
    /// `status` defaults to `{}` (export requests only).
    status_defaults_empty: bool,
}

/// All ten CRDs, ordered by plural name.
pub fn all() -> Result<Vec<CustomResourceDefinition>, CrdError> {
    let mut crds = vec![
        build(
            v1alpha2::APIConversion::crd(),
            Shape {
                requires_spec: false,
                v1alpha1: None,
                conversion_none: true,
                status_defaults_empty: false,
            },
        )?,
        build(
            v1alpha2::APIServiceBinding::crd(),
            Shape {
                requires_spec: false,
                v1alpha1: Some((v1alpha1::APIServiceBinding::crd(), false)),
                conversion_none: true,
                status_defaults_empty: false,
            },
        )?,
        build(
            v1alpha2::APIServiceExportRequest::crd(),
            Shape {
                requires_spec: true,
                v1alpha1: Some((v1alpha1::APIServiceExportRequest::crd(), true)),
                conversion_none: true,
                status_defaults_empty: true,
            },
        )?,
        build(
            v1alpha2::APIServiceExport::crd(),
            Shape {
                requires_spec: true,
                v1alpha1: Some((v1alpha1::APIServiceExport::crd(), true)),
                conversion_none: true,
                status_defaults_empty: false,
            },
        )?,
        build(
            v1alpha2::APIServiceExportTemplate::crd(),
            Shape {
                requires_spec: true,
                v1alpha1: None,
                conversion_none: false,
                status_defaults_empty: false,
            },
        )?,
        build(
            v1alpha2::APIServiceNamespace::crd(),
            Shape {
                requires_spec: false,
                v1alpha1: Some((v1alpha1::APIServiceNamespace::crd(), false)),
                conversion_none: true,
                status_defaults_empty: false,
            },
        )?,
        bindable_resources_requests()?,
        build(
            v1alpha2::BoundSchema::crd(),
            Shape {
                requires_spec: false,
                v1alpha1: None,
                conversion_none: true,
                status_defaults_empty: false,
            },
        )?,
        build(
            v1alpha2::ClusterBinding::crd(),
            Shape {
                requires_spec: true,
                v1alpha1: Some((v1alpha1::ClusterBinding::crd(), true)),
                conversion_none: true,
                status_defaults_empty: false,
            },
        )?,
        build(
            v1alpha2::Collection::crd(),
            Shape {
                requires_spec: true,
                v1alpha1: None,
                conversion_none: false,
                status_defaults_empty: false,
            },
        )?,
    ];
    crds.sort_by(|a, b| a.spec.names.plural.cmp(&b.spec.names.plural));
    Ok(crds)
}

/// The file name upstream uses for a CRD: `kube-bind.io_<plural>.yaml`.
pub fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}_{}.yaml", crd.spec.group, crd.spec.names.plural)
}

/// One CRD as a YAML document.
pub fn to_yaml(crd: &CustomResourceDefinition) -> Result<String, CrdError> {
    let name = crd.metadata.name.clone().unwrap_or_default();
    let value = serde_json::to_value(crd).map_err(|source| CrdError::Convert {
        name: name.clone(),
        source,
    })?;
    serde_saphyr::to_string(&value).map_err(|e| CrdError::Yaml {
        name,
        message: e.to_string(),
    })
}

/// Every CRD as one multi-document YAML stream.
pub fn all_to_yaml() -> Result<String, CrdError> {
    let mut out = String::new();
    for crd in all()? {
        out.push_str("---\n");
        out.push_str(&to_yaml(&crd)?);
    }
    Ok(out)
}

fn build(
    v1alpha2: CustomResourceDefinition,
    shape: Shape,
) -> Result<CustomResourceDefinition, CrdError> {
    let name = v1alpha2.metadata.name.clone().unwrap_or_default();
    let convert = |source| CrdError::Convert {
        name: name.clone(),
        source,
    };
    let mut crd = serde_json::to_value(&v1alpha2).map_err(convert)?;
    let mut versions = Vec::new();
    if let Some((older, requires_spec)) = shape.v1alpha1 {
        let older = serde_json::to_value(&older).map_err(convert)?;
        if let Some(mut version) = older.pointer("/spec/versions/0").cloned() {
            reshape_version(&mut version, requires_spec, shape.status_defaults_empty);
            version["storage"] = json!(false);
            versions.push(version);
        }
    }
    if let Some(mut version) = crd.pointer("/spec/versions/0").cloned() {
        reshape_version(
            &mut version,
            shape.requires_spec,
            shape.status_defaults_empty,
        );
        version["storage"] = json!(true);
        versions.push(version);
    }
    crd["spec"]["versions"] = Value::Array(versions);
    reshape_names(&mut crd["spec"]["names"]);
    if shape.conversion_none {
        crd["spec"]["conversion"] = json!({ "strategy": "None" });
    }
    serde_json::from_value(crd).map_err(convert)
}

/// Adds `listKind` the way controller-gen always does.
fn reshape_names(names: &mut Value) {
    if let Some(kind) = names.get("kind").and_then(Value::as_str) {
        let list_kind = format!("{kind}List");
        names["listKind"] = Value::String(list_kind);
    }
}

fn reshape_version(version: &mut Value, requires_spec: bool, status_defaults_empty: bool) {
    if version.get("subresources").is_none() {
        // controller-gen writes an empty subresources object for kinds without status.
        version["subresources"] = json!({});
    }
    let Some(root) = version.pointer_mut("/schema/openAPIV3Schema") else {
        return;
    };
    clean_schema(root);
    if let Some(obj) = root.as_object_mut() {
        let props = obj.entry("properties").or_insert_with(|| json!({}));
        props["apiVersion"] = json!({ "type": "string" });
        props["kind"] = json!({ "type": "string" });
        props["metadata"] = json!({ "type": "object" });
        if requires_spec {
            obj.insert("required".into(), json!(["spec"]));
        } else {
            obj.remove("required");
        }
    }
    if status_defaults_empty && let Some(status) = root.pointer_mut("/properties/status") {
        status["default"] = json!({});
    }
}

/// Removes what schemars adds but upstream never has: `nullable`, `title`, `null` enum members.
fn clean_schema(schema: &mut Value) {
    match schema {
        Value::Object(obj) => {
            obj.remove("nullable");
            obj.remove("title");
            if let Some(Value::Array(values)) = obj.get_mut("enum") {
                values.retain(|v| !v.is_null());
            }
            for (key, child) in obj.iter_mut() {
                // Defaults and preserved examples are data, not schemas.
                if key != "default" && key != "example" && key != "enum" {
                    clean_schema(child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(clean_schema),
        _ => {}
    }
}

/// BindableResourcesRequest has `templateRef` at the root and no spec, so its CRD is written here.
fn bindable_resources_requests() -> Result<CustomResourceDefinition, CrdError> {
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": { "name": "bindableresourcesrequests.kube-bind.io" },
        "spec": {
            "group": "kube-bind.io",
            "names": {
                "kind": "BindableResourcesRequest",
                "listKind": "BindableResourcesRequestList",
                "plural": "bindableresourcesrequests",
                "singular": "bindableresourcesrequest",
            },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha2",
                "served": true,
                "storage": true,
                "schema": { "openAPIV3Schema": {
                    "description": "The body of POST /api/bind: which template to bind, under which name.",
                    "type": "object",
                    "properties": {
                        "apiVersion": { "type": "string" },
                        "kind": { "type": "string" },
                        "metadata": { "type": "object" },
                        "templateRef": {
                            "description": "The APIServiceExportTemplate to bind.",
                            "type": "object",
                            "properties": { "name": { "type": "string", "description": "Name of the template." } },
                            "required": ["name"],
                        },
                    },
                }},
            }],
        },
    });
    serde_json::from_value(crd).map_err(|source| CrdError::Convert {
        name: "bindableresourcesrequests.kube-bind.io".into(),
        source,
    })
}
