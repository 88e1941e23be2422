//! Stamps `kcp.io/cluster: <id>` on objects, as kcp's storage does for every object it serves.

use serde_json::Value;

use super::names::ClusterId;

pub const CLUSTER_ANNOTATION: &str = "kcp.io/cluster";

/// Sets the annotation on one object.
pub fn object(obj: &mut Value, cluster: &ClusterId) {
    let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let annotations = meta
        .entry("annotations")
        .or_insert_with(|| Value::Object(Default::default()));
    if annotations.is_null() {
        *annotations = Value::Object(Default::default());
    }
    if let Some(map) = annotations.as_object_mut() {
        map.insert(
            CLUSTER_ANNOTATION.to_string(),
            Value::String(cluster.to_string()),
        );
    }
}

/// Sets the annotation on whatever a JSON response holds: an object, a list, a Table, or a watch
/// event.
pub fn response(body: &mut Value, cluster: &ClusterId) {
    let kind = body
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if let Some(items) = body.get_mut("items").and_then(Value::as_array_mut) {
        for item in items {
            object(item, cluster);
        }
    } else if kind == "Table" {
        if let Some(rows) = body.get_mut("rows").and_then(Value::as_array_mut) {
            for row in rows {
                if let Some(obj) = row.get_mut("object") {
                    object(obj, cluster);
                }
            }
        }
    } else if body.get("type").is_some() && body.get("object").is_some() {
        if let Some(obj) = body.get_mut("object") {
            response(obj, cluster);
        }
    } else if kind != "Status" {
        object(body, cluster);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn annotates_objects_lists_tables_and_events() {
        let c = ClusterId::parse("aaaaaaaaaaaaaaaa").unwrap();
        let mut list = json!({"kind": "ConfigMapList", "items": [{"metadata": {"name": "a", "annotations": null}}]});
        response(&mut list, &c);
        assert_eq!(
            list["items"][0]["metadata"]["annotations"][CLUSTER_ANNOTATION],
            "aaaaaaaaaaaaaaaa"
        );
        let mut event =
            json!({"type": "ADDED", "object": {"kind": "ConfigMap", "metadata": {"name": "a"}}});
        response(&mut event, &c);
        assert_eq!(
            event["object"]["metadata"]["annotations"][CLUSTER_ANNOTATION],
            "aaaaaaaaaaaaaaaa"
        );
        let mut table = json!({"kind": "Table", "rows": [{"object": {"metadata": {"name": "a"}}}]});
        response(&mut table, &c);
        assert_eq!(
            table["rows"][0]["object"]["metadata"]["annotations"][CLUSTER_ANNOTATION],
            "aaaaaaaaaaaaaaaa"
        );
        let mut status = json!({"kind": "Status", "metadata": {}});
        response(&mut status, &c);
        assert!(status["metadata"].get("annotations").is_none());
    }
}
