//! What the quickstart tells the user: the `.local/env` file and the summary printed with it.
//! Pure functions of the [`Setup`] and the backend URL.

use std::{fmt::Write as _, path::Path};

use super::{Mode, Setup};

/// The variables of `.local/env`, in order: exactly these, nothing else.
pub fn env_vars(setup: &Setup, backend_url: &str) -> Vec<(&'static str, String)> {
    let join = |items: Vec<String>| items.join(",");
    let mut vars = vec![
        ("BACKEND_URL", backend_url.to_string()),
        (
            "BACKEND_KUBECONFIG",
            setup.backend_kubeconfig.display().to_string(),
        ),
        (
            "PROVIDER_KUBECONFIGS",
            join(
                setup
                    .providers
                    .iter()
                    .map(|p| p.kubeconfig.display().to_string())
                    .collect(),
            ),
        ),
        (
            "PROVIDER_CLUSTER_IDS",
            join(
                setup
                    .providers
                    .iter()
                    .map(|p| p.cluster_id.clone())
                    .collect(),
            ),
        ),
        (
            "CONSUMER_KUBECONFIG",
            setup.consumer_kubeconfig.display().to_string(),
        ),
    ];
    if let Some(base) = &setup.kcp_base_url {
        vars.push(("KCP_BASE_URL", base.clone()));
    }
    vars
}

/// `value` single-quoted for the shell.
pub fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

/// The sourceable text of `.local/env`.
pub fn env_file(vars: &[(&str, String)]) -> String {
    let mut out =
        String::from("# Written by hack/quickstart.sh once everything answered; `source` it.\n");
    for (name, value) in vars {
        let _ = writeln!(out, "export {name}={}", shell_quote(value));
    }
    out
}

