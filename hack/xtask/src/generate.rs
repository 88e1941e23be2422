//! Writes the generated files: `apis/crds/*.yaml` and `kcp-config/*.yaml`.

use std::path::Path;

use anyhow::Context;

pub fn run(root: &Path) -> anyhow::Result<()> {
    let crd_dir = root.join("apis/crds");
    std::fs::create_dir_all(&crd_dir)?;
    for crd in kube_bind_apis::crds::all()? {
        let path = crd_dir.join(kube_bind_apis::crds::file_name(&crd));
        let yaml = kube_bind_apis::crds::to_yaml(&crd)?;
        std::fs::write(&path, format!("---\n{yaml}"))
            .with_context(|| format!("writing {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}
