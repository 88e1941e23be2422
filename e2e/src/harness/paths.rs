//! Where the harness finds the repository and keeps logs (`target/e2e-logs/<test binary>/`) and
//! what tests leave for people to look at (`target/e2e-artifacts/<test>/`).

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

/// `target/e2e-artifacts/<test>/`: what a test leaves to be looked at (the browser's screenshots),
/// next to `target/e2e-logs` and found the same way. One directory per test, not per binary, so
/// a test's pictures are never mixed with another's.
pub fn artifact_dir(test: &str) -> PathBuf {
    target_dir().join("e2e-artifacts").join(test)
}

/// The machine's cache of built and installed tools (`hack/lib/build.sh`, `hack/lib/tools.sh`):
/// `KB_CACHE`, else `~/.cache/kube-bind-rs`.
pub fn cache_dir() -> PathBuf {
    if let Some(cache) = std::env::var_os("KB_CACHE") {
        return PathBuf::from(cache);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    PathBuf::from(home).join(".cache/kube-bind-rs")
}

/// The test world's binaries (`hack/build.sh`): `KB_BIN`, else `$KB_CACHE/bin`, else
/// `~/.cache/kube-bind-rs/bin`.
pub fn tool_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KB_BIN") {
        return PathBuf::from(dir);
    }
    cache_dir().join("bin")
}

/// `kubectl` of the test world (the apiservers' minor), else whatever `kubectl` is on PATH.
pub fn kubectl() -> PathBuf {
    let ours = tool_dir().join("kubectl");
    if ours.exists() {
        ours
    } else {
        PathBuf::from("kubectl")
    }
}
