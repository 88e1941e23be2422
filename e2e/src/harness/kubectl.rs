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

/// `kubectl auth can-i <args>` with `kubeconfig` (e.g. `["create", "secrets", "-n", "ns"]`, with
/// `--as` to ask for someone else): whether it answered yes.
pub fn can_i(kubeconfig: &Path, args: &[&str], log_dir: &Path) -> Result<bool, HarnessError> {
    let full: Vec<&str> = ["auth", "can-i"].iter().chain(args).copied().collect();
    let out = kubectl(kubeconfig, &full, log_dir)?;
    match out.stdout.trim() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => Err(HarnessError::Other(format!(
            "kubectl auth can-i {}: {} {}",
            args.join(" "),
            out.stdout,
            out.stderr
        ))),
    }
}

/// What upstream's `kube-binder` ClusterRole (reference §3.1 item 4), bound in the cluster
/// namespace by the ClusterBinding controller (§3.2 item 2), lets the konnector do there:
/// `(verb, resource, subresource)`.
pub const KONNECTOR_NEEDS: &[(&str, &str, &str)] = &[
    ("create", "apiserviceexportrequests.kube-bind.io", ""),
    ("get", "apiserviceexportrequests.kube-bind.io", ""),
    ("create", "apiservicenamespaces.kube-bind.io", ""),
    ("get", "apiservicenamespaces.kube-bind.io", ""),
    ("get", "apiserviceexports.kube-bind.io", ""),
    ("list", "apiserviceexports.kube-bind.io", ""),
    ("watch", "apiserviceexports.kube-bind.io", ""),
    ("patch", "apiserviceexports.kube-bind.io", "status"),
    ("get", "clusterbindings.kube-bind.io", ""),
    ("list", "clusterbindings.kube-bind.io", ""),
    ("watch", "clusterbindings.kube-bind.io", ""),
    ("patch", "clusterbindings.kube-bind.io", "status"),
    ("get", "boundschemas.kube-bind.io", ""),
    ("patch", "boundschemas.kube-bind.io", "status"),
    ("get", "secrets", ""),
];
