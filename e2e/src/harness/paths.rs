//! Where the harness finds the repository and keeps logs: `target/e2e-logs/<test binary>/`.

use std::path::{Path, PathBuf};

/// The repository root (the workspace holding `hack/` and `kcp-config/`).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."))
}

/// The cargo target dir: `CARGO_TARGET_DIR`, else the one holding the running test binary.
pub fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    // target/<profile>/deps/<binary>
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .filter(|p| p.join("CACHEDIR.TAG").exists() || p.ends_with("target"))
        .unwrap_or_else(|| repo_root().join("target"))
}

/// The running test binary's name without cargo's hash suffix (`vw_watch-1a2b…` → `vw_watch`).
pub fn test_binary_name() -> String {
    let stem = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "e2e".to_string());
    match stem.rsplit_once('-') {
        Some((name, hash)) if hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {
            name.to_string()
        }
        _ => stem,
    }
}

/// `target/e2e-logs/<test binary>/`: every process's log and state for this binary's run.
///
/// The environment is shared by the tests of one process. Under cargo-nextest every test is a
/// process of its own, so each gets its own directory (`<test binary>-<pid>`): processes never
/// stop each other's environment, at the price of one environment per test.
pub fn log_dir() -> PathBuf {
    let name = match std::env::var_os("NEXTEST") {
        Some(_) => format!("{}-{}", test_binary_name(), std::process::id()),
        None => test_binary_name(),
    };
    target_dir().join("e2e-logs").join(name)
}

/// The `kcp-sim` binary: `KCP_SIM_BIN`, else next to the test binary's profile dir, else built
/// with cargo (tests of other packages reuse the harness without building it themselves).
pub fn kcp_sim_binary() -> Option<PathBuf> {
    if let Some(bin) = std::env::var_os("KCP_SIM_BIN") {
        return Some(PathBuf::from(bin));
    }
    let exe = std::env::current_exe().ok()?;
    let profile_dir = exe.parent()?.parent()?;
    let bin = profile_dir.join("kcp-sim");
    if bin.exists() {
        return Some(bin);
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = std::process::Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "-p",
            "kube-bind-e2e",
            "--bin",
            "kcp-sim",
            "--manifest-path",
        ])
        .arg(repo_root().join("Cargo.toml"))
        .status()
        .is_ok_and(|s| s.success());
    (built && bin.exists()).then_some(bin)
}
