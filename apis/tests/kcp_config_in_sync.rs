//! The committed `kcp-config/` files must be what the code generates. Schema names carry the
//! generation date, so the test checks the spec and the hash part of the name, never the date.

use std::path::PathBuf;

use kube_bind_apis::kcp_config;

const REGENERATE: &str = "run `cargo run -p xtask -- generate` and commit the result";

fn dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../kcp-config")
}

fn committed_schema_name(plural: &str) -> Option<String> {
    let text = std::fs::read_to_string(dir().join(kcp_config::schema_file_name(plural))).ok()?;
    let doc: serde_json::Value = serde_saphyr::from_str(&text).ok()?;
    doc.pointer("/metadata/name")?.as_str().map(str::to_owned)
}

#[test]
fn schema_specs_and_hashes_match() {
    let files = kcp_config::render("000000", &committed_schema_name).unwrap();
    let schemas: Vec<_> = files
        .iter()
        .filter(|f| f.file_name.starts_with("apiresourceschema-"))
        .collect();
    assert_eq!(schemas.len(), 10);
    for file in schemas {
        let generated = &file.objects[0];
        let text = std::fs::read_to_string(dir().join(&file.file_name)).unwrap_or_else(|e| {
            panic!(
                "kcp-config/{} is missing ({e}); {REGENERATE}",
                file.file_name
            )
        });
        let committed: serde_json::Value = serde_saphyr::from_str(&text).unwrap();
        assert_eq!(
            committed["spec"], generated["spec"],
            "kcp-config/{} spec is stale; {REGENERATE}",
            file.file_name
        );
        let name = committed
            .pointer("/metadata/name")
            .and_then(|n| n.as_str())
            .unwrap_or_default();
        let (_, hash, rest) =
            kcp_config::parse_schema_name(name).unwrap_or_else(|| panic!("bad schema name {name}"));
        assert_eq!(
            hash,
            kcp_config::schema_hash(&generated["spec"]),
            "{name}: hash is stale; {REGENERATE}"
        );
        let plural = generated
            .pointer("/spec/names/plural")
            .and_then(|p| p.as_str())
            .unwrap();
        assert_eq!(rest, format!("{plural}.kube-bind.io"));
    }
}

#[test]
fn every_file_matches_text_exactly() {
    for file in kcp_config::render("000000", &committed_schema_name).unwrap() {
        let committed = std::fs::read_to_string(dir().join(&file.file_name)).unwrap_or_else(|e| {
            panic!(
                "kcp-config/{} is missing ({e}); {REGENERATE}",
                file.file_name
            )
        });
        assert!(
            committed == file.to_yaml().unwrap(),
            "kcp-config/{} differs; {REGENERATE}",
            file.file_name
        );
    }
}

#[test]
fn embedded_files_are_the_generated_ones_in_order() {
    let rendered: Vec<String> = kcp_config::render("000000", &committed_schema_name)
        .unwrap()
        .into_iter()
        .map(|f| f.file_name)
        .collect();
    let embedded: Vec<&str> = kcp_config::committed_files()
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(embedded, rendered);
    let objects = kcp_config::committed().unwrap();
    let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    assert_eq!(
        kinds.iter().filter(|k| **k == "APIResourceSchema").count(),
        10
    );
    assert_eq!(kinds.last(), Some(&"APIBinding"));
    assert!(!kinds.contains(&"APIExportEndpointSlice"));
}

#[test]
fn export_lists_every_schema_and_claim() {
    let objects = kcp_config::committed().unwrap();
    let export = objects.iter().find(|o| o["kind"] == "APIExport").unwrap();
    let schema_names: Vec<&str> = objects
        .iter()
        .filter(|o| o["kind"] == "APIResourceSchema")
        .filter_map(|o| o.pointer("/metadata/name").and_then(|n| n.as_str()))
        .collect();
    let resources = export
        .pointer("/spec/resources")
        .and_then(|r| r.as_array())
        .unwrap();
    assert_eq!(resources.len(), 10);
    for resource in resources {
        assert!(schema_names.contains(&resource["schema"].as_str().unwrap()));
        assert_eq!(resource["storage"], serde_json::json!({"crd": {}}));
        assert_eq!(resource["group"], "kube-bind.io");
    }
    let claims = export
        .pointer("/spec/permissionClaims")
        .and_then(|c| c.as_array())
        .unwrap();
    assert_eq!(claims.len(), 11);
    // Every resource the backend writes with all verbs; core events (the backend's failure
    // events) only created and counted.
    let (events, writes): (Vec<_>, Vec<_>) = claims
        .iter()
        .partition(|c| c["resource"] == "events" && c.get("group").is_none_or(|g| g == ""));
    assert!(
        writes
            .iter()
            .all(|c| c["verbs"] == serde_json::json!(["*"]))
    );
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["verbs"], serde_json::json!(["create", "patch"]));
}

#[test]
fn schema_names_parse() {
    assert_eq!(
        kcp_config::parse_schema_name("v251112-503d98b.apiserviceexports.kube-bind.io"),
        Some(("251112", "503d98b", "apiserviceexports.kube-bind.io"))
    );
    assert_eq!(
        kcp_config::parse_schema_name("apiserviceexports.kube-bind.io"),
        None
    );
}
