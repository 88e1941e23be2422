//! Developer tasks for kube-bind-rs.
//!
//! - `cargo run -p xtask -- generate`: writes `apis/crds/*.yaml` and `kcp-config/*.yaml` from the
//!   Rust types (the sync tests in the apis crate fail until this has been run after a change).
//! - `cargo run -p xtask -- compare-upstream <dir>`: compares our CRDs with upstream's CRD YAML
//!   in `<dir>` path by path, ignoring descriptions, and prints every difference.

mod compare;
mod generate;

use std::path::PathBuf;

use anyhow::{Context, bail};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("generate") => generate::run(&workspace_root()?),
        Some("compare-upstream") => {
            let dir = args
                .get(1)
                .context("usage: xtask compare-upstream <dir with upstream CRD YAML>")?;
            let differences = compare::run(&PathBuf::from(dir))?;
            if differences > 0 {
                bail!("{differences} difference(s) from upstream");
            }
            Ok(())
        }
        _ => bail!("usage: xtask generate | xtask compare-upstream <dir>"),
    }
}

/// The workspace root: two levels above this crate's manifest (`hack/xtask`).
fn workspace_root() -> anyhow::Result<PathBuf> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(|p| p.parent())
        .map(PathBuf::from)
        .context("xtask is expected at <workspace>/hack/xtask")
}
