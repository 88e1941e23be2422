//! `kcp-sim`: the kcp stand-in for local runs and e2e tests (see `kube_bind_e2e::kcp_sim`).

use std::{net::SocketAddr, path::PathBuf};

use anyhow::{Context, bail};
use clap::Parser;
use kube_bind_e2e::kcp_sim::{self, Options, workspaces::WorkspaceConfig};

/// A kcp stand-in over real kube-apiservers that share one etcd.
#[derive(Parser, Debug)]
#[command(name = "kcp-sim", version)]
struct Cli {
    /// A JSON or YAML file with `listen`, `state_dir`, `seed` and `workspaces: [{path, kubeconfig}]`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// `PATH=KUBECONFIG`: serve workspace PATH (e.g. `root:kube-bind`) from the member apiserver
    /// of KUBECONFIG (an admin kubeconfig). Repeatable; one member per workspace.
    #[arg(long = "workspace", value_name = "PATH=KUBECONFIG")]
    workspaces: Vec<String>,
    /// Address to listen on (port 0: a free port, written to STATE_DIR/port).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// Directory for the CA, kubeconfigs, clusters.json, port and ready files.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Seed of the logical-cluster ids (ids are stable for a given path and seed).
    #[arg(long)]
    seed: Option<String>,
    /// Log format: text or json.
    #[arg(long, default_value = "text")]
    log_format: String,
}

fn options(cli: Cli) -> anyhow::Result<Options> {
    let mut options = match &cli.config {
        Some(file) => {
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("reading {}", file.display()))?;
            serde_saphyr::from_str::<Options>(&text)
                .with_context(|| format!("parsing {}", file.display()))?
        }
        None => Options {
            listen: kcp_sim::default_listen(),
            state_dir: PathBuf::new(),
            seed: kcp_sim::default_seed(),
            workspaces: Vec::new(),
        },
    };
    for spec in &cli.workspaces {
        let Some((path, kubeconfig)) = spec.split_once('=') else {
            bail!("--workspace {spec:?}: expected PATH=KUBECONFIG");
        };
        options.workspaces.push(WorkspaceConfig {
            path: path.to_string(),
            kubeconfig: PathBuf::from(kubeconfig),
        });
    }
    if let Some(listen) = cli.listen {
        options.listen = listen;
    }
    if let Some(dir) = cli.state_dir {
        options.state_dir = dir;
    }
    if let Some(seed) = cli.seed {
        options.seed = seed;
    }
    if options.state_dir.as_os_str().is_empty() {
        bail!("--state-dir (or state_dir in --config) is required");
    }
    if options.workspaces.is_empty() {
        bail!("no workspaces: pass --workspace PATH=KUBECONFIG at least once");
    }
    Ok(options)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    kube_bind_e2e::install_crypto_provider();
    let json = match cli.log_format.as_str() {
        "json" => true,
        "text" => false,
        other => bail!("--log-format {other:?}: expected text or json"),
    };
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if json {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .json()
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(false)
            .init();
    }
    let options = options(cli)?;
    let shutdown = async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return std::future::pending().await,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    };
    kcp_sim::run(options, shutdown).await?;
    Ok(())
}
