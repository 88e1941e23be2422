//! Turns an APIResourceSchema (what an APIExport exports) into the CRD that binding installs.

use serde_json::{Map, Value, json};

use crate::crd_compat::make_crd_compatible;

/// Annotation on installed CRDs naming the APIResourceSchema they came from.
pub const BOUND_SCHEMA_ANNOTATION: &str = "apis.kcp.io/bound-schema";
/// Annotation on installed CRDs naming the export (`<cluster id>:<name>`) they belong to.
pub const BOUND_EXPORT_ANNOTATION: &str = "apis.kcp.io/bound-export";

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SchemaError {
    #[error("APIResourceSchema {schema}: missing {field}")]
    Missing { schema: String, field: &'static str },
}

/// The parts of a schema a binding needs to report (`status.boundResources`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemaSummary {
    pub group: String,
    pub plural: String,
    pub storage_versions: Vec<String>,
}

/// Builds the CRD for `schema` (an `apis.kcp.io/v1alpha1` APIResourceSchema object), marked as
/// bound from `export_key`, with the 1.20 compatibility step applied.
pub fn crd_from_schema(
    schema: &Value,
    export_key: &str,
) -> Result<(Value, SchemaSummary), SchemaError> {
    let schema_name = schema
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("<unnamed>");
    let missing = |field| SchemaError::Missing {
        schema: schema_name.to_string(),
        field,
    };
    let spec = schema.get("spec").ok_or_else(|| missing("spec"))?;
    let group = spec
        .get("group")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let names = spec.get("names").ok_or_else(|| missing("spec.names"))?;
    let plural = names
        .get("plural")
        .and_then(Value::as_str)
        .ok_or_else(|| missing("spec.names.plural"))?;
    let scope = spec
        .get("scope")
        .and_then(Value::as_str)
        .unwrap_or("Namespaced");
    let versions = spec
        .get("versions")
        .and_then(Value::as_array)
        .ok_or_else(|| missing("spec.versions"))?;

    let mut crd_versions = Vec::with_capacity(versions.len());
    let mut storage_versions = Vec::new();
    for version in versions {
        let name = version
            .get("name")
            .and_then(Value::as_str)
            .ok_or_else(|| missing("spec.versions[].name"))?;
        let storage = version
            .get("storage")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        if storage {
            storage_versions.push(name.to_string());
        }
        let mut v = Map::new();
        v.insert("name".into(), json!(name));
        v.insert(
            "served".into(),
            json!(
                version
                    .get("served")
                    .and_then(Value::as_bool)
                    .unwrap_or(true)
            ),
        );
        v.insert("storage".into(), json!(storage));
        let open_api = version.get("schema").cloned().unwrap_or_else(
            || json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true}),
        );
        v.insert("schema".into(), json!({ "openAPIV3Schema": open_api }));
        for key in [
            "subresources",
            "additionalPrinterColumns",
            "deprecated",
            "deprecationWarning",
        ] {
            if let Some(value) = version.get(key) {
                v.insert(key.into(), value.clone());
            }
        }
        crd_versions.push(Value::Object(v));
    }

    let mut crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": if group.is_empty() { plural.to_string() } else { format!("{plural}.{group}") },
            "annotations": {
                BOUND_SCHEMA_ANNOTATION: schema_name,
                BOUND_EXPORT_ANNOTATION: export_key,
            },
        },
        "spec": {
            "group": group,
            "names": names,
            "scope": scope,
            "versions": crd_versions,
        },
    });
    make_crd_compatible(&mut crd);
    Ok((
        crd,
        SchemaSummary {
            group: group.to_string(),
            plural: plural.to_string(),
            storage_versions,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_compatible_crd() {
        let schema = json!({
            "metadata": {"name": "v1.widgets.example.dev"},
            "spec": {
                "group": "example.dev",
                "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                "scope": "Namespaced",
                "versions": [{"name": "v1", "served": true, "storage": true,
                    "subresources": {"status": {}},
                    "schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
                        "group": {"type": "string", "default": ""}}}}}}]
            }
        });
        let (crd, summary) = crd_from_schema(&schema, "abc:widgets").unwrap();
        assert_eq!(crd["metadata"]["name"], "widgets.example.dev");
        assert_eq!(
            crd["metadata"]["annotations"][BOUND_SCHEMA_ANNOTATION],
            "v1.widgets.example.dev"
        );
        assert_eq!(
            crd["spec"]["versions"][0]["subresources"],
            json!({"status": {}})
        );
        let group = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"]["group"];
        assert!(group.get("default").is_none());
        assert_eq!(
            summary,
            SchemaSummary {
                group: "example.dev".into(),
                plural: "widgets".into(),
                storage_versions: vec!["v1".into()]
            }
        );
    }

    #[test]
    fn reports_missing_names() {
        let err = crd_from_schema(
            &json!({"metadata": {"name": "s"}, "spec": {"group": "g"}}),
            "k",
        )
        .unwrap_err();
        assert_eq!(
            err,
            SchemaError::Missing {
                schema: "s".into(),
                field: "spec.names"
            }
        );
    }
}
