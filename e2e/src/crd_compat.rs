//! The CRD compatibility step for the 1.20 apiservers: what an upstream CRD must lose to install.
//!
//! Why: this apiserver build rejects an empty-string default (`default: ""`, used by upstream
//! kube-bind for every `group` field) and silently drops CEL rules (`x-kubernetes-validations`).
//! The stored CRD therefore differs from `apis/crds/`; callers never diff a live CRD against it.

use serde_json::Value;

/// Removes every `default: ""` and every `x-kubernetes-validations` below `value`, in place.
/// Returns how many fields were removed (for logs).
pub fn strip_unsupported_schema_fields(value: &mut Value) -> usize {
    let mut removed = 0;
    match value {
        Value::Object(map) => {
            if map.get("default") == Some(&Value::String(String::new())) {
                map.remove("default");
                removed += 1;
            }
            if map.remove("x-kubernetes-validations").is_some() {
                removed += 1;
            }
            for child in map.values_mut() {
                removed += strip_unsupported_schema_fields(child);
            }
        }
        Value::Array(items) => {
            for child in items {
                removed += strip_unsupported_schema_fields(child);
            }
        }
        _ => {}
    }
    removed
}

/// Applies the compatibility step to a whole CRD object (`apiextensions.k8s.io/v1`), touching
/// only `spec.versions[].schema`, so names and metadata stay exactly as given.
pub fn make_crd_compatible(crd: &mut Value) -> usize {
    let mut removed = 0;
    if let Some(versions) = crd
        .pointer_mut("/spec/versions")
        .and_then(Value::as_array_mut)
    {
        for version in versions {
            if let Some(schema) = version.get_mut("schema") {
                removed += strip_unsupported_schema_fields(schema);
            }
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drops_empty_defaults_and_cel_rules_only() {
        let mut crd = json!({
            "metadata": {"name": "x.kube-bind.io", "annotations": {"default": ""}},
            "spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {
                "type": "object",
                "x-kubernetes-validations": [{"rule": "self.a == 1"}],
                "properties": {
                    "group": {"type": "string", "default": ""},
                    "scope": {"type": "string", "default": "Namespaced"},
                    "items": {"type": "array", "items": {"type": "object", "properties": {
                        "g": {"type": "string", "default": ""}}}}
                }
            }}}]}
        });
        assert_eq!(make_crd_compatible(&mut crd), 3);
        let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
        assert!(schema.get("x-kubernetes-validations").is_none());
        assert!(schema["properties"]["group"].get("default").is_none());
        assert_eq!(schema["properties"]["scope"]["default"], "Namespaced");
        assert!(
            schema["properties"]["items"]["items"]["properties"]["g"]
                .get("default")
                .is_none()
        );
        assert_eq!(
            crd["metadata"]["annotations"]["default"], "",
            "metadata is untouched"
        );
    }
}
