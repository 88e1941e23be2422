//! The measured process: the backend's provider and caches, alone in a fresh process.
//!
//! It runs `KcpProvider` against the synthetic kcp with `Cache<ConfigMap>` and
//! `Cache<Namespace>` (or only some of them, for the breakdown), waits until every expected
//! cluster is engaged and every cache holds every expected object, idles while bookmarks flow,
//! then prints one [`Report`] line on stdout and keeps its watches open until the parent closes
//! its stdin.

use std::io::{Read as _, Write as _};
use std::process::ExitCode;
use std::str::FromStr;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube_bind_backend::provider::kcp::KcpProvider;
use kube_bind_backend::provider::{Clusters, Endpoints, Provider as _, ProviderContext};
use kube_bind_backend::readiness::Readiness;
use kube_bind_backend::runtime::Caches;
use tokio_util::sync::CancellationToken;

use super::heap;
use super::server::SLICE;

/// Set (to the home workspace URL) in the environment of a child.
pub const HOME_URL_ENV: &str = "KUBE_BIND_BENCH_CLUSTERS_HOME_URL";
/// What the child runs and waits for: `<endpoints>,<clusters>,<configmaps>,<namespaces>`, `-`
/// for a cache not created at all.
pub const EXPECT_ENV: &str = "KUBE_BIND_BENCH_CLUSTERS_EXPECT";
/// Marks the report line among anything else on stdout.
const REPORT_PREFIX: &str = "REPORT ";
/// Idle time after sync before measuring, so steady-state watch traffic (bookmarks) is included.
const IDLE: Duration = Duration::from_secs(2);
/// A child that has not synced by then reports what it saw and fails.
const SYNC_TIMEOUT: Duration = Duration::from_secs(90);
const POLL: Duration = Duration::from_millis(10);

/// What the child runs and waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expectation {
    /// Virtual workspaces (shards) the slice lists.
    pub endpoints: usize,
    pub clusters: usize,
    /// ConfigMaps to cache, or `None` to create no `Cache<ConfigMap>`.
    pub config_maps: Option<usize>,
    /// Namespaces to cache, or `None` to create no `Cache<Namespace>`.
    pub namespaces: Option<usize>,
}

impl Expectation {
    pub fn to_env(self) -> String {
        let count = |n: Option<usize>| n.map_or_else(|| "-".to_owned(), |n| n.to_string());
        format!(
            "{},{},{},{}",
            self.endpoints,
            self.clusters,
            count(self.config_maps),
            count(self.namespaces)
        )
    }
}

impl FromStr for Expectation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let invalid = || {
            format!("{EXPECT_ENV}={s:?}: want <endpoints>,<clusters>,<configmaps|->,<namespaces|->")
        };
        let count = |field: &str| match field {
            "-" => Ok(None),
            n => n.parse().map(Some).map_err(|_| invalid()),
        };
        match s.split(',').collect::<Vec<_>>()[..] {
            [endpoints, clusters, config_maps, namespaces] => Ok(Self {
                endpoints: endpoints.parse().map_err(|_| invalid())?,
                clusters: clusters.parse().map_err(|_| invalid())?,
                config_maps: count(config_maps)?,
                namespaces: count(namespaces)?,
            }),
            _ => Err(invalid()),
        }
    }
}

/// What one child measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    /// Resident set size after the idle period.
    pub rss_kib: u64,
    /// Peak resident set size.
    pub peak_rss_kib: u64,
    /// Live heap (see [`heap`]) after the idle period.
    pub heap_bytes: usize,
    pub heap_blocks: usize,
    /// From the child's first instruction to engaged and synced.
    pub sync: Duration,
}

impl Report {
    fn to_line(self) -> String {
        format!(
            "{REPORT_PREFIX}rss_kib={} peak_rss_kib={} heap_bytes={} heap_blocks={} sync_us={}",
            self.rss_kib,
            self.peak_rss_kib,
            self.heap_bytes,
            self.heap_blocks,
            self.sync.as_micros()
        )
    }