/// Writes `text` to `path` atomically (a temp file in the same directory, then a rename).
pub fn write_atomically(path: &Path, text: &str) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// The summary printed once the backend answers. `login_served`: whether the backend serves
/// `/api/authorize` (the login the bind commands start with).
pub fn summary(
    setup: &Setup,
    backend_url: &str,
    env_path: &Path,
    backend_log: &Path,
    login_served: bool,
) -> String {
    let mut out = String::new();
    let mode = match setup.mode {
        Mode::Plain => "plain cluster",
        Mode::Kcp => "kcp",
    };
    let _ = writeln!(out, "\nkube-bind quickstart is up ({mode}).\n");
    let _ = writeln!(out, "backend   {backend_url}");
    let _ = writeln!(out, "          runs as {}", setup.backend_identity);
    let _ = writeln!(out, "          log {}", backend_log.display());
    if let Some(base) = &setup.kcp_base_url {
        let _ = writeln!(out, "kcp       {base}");
    }
    for p in &setup.providers {
        let _ = writeln!(out, "provider  {} (cluster id {})", p.name, p.cluster_id);
    }
    let _ = writeln!(out, "consumer  {}", setup.consumer_kubeconfig.display());

    let _ = writeln!(out, "\n{} (source it):", env_path.display());
    out.push_str(&env_file(&env_vars(setup, backend_url)));

    let _ = writeln!(out, "\nTry it:");
    let _ = writeln!(out, "  source {}", env_path.display());
    for p in &setup.providers {
        let _ = writeln!(
            out,
            "  curl \"$BACKEND_URL/api/exports?cluster_id={}\"",
            p.cluster_id
        );
    }
    let first = setup.providers.first().map(|p| p.cluster_id.as_str());
    let cluster_flag = match (setup.mode, first) {
        (Mode::Kcp, Some(id)) => format!(" --cluster {id}"),
        _ => String::new(),
    };
    let _ = writeln!(
        out,
        "\nBind from the consumer with upstream's kubectl plugin (kubectl-bind):"
    );
    let _ = writeln!(out, "  kubectl bind login \"$BACKEND_URL\"{cluster_flag}");
    let _ = writeln!(out, "  kubectl bind templates");
    let _ = writeln!(
        out,
        "  kubectl bind apiservice --kubeconfig \"$CONSUMER_KUBECONFIG\" --template-name cowboys --name cowboys --skip-konnector"
    );
    let _ = writeln!(
        out,
        "  kubectl --kubeconfig \"$CONSUMER_KUBECONFIG\" apply -f {}",
        crate::harness::paths::repo_root()
            .join("hack/examples/cowboy.yaml")
            .display()
    );
    if !login_served {
        let _ = writeln!(
            out,
            "  (this backend does not serve /api/authorize yet, so the login stops there for now)"
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::quickstart::ProviderCluster;

    fn kcp_setup() -> Setup {
        Setup {
            mode: Mode::Kcp,
            backend_kubeconfig: "/q/.local/kcp/backend.kubeconfig".into(),
            backend_identity: "ServiceAccount default/kube-bind-controller".into(),
            providers: ["a", "b"]
                .iter()
                .map(|n| ProviderCluster {
                    name: format!("root:provider-{n}"),
                    kubeconfig: PathBuf::from(format!("/q/{n}.kubeconfig")),
                    cluster_id: format!("id{n}"),
                })
                .collect(),
            consumer_kubeconfig: "/q/consumer.kubeconfig".into(),
            kcp_base_url: Some("https://127.0.0.1:6443".into()),
            endpoint_url: Some("https://127.0.0.1:6443/services/apiexport/x/kube-bind.io".into()),
            workspaces: Vec::new(),
            shards: Vec::new(),
            kcp_pids: Default::default(),
        }
    }

    #[test]
    fn env_has_exactly_the_documented_variables_in_order() {
        let mut setup = kcp_setup();
        let names =
            |s: &Setup| -> Vec<&str> { env_vars(s, "http://x").iter().map(|(n, _)| *n).collect() };
        assert_eq!(
            names(&setup),
            [
                "BACKEND_URL",
                "BACKEND_KUBECONFIG",
                "PROVIDER_KUBECONFIGS",
                "PROVIDER_CLUSTER_IDS",
                "CONSUMER_KUBECONFIG",
                "KCP_BASE_URL"
            ]
        );
        let vars = env_vars(&setup, "http://x");
        assert_eq!(vars[2].1, "/q/a.kubeconfig,/q/b.kubeconfig");
        assert_eq!(vars[3].1, "ida,idb");
        setup.mode = Mode::Plain;
        setup.kcp_base_url = None;
        assert_eq!(names(&setup).len(), 5, "no KCP_BASE_URL in plain mode");
    }

    #[test]
    fn env_file_is_sourceable_whatever_the_paths() {
        let text = env_file(&[("A", "it's a $path with `x`".into()), ("B", "plain".into())]);
        let out = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{text}\nprintf '%s|%s' \"$A\" \"$B\""))
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "it's a $path with `x`|plain"
        );
    }

    #[test]
    fn atomic_write_replaces_and_leaves_no_temp_file() {
        let dir = std::env::temp_dir().join(format!("kb-quickstart-report-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("env");
        write_atomically(&file, "one").unwrap();
        write_atomically(&file, "two").unwrap();
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "two");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn summary_names_the_probe_and_the_bind_commands() {
        let text = summary(
            &kcp_setup(),
            "http://127.0.0.1:9",
            Path::new("/q/.local/env"),
            Path::new("/q/b.log"),
            false,
        );
        assert!(
            text.contains("curl \"$BACKEND_URL/api/exports?cluster_id=ida\""),
            "{text}"
        );
        assert!(
            text.contains("curl \"$BACKEND_URL/api/exports?cluster_id=idb\""),
            "{text}"
        );
        assert!(
            text.contains("kubectl bind login \"$BACKEND_URL\" --cluster ida"),
            "{text}"
        );
        assert!(text.contains("--template-name cowboys"), "{text}");
        assert!(text.contains("does not serve /api/authorize"), "{text}");
        let served = summary(
            &kcp_setup(),
            "http://127.0.0.1:9",
            Path::new("/e"),
            Path::new("/l"),
            true,
        );
        assert!(!served.contains("does not serve"));
    }
}
