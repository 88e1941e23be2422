//! Hand-written JSON schema fragments for fields whose derived schema would differ from upstream.

use schemars::{Schema, SchemaGenerator, json_schema};

/// An object with arbitrary content (`RawExtension`-like).
pub fn preserve_unknown_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object", "x-kubernetes-preserve-unknown-fields": true })
}

/// An arbitrary object replaced as a whole on updates (a copied schema document).
pub fn preserve_unknown_atomic_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-map-type": "atomic",
        "x-kubernetes-preserve-unknown-fields": true,
    })
}

/// An object without declared fields.
pub fn empty_object(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "object" })
}

/// An integer without a declared width (Go `int`).
pub fn plain_integer(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "integer" })
}

/// A list of strings replaced as a whole on updates.
pub fn atomic_string_list(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "array", "items": { "type": "string" }, "x-kubernetes-list-type": "atomic" })
}

/// Base64 bytes (Go `[]byte`).
pub fn byte_string(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "type": "string", "format": "byte" })
}

/// A metav1 LabelSelector as controller-gen renders it (atomic map, atomic lists).
pub fn label_selector(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "object",
        "x-kubernetes-map-type": "atomic",
        "properties": {
            "matchExpressions": {
                "type": "array",
                "x-kubernetes-list-type": "atomic",
                "items": {
                    "type": "object",
                    "required": ["key", "operator"],
                    "properties": {
                        "key": { "type": "string" },
                        "operator": { "type": "string" },
                        "values": { "type": "array", "items": { "type": "string" }, "x-kubernetes-list-type": "atomic" },
                    },
                },
            },
            "matchLabels": { "type": "object", "additionalProperties": { "type": "string" } },
        },
    })
}