    /// Parses [`Self::to_line`]'s output; `None` for any other line.
    pub fn from_line(line: &str) -> Option<Self> {
        let fields = line.strip_prefix(REPORT_PREFIX)?;
        let field = |name: &str| -> Option<u64> {
            fields
                .split(' ')
                .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
        };
        Some(Self {
            rss_kib: field("rss_kib")?,
            peak_rss_kib: field("peak_rss_kib")?,
            heap_bytes: usize::try_from(field("heap_bytes")?).ok()?,
            heap_blocks: usize::try_from(field("heap_blocks")?).ok()?,
            sync: Duration::from_micros(field("sync_us")?),
        })
    }
}

/// The child's `main`.
pub fn run(home_url: &str) -> ExitCode {
    let started = Instant::now();
    let expected = match std::env::var(EXPECT_ENV)
        .map_err(|e| format!("{EXPECT_ENV}: {e}"))
        .and_then(|s| s.parse())
    {
        Ok(expected) => expected,
        Err(err) => {
            eprintln!("bench child: {err}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("bench child: cannot build a tokio runtime");
    match runtime.block_on(measure(home_url, expected, started)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench child: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn measure(home_url: &str, expected: Expectation, started: Instant) -> Result<(), String> {
    // kube uses rustls with ring; nothing else installed a provider in this process.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let url = home_url
        .parse()
        .map_err(|e| format!("home URL {home_url:?}: {e}"))?;
    let config = kube::Config::new(url);
    let client = kube::Client::try_from(config.clone()).map_err(|e| format!("kube client: {e}"))?;

    let clusters = Clusters::default();
    let endpoints = Endpoints::default();
    let caches = Caches::new(&endpoints);
    let config_maps = expected
        .config_maps
        .map(|_| caches.get::<ConfigMap>())
        .transpose()
        .map_err(|e| e.to_string())?;
    let namespaces = expected
        .namespaces
        .map(|_| caches.get::<Namespace>())
        .transpose()
        .map_err(|e| e.to_string())?;
    let cached = || {
        (
            config_maps.as_ref().map(|c| c.len()),
            namespaces.as_ref().map(|c| c.len()),
        )
    };
    let shutdown = CancellationToken::new();
    let ctx = ProviderContext {
        clusters: clusters.clone(),
        endpoints: endpoints.clone(),
        readiness: Readiness::default().register("provider", "starting"),
        shutdown: shutdown.clone(),
    };
    let provider = Box::new(KcpProvider::new(client, config, SLICE));
    let provider_task = tokio::spawn(provider.run(ctx));

    let synced = || {
        endpoints.len() == expected.endpoints
            && clusters.len() == expected.clusters
            && caches.is_synced()
            && cached() == (expected.config_maps, expected.namespaces)
    };
    while !synced() {
        if started.elapsed() > SYNC_TIMEOUT {
            return Err(format!(
                "not synced after {SYNC_TIMEOUT:?}: {} of {} endpoints, {} of {} clusters, caches synced: {}, \
                 (configmaps, namespaces) cached {:?} of {:?}",
                endpoints.len(),
                expected.endpoints,
                clusters.len(),
                expected.clusters,
                caches.is_synced(),
                cached(),
                (expected.config_maps, expected.namespaces)
            ));
        }
        tokio::time::sleep(POLL).await;
    }
    let sync = started.elapsed();
    tokio::time::sleep(IDLE).await;

    let (rss_kib, peak_rss_kib) =
        rss().map_err(|e| format!("cannot read /proc/self/status: {e}"))?;
    let live = heap::live();
    let report = Report {
        rss_kib,
        peak_rss_kib,
        heap_bytes: live.bytes,
        heap_blocks: live.blocks,
        sync,
    };
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{}", report.to_line())
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("stdout: {e}"))?;
    drop(stdout);

    // Watches stay open while the parent counts them; it closes our stdin when done.
    tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new()))
        .await
        .map_err(|e| format!("waiting for the parent: {e}"))?
        .map_err(|e| format!("stdin: {e}"))?;
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(1), provider_task).await;
    Ok(())
}

/// (VmRSS, VmHWM) of this process, in KiB.
fn rss() -> std::io::Result<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("no {name} in /proc/self/status")))
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}
