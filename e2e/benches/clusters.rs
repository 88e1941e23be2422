//! Memory and watch connections per engaged logical cluster (SPEC §11): the kcp provider and
//! the caches at 1,000 and 10,000 clusters, against a synthetic kcp served by this bench.
//!
//! Run with `cargo bench -p kube-bind-e2e --bench clusters`. Prints figures; asserts nothing
//! about them. `CLUSTERS_BENCH_RUNS=<n>` changes the runs per configuration (default 3, the
//! median is shown).
//!
//! How it measures:
//! - The parent serves a synthetic kcp (see `clusters/server.rs`) on 127.0.0.1: the home
//!   workspace's APIExportEndpointSlice, whose one endpoint URL points back at it, and behind
//!   that virtual workspace, wildcard LIST/WATCH of APIBindings (one per cluster), Namespaces
//!   (one per cluster) and ConfigMaps (five per namespace).
//! - Each run re-executes this binary as a child that runs only the backend's `KcpProvider`
//!   and `Caches` (`Cache<ConfigMap>`, `Cache<Namespace>`), because a process's RSS does not
//!   reliably shrink after freeing; it waits until every cluster is engaged and every object
//!   cached, idles 2 s with bookmarks flowing, and reports VmRSS, live heap (a counting global
//!   allocator, exact and unaffected by allocator caching) and its time from start to synced.
//! - While that child is alive, the parent reads how many watches are open per resource.
//!
//! How to read the table:
//! - `baseline` is the process with an empty virtual workspace: its fixed cost.
//! - `objects of N, 1 cluster` holds exactly the objects of `N clusters` (same names, sizes and
//!   annotations) in a single cluster; `N clusters − that control` is what clusters cost beyond
//!   their objects, shown per cluster in KiB (target: ≤ 10 KiB per idle engaged cluster).
//! - `watches` is open watch connections as slices/apibindings/configmaps/namespaces; it must
//!   not grow with N (target: one per resource type, plus the slice watch on the home
//!   workspace). `per-cl rq` counts requests that were not wildcard ones (must stay 0).
//! - Sync time includes the counting allocator's small overhead, the same in every row.
//! - The breakdown below the table repeats the 10,000-cluster pair with no cache, only
//!   `Cache<ConfigMap>` and only `Cache<Namespace>` (one run each: live heap is exact), and so
//!   splits the per-cluster heap between the provider and each cache, and prints what one object
//!   of each type costs.

mod clusters {
    pub mod child;
    pub mod fixture;
    pub mod heap;
    pub mod server;
}

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clusters::child::{self, Expectation, Report};
use clusters::fixture::{CONFIG_MAPS_PER_NAMESPACE, Fixture, Shape};
use clusters::server::{Resource, SyntheticKcp, Traffic};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::Command;

#[global_allocator]
static ALLOCATOR: clusters::heap::Counting = clusters::heap::Counting;

/// The configurations, in the order they run.
const SHAPES: [Shape; 5] = [
    Shape::Baseline,
    Shape::ObjectsOnly(1_000),
    Shape::Clusters(1_000),
    Shape::ObjectsOnly(10_000),
    Shape::Clusters(10_000),
];
const DEFAULT_RUNS: usize = 3;
/// The cluster count the per-component breakdown is measured at.
const BREAKDOWN_AT: usize = 10_000;
/// Target from the issue: memory per idle engaged cluster beyond its objects.
const TARGET_KIB_PER_CLUSTER: f64 = 10.0;
/// How long a child may take from spawn to report.
const CHILD_TIMEOUT: Duration = Duration::from_secs(120);
/// How long the server may take to notice a finished child's watches closed.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
const MIB: f64 = 1024.0 * 1024.0;

