//! The `kube-bind.io/source-spec-hash` annotation of an APIServiceExport: a hash of the specs
//! of the BoundSchemas it exports (reference §3.3 "Schema hash", §3.4).
//!
//! Upstream (`helpers.BoundSchemasSpecHash`) hashes each whole BoundSchema object, metadata and
//! status included, one JSON line each in `spec.resources` order. Every konnector status write
//! and every resourceVersion bump then changes the hash, and the export's annotation churns. We
//! hash the specs only, with object keys sorted at every level, so the value changes exactly when
//! a schema's spec does. Only the backend compares this value (the konnector never reads it), so
//! our values need not equal upstream's; they are never compared with them.

use std::fmt::Write as _;

use kube_bind_apis::BoundSchemaSpec;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Lowercase hex SHA-256 over the canonical JSON of each spec, one per line, in the given order
/// (the export's `spec.resources` order, which is immutable).
pub fn export_spec_hash<'s>(specs: impl IntoIterator<Item = &'s BoundSchemaSpec>) -> String {
    let mut hasher = Sha256::new();
    for spec in specs {
        let mut line = String::new();
        // A spec is plain data (strings, bools, JSON values); serializing it cannot fail.
        let value = serde_json::to_value(spec).unwrap_or(Value::Null);
        write_canonical(&value, &mut line);
        line.push('\n');
        hasher.update(line.as_bytes());
    }
    let mut hex = String::with_capacity(64);
    for byte in hasher.finalize() {
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

/// JSON with object keys sorted, whatever map type serde_json was built with.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use kube_bind_apis::{
        APIResourceVersion, BoundSchema, BoundSchemaStatus, CrdNames, InformerScope, ResourceScope,
    };

    use super::*;

    fn spec(schema: Value) -> BoundSchemaSpec {
        BoundSchemaSpec {
            informer_scope: InformerScope::Namespaced,
            group: "wildwest.dev".into(),
            names: CrdNames {
                plural: "cowboys".into(),
                kind: "Cowboy".into(),
                ..Default::default()
            },
            scope: ResourceScope::Namespaced,
            versions: vec![APIResourceVersion {
                name: "v1".into(),
                served: true,
                storage: true,
                deprecated: false,
                deprecation_warning: None,
                schema,
                subresources: None,
                additional_printer_columns: vec![],
            }],
            conversion: None,
        }
    }

    fn schema_json() -> Value {
        serde_json::json!({"openAPIV3Schema": {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer"}}}})
    }

    #[test]
    fn is_hex_sha256_and_deterministic() {
        let h = export_spec_hash([&spec(schema_json())]);
        assert_eq!(h.len(), 64);
        assert!(
            h.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(h, export_spec_hash([&spec(schema_json())]));
        assert_eq!(
            export_spec_hash([]),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn key_order_does_not_matter() {
        let reordered: Value = serde_json::from_str(
            r#"{"openAPIV3Schema": {"properties": {"b": {"type": "integer"}, "a": {"type": "string"}}, "type": "object"}}"#,
        )
        .unwrap();
        assert_eq!(
            export_spec_hash([&spec(schema_json())]),
            export_spec_hash([&spec(reordered)])
        );
        let mut out = String::new();
        write_canonical(
            &serde_json::json!({"b": [1, {"d": 1, "c": "x\"y"}], "a": null}),
            &mut out,
        );
        assert_eq!(out, r#"{"a":null,"b":[1,{"c":"x\"y","d":1}]}"#);
    }

    #[test]
    fn metadata_and_status_do_not_count_but_spec_does() {
        let base = BoundSchema::new("cowboys.wildwest.dev", spec(schema_json()));
        let mut touched = base.clone();
        touched.metadata.resource_version = Some("42".into());
        touched.status = Some(BoundSchemaStatus {
            stored_versions: Some(vec!["v1".into()]),
            ..Default::default()
        });
        assert_eq!(
            export_spec_hash([&base.spec]),
            export_spec_hash([&touched.spec])
        );

        let mut changed = base.clone();
        changed.spec.versions[0].served = false;
        assert_ne!(
            export_spec_hash([&base.spec]),
            export_spec_hash([&changed.spec])
        );
    }

    #[test]
    fn order_and_count_of_schemas_count() {
        let a = spec(schema_json());
        let mut b = spec(schema_json());
        b.names.plural = "sheriffs".into();
        assert_ne!(export_spec_hash([&a, &b]), export_spec_hash([&b, &a]));
        assert_ne!(export_spec_hash([&a]), export_spec_hash([&a, &a]));
    }
}
