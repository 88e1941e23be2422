//! Memory and watch connections per engaged logical cluster (SPEC §11): the kcp provider and
//! the caches at 1,000 and 10,000 clusters on one shard and 10,000 on two, against a synthetic
//! kcp served by this bench.
//!
//! Run with `cargo bench -p kube-bind-e2e --bench clusters`. Prints figures; asserts nothing
//! about them. `CLUSTERS_BENCH_RUNS=<n>` changes the runs per configuration (default 3, the
//! median is shown).
//!
//! How it measures:
//! - The parent serves a synthetic kcp (see `clusters/server.rs`) on 127.0.0.1: the home
//!   workspace's APIExportEndpointSlice, whose endpoint URLs (one per shard; shard `s` ≥ 1 is
//!   the same server under a `/shards/<s>` path prefix) point back at it, and behind each
//!   virtual workspace, wildcard LIST/WATCH of APIBindings (one per cluster, all `Bound`),
//!   Namespaces (one per cluster) and ConfigMaps (five per namespace) of the clusters on that
//!   shard (cluster `i` on shard `i % shards`).
//! - Each run re-executes this binary as a child that runs only the backend's `KcpProvider`
//!   and `Caches` (`Cache<ConfigMap>`, `Cache<Namespace>`), because a process's RSS does not
//!   reliably shrink after freeing; it waits until every shard's endpoint is open, every
//!   cluster engaged and every object cached, idles 2 s with bookmarks flowing, and reports
//!   VmRSS, live heap (a counting global allocator, exact and unaffected by allocator caching)
//!   and its time from start to synced.
//! - While that child is alive, the parent reads how many watches are open per shard and
//!   resource.
//!
//! How to read the table:
//! - `baseline` is the process with one empty virtual workspace: its fixed cost.
//! - `objects of N, 1 cluster` holds exactly the objects of `N clusters` (same names, sizes and
//!   annotations) in a single cluster; `N clusters − that control` is what clusters cost beyond
//!   their objects, shown per cluster in KiB (÷ N − 1, the clusters beyond the control's; target:
//!   ≤ 10 KiB per idle engaged cluster).
//! - `N clusters, 2 shards` spreads those clusters over two virtual workspaces; its control,
//!   `objects of N, 2 shards`, holds the same objects in one cluster per shard (÷ N − 2). The
//!   line "a second shard" below the table is the two controls' difference: what one more
//!   endpoint costs, whatever N.
//! - `watches` is open watch connections: the slice watch on the home workspace, then per shard
//!   apibindings/configmaps/namespaces, e.g. `1; 1/1/1; 1/1/1` on two shards. It must not grow
//!   with N (target: one per resource type and shard, plus the slice watch: 4 on one shard, 7
//!   on two). `per-cl rq` counts requests, on any shard, that were not wildcard ones (must
//!   stay 0).
//! - Sync time includes the counting allocator's small overhead, the same in every row.
//! - The breakdown below the table repeats the one-shard 10,000-cluster pair with no cache, only
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
const SHAPES: [Shape; 7] = [
    Shape::Baseline,
    Shape::ObjectsOnly {
        n: 1_000,
        shards: 1,
    },
    Shape::Clusters {
        n: 1_000,
        shards: 1,
    },
    Shape::ObjectsOnly {
        n: 10_000,
        shards: 1,
    },
    Shape::Clusters {
        n: 10_000,
        shards: 1,
    },
    Shape::ObjectsOnly {
        n: 10_000,
        shards: 2,
    },
    Shape::Clusters {
        n: 10_000,
        shards: 2,
    },
];
const DEFAULT_RUNS: usize = 3;
/// The cluster count the per-component breakdown is measured at (on one shard).
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
            endpoints: shape.shards(),
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
            traffic = traffic.max(&seen);
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
        if shape.namespaces() == BREAKDOWN_AT && shape.shards() == 1 {
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

/// Open watches as `<slices>; <apibindings>/<configmaps>/<namespaces>` of each shard, e.g.
/// `1; 1/1/1; 1/1/1` on two shards.
fn watches(traffic: &Traffic) -> String {
    let mut shown = traffic.slice_watches.to_string();
    for shard in 0..traffic.shard_watches.len() {
        let open = Resource::ALL.map(|r| traffic.open(shard, r).to_string());
        shown.push_str("; ");
        shown.push_str(&open.join("/"));
    }
    shown
}

/// Whether `row` saw what a constant cost means: the one slice watch, one wildcard watch per
/// resource type on each shard, and no per-cluster request.
fn watches_as_expected(row: &Row) -> bool {
    let shards = row.shape.shards();
    row.traffic.slice_watches == 1
        && row.traffic.shard_watches.len() == shards
        && (0..shards).all(|s| Resource::ALL.iter().all(|&r| row.traffic.open(s, r) == 1))
        && row.traffic.per_cluster == 0
}

/// The objects-only control of `shape` (same objects, same shards, one cluster per shard).
fn control_of(shape: Shape) -> Option<Shape> {
    match shape {
        Shape::Clusters { n, shards } => Some(Shape::ObjectsOnly { n, shards }),
        Shape::Baseline | Shape::ObjectsOnly { .. } => None,
    }
}

/// Clusters `shape` engages beyond its control: what a per-cluster figure is divided by.
fn extra_clusters(shape: Shape, control: Shape) -> f64 {
    shape.clusters().saturating_sub(control.clusters()).max(1) as f64
}

fn print_table(rows: &[Row]) {
    let Some(baseline) = rows.iter().find(|r| r.shape == Shape::Baseline) else {
        return;
    };
    let control = |shape: Shape| {
        let control = control_of(shape)?;
        rows.iter().find(|r| r.shape == control)
    };
    let kib = |bytes: f64| bytes / 1024.0;

    println!();
    println!(
        "Per-cluster memory and watch connections (medians of the runs; objects = {CONFIG_MAPS_PER_NAMESPACE} ConfigMaps + 1 Namespace per namespace)"
    );
    println!(
        "{:<26} {:>8} {:>8} {:>9} {:>9} {:>9} {:>10} {:>11} {:>11} {:>12} {:>8} {:>16} {:>9}",
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
        let per_cluster = control(row.shape).map(|control| {
            let n = extra_clusters(row.shape, control.shape);
            (
                kib((row.rss_kib as f64 - control.rss_kib as f64) * 1024.0) / n,
                kib(row.heap_bytes as f64 - control.heap_bytes as f64) / n,
                (row.heap_blocks as f64 - control.heap_blocks as f64) / n,
            )
        });
        let (rss_per, heap_per, blocks_per) = match per_cluster {
            Some((rss, heap, blocks)) => (
                format!("{rss:.2}"),
                format!("{heap:.2}"),
                format!("{blocks:.1}"),
            ),
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        println!(
            "{:<26} {:>8} {:>8} {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>11} {:>11} {:>12} {:>8} {:>16} {:>9}",
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
        if let Some(control) = control(row.shape) {
            let per_cluster = (row.rss_kib as f64 - control.rss_kib as f64)
                / extra_clusters(row.shape, control.shape);
            let verdict = if per_cluster <= TARGET_KIB_PER_CLUSTER {
                "within"
            } else {
                "MISSES"
            };
            println!(
                "{}: {per_cluster:.2} KiB RSS per idle engaged cluster beyond its objects; \
                 {verdict} the {TARGET_KIB_PER_CLUSTER} KiB target",
                row.shape.label()
            );
        }
    }
    let objects_on = |shards: usize| {
        rows.iter().find(|r| {
            r.shape
                == Shape::ObjectsOnly {
                    n: BREAKDOWN_AT,
                    shards,
                }
        })
    };
    if let (Some(one), Some(two)) = (objects_on(1), objects_on(2)) {
        println!(
            "a second shard (its endpoint, client and {} watches, one more cluster; same objects): \
             {:+.1} MiB RSS, {:+.1} MiB heap",
            Resource::ALL.len(),
            (two.rss_kib as f64 - one.rss_kib as f64) / 1024.0,
            (two.heap_bytes as f64 - one.heap_bytes as f64) / MIB
        );
    }
    println!(
        "watches = open watch connections while the child idled: the slice watch on the home \
         workspace; then, per shard, {}",
        Resource::ALL.map(Resource::label).join("/")
    );
    let missed: Vec<String> = rows
        .iter()
        .filter(|r| !watches_as_expected(r))
        .map(|r| r.shape.label())
        .collect();
    let totals: Vec<String> = rows
        .iter()
        .filter(|r| matches!(r.shape, Shape::Clusters { .. }))
        .map(|r| {
            format!(
                "{}: {} = {} types × {} shard(s) + 1",
                r.shape.label(),
                r.traffic.open_total(),
                Resource::ALL.len(),
                r.shape.shards()
            )
        })
        .collect();
    if missed.is_empty() {
        println!(
            "watch connections: constant in the cluster count, resource types × shards + the slice \
             watch, no per-cluster request ({})",
            totals.join("; ")
        );
    } else {
        println!(
            "watch connections: NOT one per resource type and shard, or per-cluster requests, in: {}",
            missed.join(", ")
        );
    }
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
    let (measured, control) = (
        Shape::Clusters { n, shards: 1 },
        Shape::ObjectsOnly { n, shards: 1 },
    );
    let extra = extra_clusters(measured, control);
    // (bytes, blocks) per cluster beyond the objects, for one set of caches.
    let per_cluster = |caches: CacheSet| -> Option<(f64, f64)> {
        let (bytes, blocks) = heap(measured, caches)?;
        let (control_bytes, control_blocks) = heap(control, caches)?;
        Some((
            (bytes - control_bytes) / extra,
            (blocks - control_blocks) / extra,
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
        "Where the per-cluster heap goes at {n} clusters on 1 shard (live heap, {n} clusters − 1-cluster control, ÷ {extra}):"
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
