//! Running the test world's `kubectl` (see [`super::paths::kubectl`]), logged to `kubectl.log`
//! in the log dir.

use std::{io::Write, path::Path, process::Command};

use super::HarnessError;

/// What a kubectl run printed.
#[derive(Debug)]
pub struct KubectlOutput {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `kubectl --kubeconfig <kubeconfig> <args>`.
pub fn kubectl(
    kubeconfig: &Path,
    args: &[&str],
    log_dir: &Path,
) -> Result<KubectlOutput, HarnessError> {
    let output = Command::new(super::paths::kubectl())
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .map_err(|e| HarnessError::io(Path::new("kubectl"), e))?;
    let out = KubectlOutput {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    let log = log_dir.join("kubectl.log");
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log)
    {
        let _ = writeln!(
            f,
            "$ kubectl --kubeconfig {} {}\n{}{}\n",
            kubeconfig.display(),
            args.join(" "),
            out.stdout,
            out.stderr
        );
    }
    Ok(out)
}
