//! Path-by-path comparison of our CRDs with upstream's CRD YAML files.
//!
//! Every leaf of both documents is listed under a path such as
//! `spec.versions[v1alpha2].schema.openAPIV3Schema.properties.spec.required`; versions are keyed
//! by name, `required` lists compared as sets, and `description` texts and metadata annotations
//! ignored. Everything else (types, formats, enums, defaults, patterns, bounds, `x-kubernetes-*`,
//! CEL rules, scope, names, versions, subresources, printer columns, conversion) must match.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Context;
use serde_json::Value;

/// Prints every difference and returns how many there were.
pub fn run(upstream_dir: &Path) -> anyhow::Result<usize> {
    let ours = kube_bind_apis::crds::all()?;
    let mut differences = 0;
    let mut seen = Vec::new();
    for crd in &ours {
        let file = kube_bind_apis::crds::file_name(crd);
        seen.push(file.clone());
        let path = upstream_dir.join(&file);
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(_) => {
                println!("{file}: missing upstream");
                differences += 1;
                continue;
            }
        };
        let theirs: Value =
            serde_saphyr::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
        let ours = serde_json::to_value(crd)?;
        let found = diff(&flatten(&ours), &flatten(&theirs));
        for line in &found {
            println!("{file}: {line}");
        }
        differences += found.len();
    }
    for entry in std::fs::read_dir(upstream_dir)? {
        let name = entry?.file_name().to_string_lossy().into_owned();
        if name.ends_with(".yaml") && !seen.contains(&name) {
            println!("{name}: only upstream has it");
            differences += 1;
        }
    }
    println!("{} CRDs compared, {differences} difference(s)", ours.len());
    Ok(differences)
}

fn diff(ours: &BTreeMap<String, Value>, theirs: &BTreeMap<String, Value>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, value) in ours {
        match theirs.get(path) {
            None => out.push(format!("{path}: only ours = {value}")),
            Some(other) if other != value => {
                out.push(format!("{path}: ours = {value}, upstream = {other}"))
            }
            Some(_) => {}
        }
    }
    for (path, value) in theirs {
        if !ours.contains_key(path) {
            out.push(format!("{path}: only upstream = {value}"));
        }
    }
    out
}

/// Leaf values by path, with the normalisations described in the module docs.
pub fn flatten(doc: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    walk(doc, String::new(), &mut out);
    out
}

fn walk(value: &Value, path: String, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(obj) if !obj.is_empty() => {
            for (key, child) in obj {
                if key == "description" && child.is_string() {
                    continue;
                }
                if path == "metadata" && (key == "annotations" || key == "labels") {
                    continue;
                }
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                walk(child, child_path, out);
            }
        }
        Value::Array(items) if items.iter().any(|i| i.is_object() || i.is_array()) => {
            for (index, item) in items.iter().enumerate() {
                let label = item
                    .get("name")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .unwrap_or(index.to_string());
                walk(item, format!("{path}[{label}]"), out);
            }
        }
        Value::Array(items) if path.ends_with(".required") || path == "required" => {
            let mut sorted = items.clone();
            sorted.sort_by_key(|v| v.to_string());
            out.insert(path, Value::Array(sorted));
        }
        leaf => {
            out.insert(path, leaf.clone());
        }
    }
}
