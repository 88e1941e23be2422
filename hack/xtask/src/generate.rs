//! Writes the generated files: `apis/crds/*.yaml` and `kcp-config/*.yaml`.

use std::path::Path;

use anyhow::Context;
use kube_bind_apis::{crds, kcp_config};

pub fn run(root: &Path) -> anyhow::Result<()> {
    let crd_dir = root.join("apis/crds");
    std::fs::create_dir_all(&crd_dir)?;
    for crd in crds::all()? {
        let path = crd_dir.join(crds::file_name(&crd));
        let yaml = crds::to_yaml(&crd)?;
        write(&path, &format!("---\n{yaml}"))?;
    }

    let kcp_dir = root.join("kcp-config");
    std::fs::create_dir_all(&kcp_dir)?;
    let today = chrono::Utc::now().format("%y%m%d").to_string();
    let previous =
        |plural: &str| existing_schema_name(&kcp_dir.join(kcp_config::schema_file_name(plural)));
    for file in kcp_config::render(&today, &previous)? {
        write(&kcp_dir.join(&file.file_name), &file.to_yaml()?)?;
    }
    Ok(())
}

/// `metadata.name` of the APIResourceSchema committed at `path`, if there is one.
fn existing_schema_name(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc: serde_json::Value = serde_saphyr::from_str(&text).ok()?;
    doc.pointer("/metadata/name")?.as_str().map(str::to_owned)
}

fn write(path: &Path, text: &str) -> anyhow::Result<()> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    println!("wrote {}", path.display());
    Ok(())
}