fn main() -> ExitCode {
    if let Ok(home_url) = std::env::var(child::HOME_URL_ENV) {
        return child::run(&home_url);
    }
    let runs = match std::env::var("CLUSTERS_BENCH_RUNS") {
        Ok(runs) => match runs.parse::<usize>() {
            Ok(runs) if runs > 0 => runs,
            _ => {
                eprintln!("CLUSTERS_BENCH_RUNS={runs:?} is not a positive number");
                return ExitCode::FAILURE;
            }
        },
        Err(_) => DEFAULT_RUNS,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("cannot build the tokio runtime of the synthetic kcp");
    match runtime.block_on(measure_all(runs)) {
        Ok(figures) => {
            print_table(&figures.rows);
            print_breakdown(&figures);
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("clusters bench failed: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Which caches a child creates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CacheSet {
    /// The provider alone.
    None,
    ConfigMaps,
    Namespaces,
    Both,
}

impl CacheSet {
    fn expectation(self, shape: Shape) -> Expectation {
        let (config_maps, namespaces) = match self {
            Self::None => (false, false),
            Self::ConfigMaps => (true, false),
            Self::Namespaces => (false, true),
            Self::Both => (true, true),
        };
        Expectation {
            clusters: shape.clusters(),
            config_maps: config_maps.then(|| shape.config_maps()),
            namespaces: namespaces.then(|| shape.namespaces()),
        }
    }
}

/// One configuration's figures: medians over its runs, and the most watches seen open.
struct Row {
    shape: Shape,
    rss_kib: u64,
    peak_rss_kib: u64,
    heap_bytes: usize,
    heap_blocks: usize,
    sync: Duration,
    traffic: Traffic,
}

/// Everything measured.
struct Figures {
    rows: Vec<Row>,
    /// Single runs with fewer caches, at [`BREAKDOWN_AT`].
    breakdown: Vec<(Shape, CacheSet, Report)>,
}

async fn measure_all(runs: usize) -> Result<Figures, String> {
    let started = Instant::now();
    let progress =
        |message: String| println!("[{:>6.1}s] {message}", started.elapsed().as_secs_f64());
    println!(
        "clusters bench: {} configurations × {runs} runs, then a breakdown at {BREAKDOWN_AT} clusters; \
         each run in a fresh child process",
        SHAPES.len()
    );
    let mut figures = Figures {
        rows: Vec::new(),
        breakdown: Vec::new(),
    };
    for shape in SHAPES {
        let rendering = Instant::now();
        let kcp = SyntheticKcp::start(Fixture::build(shape))
            .await
            .map_err(|e| format!("cannot start the synthetic kcp: {e}"))?;
        progress(format!(
            "{}: {} clusters, {} namespaces, {} configmaps (rendered in {} ms)",
            shape.label(),
            shape.clusters(),
            shape.namespaces(),
            shape.config_maps(),
            rendering.elapsed().as_millis()
        ));
        let mut reports = Vec::with_capacity(runs);
        let mut traffic = Traffic::default();
        for run in 1..=runs {
            let (report, seen) = run_child(&kcp, CacheSet::Both.expectation(shape)).await?;
            progress(format!(
                "  run {run}/{runs}: synced in {} ms, RSS {:.1} MiB, heap {:.1} MiB, watches {}",
                report.sync.as_millis(),
                report.rss_kib as f64 / 1024.0,
                report.heap_bytes as f64 / MIB,
                watches(&seen)
            ));
            reports.push(report);
            traffic = traffic.max(seen);
        }
        figures.rows.push(Row {
            shape,
            rss_kib: median(reports.iter().map(|r| r.rss_kib)),
            peak_rss_kib: median(reports.iter().map(|r| r.peak_rss_kib)),
            heap_bytes: median(reports.iter().map(|r| r.heap_bytes)),
            heap_blocks: median(reports.iter().map(|r| r.heap_blocks)),
            sync: median(reports.iter().map(|r| r.sync)),
            traffic,
        });
        if shape.namespaces() == BREAKDOWN_AT {
            for caches in [CacheSet::None, CacheSet::ConfigMaps, CacheSet::Namespaces] {
                let (report, _) = run_child(&kcp, caches.expectation(shape)).await?;
                progress(format!(
                    "  breakdown, caches {caches:?}: heap {:.1} MiB",
                    report.heap_bytes as f64 / MIB
                ));
                figures.breakdown.push((shape, caches, report));
            }
        }
    }
    progress("done".to_owned());
    Ok(figures)
}

/// Runs one child against `kcp`; returns its report and the traffic seen while it was alive.
/// Waits until the server saw the child's watches close, so the next child's count is its own.
async fn run_child(kcp: &SyntheticKcp, expected: Expectation) -> Result<(Report, Traffic), String> {
    let exe =
        std::env::current_exe().map_err(|e| format!("cannot find this bench's executable: {e}"))?;
    let mut child = Command::new(exe)
        .env(child::HOME_URL_ENV, kcp.home_url())
        .env(child::EXPECT_ENV, expected.to_env())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start a child: {e}"))?;
    let stdout = child.stdout.take().ok_or("the child has no stdout pipe")?;
    let mut lines = BufReader::new(stdout).lines();
    let report = tokio::time::timeout(CHILD_TIMEOUT, async {
        while let Some(line) = lines
            .next_line()
            .await
            .map_err(|e| format!("child stdout: {e}"))?
        {
            if let Some(report) = Report::from_line(&line) {
                return Ok(report);
            }
            println!("  child: {line}");
        }
        Err("the child ended without a report (see its stderr above)".to_owned())
    })
    .await
    .map_err(|_| format!("no report from the child within {CHILD_TIMEOUT:?}"))??;
    // The child keeps its watches open until its stdin closes.
    let traffic = kcp.traffic();
    drop(child.stdin.take());
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .map_err(|_| "the child did not exit after its stdin closed".to_owned())?
        .map_err(|e| format!("waiting for the child: {e}"))?;
    if !status.success() {
        return Err(format!("the child failed: {status}"));
    }
    if !kcp.wait_idle(DRAIN_TIMEOUT).await {
        return Err(format!(
            "watches of a finished child still open after {DRAIN_TIMEOUT:?}"
        ));
    }
    Ok((report, traffic))
}

fn median<T: Ord + Copy>(values: impl Iterator<Item = T>) -> T {
    let mut values: Vec<T> = values.collect();
    values.sort_unstable();
    values[values.len() / 2]
}

/// Open watches as `slices/apibindings/configmaps/namespaces`.
fn watches(traffic: &Traffic) -> String {
    Resource::ALL.map(|r| traffic.open(r).to_string()).join("/")
}

fn print_table(rows: &[Row]) {
    let Some(baseline) = rows.iter().find(|r| r.shape == Shape::Baseline) else {
        return;
    };
    let control = |n: usize| rows.iter().find(|r| r.shape == Shape::ObjectsOnly(n));
    let kib = |bytes: f64| bytes / 1024.0;

    println!();
    println!(
        "Per-cluster memory and watch connections (medians of the runs; objects = {CONFIG_MAPS_PER_NAMESPACE} ConfigMaps + 1 Namespace per namespace)"
    );
    println!(
        "{:<26} {:>8} {:>8} {:>9} {:>9} {:>9} {:>10} {:>11} {:>11} {:>12} {:>8} {:>12} {:>9}",
        "configuration",
        "clusters",
        "objects",
        "RSS MiB",
        "ΔRSS MiB",
        "peak MiB",
        "heap MiB",
        "KiB/cl RSS",
        "KiB/cl heap",
        "allocs/cl",
        "sync ms",
        "watches",
        "per-cl rq"
    );
    for row in rows {
        let per_cluster = match (row.shape, control(row.shape.namespaces())) {
            (Shape::Clusters(n), Some(control)) => Some((
                kib((row.rss_kib as f64 - control.rss_kib as f64) * 1024.0) / n as f64,
                kib(row.heap_bytes as f64 - control.heap_bytes as f64) / n as f64,
                (row.heap_blocks as f64 - control.heap_blocks as f64) / n as f64,
            )),
            _ => None,
        };
        let (rss_per, heap_per, blocks_per) = match per_cluster {
            Some((rss, heap, blocks)) => (
                format!("{rss:.2}"),
                format!("{heap:.2}"),
                format!("{blocks:.1}"),
            ),
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        println!(
            "{:<26} {:>8} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>11} {:>11} {:>12} {:>8} {:>12} {:>9}",
            row.shape.label(),
            row.shape.clusters(),
            row.shape.config_maps() + row.shape.namespaces(),
            row.rss_kib as f64 / 1024.0,
            (row.rss_kib as f64 - baseline.rss_kib as f64) / 1024.0,
            row.peak_rss_kib as f64 / 1024.0,
            row.heap_bytes as f64 / MIB,
            rss_per,
            heap_per,
            blocks_per,
            row.sync.as_millis(),
            watches(&row.traffic),
            row.traffic.per_cluster
        );
    }

    println!();
    for row in rows {
        if let (Shape::Clusters(n), Some(control)) = (row.shape, control(row.shape.namespaces())) {
            let per_cluster = (row.rss_kib as f64 - control.rss_kib as f64) / n as f64;
            let verdict = if per_cluster <= TARGET_KIB_PER_CLUSTER {
                "within"
            } else {
                "MISSES"
            };
            println!(
                "{n} clusters: {per_cluster:.2} KiB RSS per idle engaged cluster beyond its objects; \
                 {verdict} the {TARGET_KIB_PER_CLUSTER} KiB target"
            );
        }
    }
    println!(
        "watches = open watch connections while the child idled, as {}",
        Resource::ALL.map(Resource::label).join("/")
    );
    let expected = Traffic {
        open_watches: [1; 4],
        ..Traffic::default()
    }
    .open_watches;
    let constant = rows
        .iter()
        .all(|r| r.traffic.open_watches == expected && r.traffic.per_cluster == 0);
    println!(
        "watch connections: {} (expected 1/1/1/1 in every row: the slice watch on the home workspace, \
         one wildcard watch per resource type on the virtual workspace)",
        if constant {
            "constant in the cluster count"
        } else {
            "NOT constant; see the table"
        }
    );
    let unexpected: usize = rows.iter().map(|r| r.traffic.unexpected).sum();
    if unexpected > 0 {
        println!("note: {unexpected} requests to paths the synthetic kcp does not serve");
    }
}

/// Per-cluster heap by component, and heap per object, from the breakdown runs.
fn print_breakdown(figures: &Figures) {
    let heap = |shape: Shape, caches: CacheSet| -> Option<(f64, f64)> {
        if caches == CacheSet::Both {
            let row = figures.rows.iter().find(|r| r.shape == shape)?;
            return Some((row.heap_bytes as f64, row.heap_blocks as f64));
        }
        let (_, _, report) = figures
            .breakdown
            .iter()
            .find(|(s, c, _)| *s == shape && *c == caches)?;
        Some((report.heap_bytes as f64, report.heap_blocks as f64))
    };
    let n = BREAKDOWN_AT;
    // (bytes, blocks) per cluster beyond the objects, for one set of caches.
    let per_cluster = |caches: CacheSet| -> Option<(f64, f64)> {
        let (bytes, blocks) = heap(Shape::Clusters(n), caches)?;
        let (control_bytes, control_blocks) = heap(Shape::ObjectsOnly(n), caches)?;
        Some((
            (bytes - control_bytes) / n as f64,
            (blocks - control_blocks) / n as f64,
        ))
    };
    let (Some(provider), Some(config_maps), Some(namespaces), Some(both)) = (
        per_cluster(CacheSet::None),
        per_cluster(CacheSet::ConfigMaps),
        per_cluster(CacheSet::Namespaces),
        per_cluster(CacheSet::Both),
    ) else {
        return;
    };
    let minus = |a: (f64, f64), b: (f64, f64)| (a.0 - b.0, a.1 - b.1);
    println!();
    println!(
        "Where the per-cluster heap goes at {n} clusters (live heap, {n} clusters − 1-cluster control, ÷ {n}):"
    );
    let line = |what: &str, (bytes, blocks): (f64, f64)| {
        println!("  {what:<74} {bytes:>7.0} B {blocks:>5.1} allocations");
    };
    line(
        "provider: Clusters registry, Cluster + CancellationToken, APIBinding sets",
        provider,
    );
    line(
        "Cache<ConfigMap>: per-cluster map entry, cluster id, objects table",
        minus(config_maps, provider),
    );
    line(
        "Cache<Namespace>: per-cluster map entry, cluster id, objects table",
        minus(namespaces, provider),
    );
    line("measured with both caches", both);

    // Objects, from the control: one cache's heap minus the provider-only heap.
    let control = Shape::ObjectsOnly(n);
    if let (Some(none), Some(cm), Some(ns)) = (
        heap(control, CacheSet::None),
        heap(control, CacheSet::ConfigMaps),
        heap(control, CacheSet::Namespaces),
    ) {
        let per_object = |with: (f64, f64), count: usize| minus(with, none).0 / count as f64;
        println!(
            "Per cached object (for scale): {:.0} B per ConfigMap, {:.0} B per Namespace",
            per_object(cm, control.config_maps()),
            per_object(ns, control.namespaces())
        );
    }
}
