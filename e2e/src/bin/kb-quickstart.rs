//! `kb-quickstart`: the API side of `hack/quickstart.sh` (see `kube_bind_e2e::quickstart`). The
//! script starts and stops every process; this binary installs objects and waits for answers.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::ExitCode,
    time::Duration,
};

use anyhow::Context;
use clap::{Parser, Subcommand};
use kube_bind_e2e::quickstart::{
    Setup,
    examples::Examples,
    ready::{self, Backend},
    report, say, setup,
};

/// The API side of hack/quickstart.sh.
#[derive(Parser, Debug)]
#[command(name = "kb-quickstart")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Plain mode: kube-bind CRDs and example APIs on the provider, APIServiceBinding CRD on the
    /// consumer; writes what was set up to --out (JSON).
    SetupPlain {
        #[arg(long)]
        provider_kubeconfig: PathBuf,
        #[arg(long)]
        consumer_kubeconfig: PathBuf,
        #[arg(long)]
        examples: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// kcp mode, against the kcp hack/kcp.sh runs: the workspaces, kcp-config in root:kube-bind,
    /// providers bound to kube-bind.io with the example APIs, the consumer, and the backend's
    /// kubeconfig.
    SetupKcp {
        /// hack/kcp.sh's state dir.
        #[arg(long)]
        kcp_state: PathBuf,
        /// Where to write the backend's kubeconfig (its ServiceAccount's token).
        #[arg(long)]
        backend_kubeconfig: PathBuf,
        /// Scratch dir for kubeconfigs the harness writes.
        #[arg(long)]
        work_dir: PathBuf,
        #[arg(long)]
        examples: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Waits until the backend answers /healthz, /readyz and /api/exports for every provider
    /// cluster, then writes the env file atomically and prints the summary.
    Ready {
        /// What setup-plain/setup-kcp wrote.
        #[arg(long)]
        setup: PathBuf,
        #[arg(long)]
        backend_url: String,
        #[arg(long)]
        backend_pid: u32,
        #[arg(long)]
        backend_log: PathBuf,
        #[arg(long)]
        env: PathBuf,
        /// A replica behind the front that --backend-url names (`--replicas 2`), as URL,PID,LOG:
        /// each is waited for on its own URL before the front; --backend-pid/--backend-log are
        /// then the front's.
        #[arg(long = "replica", value_name = "URL,PID,LOG")]
        replicas: Vec<String>,
        /// Seconds all checks together may take.
        #[arg(long, default_value_t = 180)]
        timeout: u64,
    },
    /// Prints a TCP port free on 127.0.0.1 (--prefer when that one is free).
    FreePort {
        #[arg(long)]
        prefer: Option<u16>,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    kube_bind_e2e::install_crypto_provider();
    match run(Cli::parse().command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line per cause, never a backtrace (RUST_BACKTRACE is often set here).
            say(format!("error: {err:#}"));
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::SetupPlain {
            provider_kubeconfig,
            consumer_kubeconfig,
            examples,
            out,
        } => {
            let setup = setup::plain(
                &provider_kubeconfig,
                &consumer_kubeconfig,
                &examples_dir(examples),
            )
            .await?;
            save(&setup, &out)
        }
        Command::SetupKcp {
            kcp_state,
            backend_kubeconfig,
            work_dir,
            examples,
            out,
        } => {
            let setup = setup::kcp(
                &kcp_state,
                &examples_dir(examples),
                &backend_kubeconfig,
                work_dir,
            )
            .await?;
            save(&setup, &out)
        }
        Command::Ready {
            setup,
            backend_url,
            backend_pid,
            backend_log,
            env,
            replicas,
            timeout,
        } => {
            let replicas = replicas
                .iter()
                .map(|r| parse_replica(r))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let text = std::fs::read_to_string(&setup)
                .with_context(|| format!("reading {}", setup.display()))?;
            let setup: Setup = serde_json::from_str(&text)
                .with_context(|| format!("parsing {}", setup.display()))?;
            let backend = Backend {
                url: backend_url,
                pid: backend_pid,
                log: backend_log,
            };
            let ids: Vec<String> = setup
                .providers
                .iter()
                .map(|p| p.cluster_id.clone())
                .collect();
            for (i, replica) in replicas.iter().enumerate() {
                say(format!("replica {}: {}", i + 1, replica.url));
                ready::wait(replica, &ids, Duration::from_secs(timeout)).await?;
            }
            if !replicas.is_empty() {
                say(format!("front: {}", backend.url));
            }
            ready::wait(&backend, &ids, Duration::from_secs(timeout)).await?;
            let vars = report::env_vars(&setup, &backend.url);
            report::write_atomically(&env, &report::env_file(&vars))
                .with_context(|| format!("writing {}", env.display()))?;
            let login = ready::serves_login(&backend.url).await;
            print!(
                "{}",
                report::summary(&setup, &backend.url, &env, &backend.log, login)
            );
            for (i, replica) in replicas.iter().enumerate() {
                println!(
                    "replica {}: {} (pid {}), behind {}; log {}",
                    i + 1,
                    replica.url,
                    replica.pid,
                    backend.url,
                    replica.log.display()
                );
            }
            Ok(())
        }
        Command::FreePort { prefer } => {
            let port = prefer
                .and_then(|p| TcpListener::bind(("127.0.0.1", p)).ok())
                .or_else(|| TcpListener::bind(("127.0.0.1", 0)).ok())
                .and_then(|l| l.local_addr().ok())
                .map(|a| a.port())
                .context("no free port on 127.0.0.1")?;
            println!("{port}");
            Ok(())
        }
    }
}

/// `URL,PID,LOG` of `ready --replica`.
fn parse_replica(text: &str) -> anyhow::Result<Backend> {
    let mut parts = text.splitn(3, ',');
    let (Some(url), Some(pid), Some(log)) = (parts.next(), parts.next(), parts.next()) else {
        anyhow::bail!(
            "--replica {text:?} is not URL,PID,LOG; pass e.g. http://127.0.0.1:8081,4242,backend-1.log"
        );
    };
    let pid = pid
        .parse()
        .with_context(|| format!("--replica {text:?}: {pid:?} is not a pid; pass URL,PID,LOG"))?;
    Ok(Backend {
        url: url.to_owned(),
        pid,
        log: PathBuf::from(log),
    })
}

fn examples_dir(dir: Option<PathBuf>) -> Examples {
    dir.map(Examples::new).unwrap_or_else(Examples::in_repo)
}

fn save(setup: &Setup, out: &Path) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(setup)?;
    report::write_atomically(out, &text).with_context(|| format!("writing {}", out.display()))?;
    say(format!("set up; described in {}", out.display()));
    Ok(())
}
