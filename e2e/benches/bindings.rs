//! Time for N bindings to converge (issue 10, item 10): the real backend against the floor, the
//! same API writes issued directly by a plain kube client, in the same run.
//!
//! Run with `PATH="$(hack/build.sh --bin-dir):$PATH" cargo bench -p kube-bind-e2e --bench
//! bindings`. Prints figures; asserts nothing about them. `BINDINGS_BENCH_N=50,200` changes the
//! binding counts (default 100,1000).
//!
//! How it measures:
//! - The shared plain test cluster of the e2e harness (kube-apiserver and
//!   kube-controller-manager of the cached test world) with the kube-bind CRDs and one probe CRD
//!   (`probes.bench.kube-bind.io`, Namespaced, labelled `kube-bind.io/exported=true`).
//! - A binding is one consumer: a cluster namespace as bind-time provisioning makes it
//!   (`generateName`, identity annotation), the ClusterBinding `cluster` in it, and one
//!   APIServiceExportRequest for `probes`. It has converged once the request is `Succeeded`, its
//!   APIServiceExport carries the spec-hash annotation, BoundSchema `probes.bench.kube-bind.io`
//!   exists, and so do RoleBinding `kube-binder` and ClusterRole `kube-binder-<namespace>`
//!   granting `probes` (the consumer can use what it bound).
//! - Five watches (requests, exports, BoundSchemas, RoleBindings, ClusterRoles; no per-object
//!   polling) are open and listed before the first write; the clock runs from the first write to
//!   the moment they show the last binding converged.
//! - The consumer's three writes per binding are issued the same way in both phases, at most
//!   [`WORKERS`] at once.
//! - `backend`: the real backend (`app::start`, default flags: `--workers=4`, Namespaced consumer
//!   scope) in this process does the rest.
//! - `floor`: no backend; as each request is created, a plain kube client issues the writes the
//!   backend makes for it on the way to convergence, at most [`WORKERS`] bindings at once (the
//!   backend's `--workers` default, one queue for all its controllers): BoundSchema, export,
//!   request status; the BoundSchema's export owner reference, the export's status; RoleBinding,
//!   ClusterRole (already granting `probes`), the ClusterBinding's status. Eight writes, with the
//!   backend's builders; the backend may make more (e.g. a ClusterRole first made before the
//!   export exists, then updated).
//! - The floor runs first, then a backend is started (and waited for on `/readyz`), measured and
//!   stopped. Between phases the namespaces are deleted and waited for; names are unique per
//!   phase. A phase gives up after its timeout with a line saying how far it got.
//!
//! How to read the table: `ratio` is backend ÷ floor seconds (target ≤ 1.5×); `bindings/s` is
//! the backend's; `cpu s` is the CPU time this process used in the phase (the bench's client, and
//! in the backend phase the backend too): near wall time × cores means the phase was CPU-bound. Below the table, the kube-apiserver's own request counts per phase (from its
//! `apiserver_request_total`, by verb and resource, everything this process sent) show which
//! requests the backend makes beyond the floor's; then the backend's reconciles per controller and
//! its work queue's counters, from its `/metrics`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::pin::pin;
use std::time::{Duration, Instant};

use futures::{StreamExt as _, TryStreamExt as _, stream};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use kube::runtime::watcher::{self, Event};
use kube::runtime::{WatchStreamExt as _, watcher as watch};
use kube::{Client, Resource, ResourceExt as _};
use kube_bind_apis::apiserviceexport::CONDITION_PROVIDER_IN_SYNC;
use kube_bind_apis::conditions::{self, ConditionChange};
use kube_bind_apis::keys::{IDENTITY_ANNOTATION, SOURCE_SPEC_HASH_ANNOTATION};
use kube_bind_apis::{
    APIServiceExport, APIServiceExportRequest, APIServiceExportRequestPhase, BoundSchema,
    BoundSchemaSpec, ClusterBinding, GroupResource, InformerScope, Isolation,
};
use kube_bind_backend::app;
use kube_bind_backend::options::Options;
use kube_bind_backend::provision::objects::cluster_binding;
use kube_bind_backend::resources::bound_schema::{
    bound_schema, bound_schema_name, export_owner_reference, exported_spec, spec_from_crd,
    with_owner,
};
use kube_bind_backend::resources::export::export_for_request;
use kube_bind_backend::resources::export_request::{ResolvedResource, exports_created};
use kube_bind_backend::resources::heartbeat::health;
use kube_bind_backend::resources::owner::{OWNER_KIND_LABEL, OWNER_NAMESPACE_LABEL};
use kube_bind_backend::resources::rbac::{
    self, BINDER_ROLE_NAME, CLUSTER_BINDING_KIND, ClusterNamespace, cluster_role_name,
};
use kube_bind_backend::runtime::status::{self, patch_status};
use kube_bind_e2e::harness::{Env, EnvSpec, Workspace, apply};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

static SPEC: EnvSpec = EnvSpec::plain(&["plain"]);

/// Writes in flight at once on either side: the backend's `--workers` default.
const WORKERS: usize = 4;
const DEFAULT_COUNTS: [usize; 2] = [100, 1_000];
const PROBE_GROUP: &str = "bench.kube-bind.io";
const PROBE_RESOURCE: &str = "probes";
const PROBE_VERSION: &str = "v1alpha1";
/// Marks every namespace of one phase, for its cleanup.
const PHASE_LABEL: &str = "bench.kube-bind.io/phase";
const TARGET_RATIO: f64 = 1.5;
/// A phase's time limit: a fixed part plus a part per binding.
const PHASE_BASE_TIMEOUT: Duration = Duration::from_secs(120);
const PHASE_TIMEOUT_PER_BINDING: Duration = Duration::from_millis(500);
const CLEANUP_TIMEOUT: Duration = Duration::from_secs(900);
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The parts of a converged binding, one bit each.
const REQUEST_SUCCEEDED: u8 = 1;
const EXPORT_HASHED: u8 = 1 << 1;
const SCHEMA_BOUND: u8 = 1 << 2;
const ROLE_BINDING: u8 = 1 << 3;
const CLUSTER_ROLE: u8 = 1 << 4;
const CONVERGED: u8 = (1 << 5) - 1;
const PARTS: [(u8, &str); 5] = [
    (REQUEST_SUCCEEDED, "request Succeeded"),
    (EXPORT_HASHED, "export with hash"),
    (SCHEMA_BOUND, "BoundSchema"),
    (ROLE_BINDING, "RoleBinding"),
    (CLUSTER_ROLE, "ClusterRole granting probes"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Floor,
    Backend,
}

impl Side {
    fn label(self) -> &'static str {
        match self {
            Self::Floor => "floor",
            Self::Backend => "backend",
        }
    }
}

/// One phase's outcome: seconds to converge, or why not.
type Outcome = Result<Duration, String>;

/// A measured phase: its outcome and the CPU time this process (bench client, and the backend
/// in its phase) used meanwhile.
struct Phase {
    outcome: Outcome,
    cpu: Duration,
}

impl Default for Phase {
    fn default() -> Self {
        Self {
            outcome: Err("not run".to_owned()),
            cpu: Duration::ZERO,
        }
    }
}

/// User and system CPU time of this process so far.
fn process_cpu() -> Duration {
    // SAFETY: getrusage(2) only writes the struct it is given.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// Requests the apiserver served, by (verb, resource[/subresource]).
type RequestCounts = BTreeMap<(String, String), f64>;

fn main() -> anyhow::Result<()> {
    let counts = match std::env::var("BINDINGS_BENCH_N") {
        Ok(list) => list
            .split(',')
            .map(|n| n.trim().parse::<usize>().ok().filter(|n| *n > 0))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| {
                anyhow::anyhow!("BINDINGS_BENCH_N={list:?} is not a list of positive numbers")
            })?,
        Err(_) => DEFAULT_COUNTS.to_vec(),
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(&counts))
}

async fn run(counts: &[usize]) -> anyhow::Result<()> {
    let started = Instant::now();
    let progress =
        |message: String| println!("[{:>6.1}s] {message}", started.elapsed().as_secs_f64());
    let env = Env::shared(&SPEC)?;
    let plain = env.workspace("plain")?;
    let client = plain.client().await?;
    apply::install_kube_bind_crds(&client, env.patience()).await?;
    apply::install_crds(&client, &[probe_crd()], env.patience()).await?;
    let probe = Probe::read(&client).await?;
    println!(
        "bindings bench: N = {counts:?}; {WORKERS} writes in flight per side; floor, then backend"
    );
    let mut rows = Vec::new();
    let mut profiles = Vec::new();
    let mut backend_reports = Vec::new();
    for (k, &n) in counts.iter().enumerate() {
        let mut outcomes = [Phase::default(), Phase::default()];
        for (i, side) in [Side::Floor, Side::Backend].into_iter().enumerate() {
            let tag = env.unique(&format!("bind{n}{}", side.label()));
            let backend = match side {
                Side::Floor => None,
                Side::Backend => Some(start_backend(plain).await?),
            };
            let before = request_counts(env).await;
            let cpu_before = process_cpu();
            let outcome = measure(&client, &probe, side, n, &tag).await;
            let cpu = process_cpu().saturating_sub(cpu_before);
            let after = request_counts(env).await;
            if let Some(backend) = backend {
                backend_reports.push((n, backend.reconciles().await));
                backend.stop().await?;
            }
            match &outcome {
                Ok(took) => progress(format!(
                    "N={n} {}: converged in {:.2} s, this process used {:.1} s of CPU",
                    side.label(),
                    took.as_secs_f64(),
                    cpu.as_secs_f64()
                )),
                Err(why) => progress(format!("N={n} {}: gave up: {why}", side.label())),
            }
            if let (Ok(before), Ok(after)) = (before, after) {
                profiles.push((n, side, difference(&after, &before)));
            }
            // The cluster goes with this process: after the last phase there is nothing to
            // clean up for.
            if k + 1 < counts.len() || side == Side::Floor {
                cleanup(&client, &tag).await?;
                progress(format!("N={n} {}: namespaces deleted", side.label()));
            }
            outcomes[i] = Phase { outcome, cpu };
        }
        let [floor, backend] = outcomes;
        rows.push((n, backend, floor));
    }
    print_table(&rows);
    print_profiles(&profiles, counts);
    for (n, report) in backend_reports {
        println!();
        println!("backend reconciles and queue at N={n} (its /metrics):");
        match report {
            Ok(lines) => lines.iter().for_each(|line| println!("  {line}")),
            Err(err) => println!("  cannot read them: {err}"),
        }
    }
    Ok(())
}

/// The exported probe CRD.
fn probe_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{PROBE_RESOURCE}.{PROBE_GROUP}"),
            "labels": {"kube-bind.io/exported": "true"},
        },
        "spec": {
            "group": PROBE_GROUP, "scope": "Namespaced",
            "names": {"kind": "Probe", "listKind": "ProbeList", "plural": PROBE_RESOURCE, "singular": "probe"},
            "versions": [{
                "name": PROBE_VERSION, "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                }}},
            }],
        },
    })
}

/// What the floor needs of the probe: its BoundSchema spec and labels as the backend derives
/// them from the CRD (default `--cluster-scoped-isolation=Prefixed`).
struct Probe {
    spec: BoundSchemaSpec,
    labels: BTreeMap<String, String>,
}

impl Probe {
    async fn read(client: &Client) -> anyhow::Result<Self> {
        let crd = Api::<CustomResourceDefinition>::all(client.clone())
            .get(&format!("{PROBE_RESOURCE}.{PROBE_GROUP}"))
            .await?;
        let source = spec_from_crd(&crd, &InformerScope::Namespaced)
            .ok_or_else(|| anyhow::anyhow!("the probe CRD does not fit a BoundSchema"))?;
        Ok(Self {
            spec: exported_spec(&source, &Isolation::Prefixed),
            labels: crd.labels().clone(),
        })
    }

    fn group_resource() -> GroupResource {
        GroupResource::new(PROBE_GROUP, PROBE_RESOURCE)
    }
}

/// The real backend on `plain` with default flags, ready (`/readyz` answers 200).
struct Backend {
    running: app::RunningBackend,
    shutdown: CancellationToken,
}

async fn start_backend(plain: &Workspace) -> anyhow::Result<Backend> {
    let options = Options::from_args([
        "kube-bind-backend".to_owned(),
        "--kubeconfig".to_owned(),
        plain.kubeconfig.display().to_string(),
        "--oidc-type=embedded".to_owned(),
        "--listen-address=127.0.0.1:0".to_owned(),
    ])?;
    let shutdown = CancellationToken::new();
    let running = app::start(options, shutdown.clone()).await?;
    let readyz = format!("http://{}/readyz", running.local_addr());
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match reqwest::get(&readyz).await {
            Ok(response) if response.status().is_success() => break,
            _ if Instant::now() > deadline => {
                shutdown.cancel();
                anyhow::bail!("the backend was not ready within {READY_TIMEOUT:?}");
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    Ok(Backend { running, shutdown })
}

impl Backend {
    /// Its reconcile counts and times per controller and its queue's counters, from `/metrics`.
    async fn reconciles(&self) -> anyhow::Result<Vec<String>> {
        let url = format!("http://{}/metrics", self.running.local_addr());
        let text = reqwest::get(&url).await?.text().await?;
        Ok(text
            .lines()
            .filter(|l| {
                l.starts_with("kube_bind_reconcile") || l.starts_with("kube_bind_workqueue")
            })
            .filter(|l| !l.contains("_bucket"))
            .map(str::to_owned)
            .collect())
    }

    async fn stop(self) -> anyhow::Result<()> {
        self.shutdown.cancel();
        self.running.wait().await?;
        Ok(())
    }
}

/// One phase: opens the watches, issues the writes of `side` for `n` bindings in namespaces
/// `<tag>-…`, and returns the time from the first write to the last binding converged.
async fn measure(client: &Client, probe: &Probe, side: Side, n: usize, tag: &str) -> Outcome {
    let timeout = PHASE_BASE_TIMEOUT + PHASE_TIMEOUT_PER_BINDING * n as u32;
    let stop = CancellationToken::new();
    let _stop_on_return = stop.clone().drop_guard();
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    let watches = open_watches(client, &seen_tx, &stop);
    tokio::time::timeout(READY_TIMEOUT, watches)
        .await
        .map_err(|_| "the watches did not list within a minute".to_owned())??;
    let (done_tx, done_rx) = oneshot::channel();
    let (progress_tx, mut progress_rx) = tokio::sync::watch::channel(Progress::default());
    let start = Instant::now();
    tokio::spawn(collect(
        seen_rx,
        format!("{tag}-"),
        n,
        start,
        done_tx,
        progress_tx,
    ));
    let (provider_tx, provider_rx) = mpsc::unbounded_channel();
    let consumer = consumer_writes(client.clone(), n, tag.to_owned(), provider_tx);
    let provider = async {
        match side {
            Side::Floor => floor_writes(client, probe, provider_rx).await,
            Side::Backend => Ok(()),
        }
    };
    let writes = async {
        let (consumer, provider) = tokio::join!(consumer, provider);
        consumer.and(provider)
    };
    let converged = async {
        let (writes, converged) = tokio::join!(writes, done_rx);
        writes?;
        converged.map_err(|_| "the watches ended".to_owned())
    };
    match tokio::time::timeout(timeout, converged).await {
        Ok(result) => result,
        Err(_) => {
            let progress = progress_rx.borrow_and_update().clone();
            Err(format!(
                "not converged after {} s: {}",
                timeout.as_secs(),
                progress.describe(n)
            ))
        }
    }
}

/// A part of a binding seen in place: (cluster namespace, part bit).
type Seen = (String, u8);

/// Starts the five watches; resolves once every one has listed.
async fn open_watches(
    client: &Client,
    seen: &mpsc::UnboundedSender<Seen>,
    stop: &CancellationToken,
) -> Result<(), String> {
    let owned_by_binding =
        watcher::Config::default().labels(&format!("{OWNER_KIND_LABEL}={CLUSTER_BINDING_KIND}"));
    tokio::try_join!(
        watch_parts(
            Api::<APIServiceExportRequest>::all(client.clone()),
            watcher::Config::default(),
            |r| {
                let succeeded = r.status.as_ref().map(|s| s.phase())
                    == Some(APIServiceExportRequestPhase::Succeeded);
                r.namespace()
                    .filter(|_| succeeded)
                    .map(|ns| (ns, REQUEST_SUCCEEDED))
            },
            seen,
            stop,
        ),
        watch_parts(
            Api::<APIServiceExport>::all(client.clone()),
            watcher::Config::default(),
            |e| {
                let hashed = e.annotations().contains_key(SOURCE_SPEC_HASH_ANNOTATION);
                e.namespace()
                    .filter(|_| hashed)
                    .map(|ns| (ns, EXPORT_HASHED))
            },
            seen,
            stop,
        ),
        watch_parts(
            Api::<BoundSchema>::all(client.clone()),
            watcher::Config::default(),
            |s| {
                let probe = s.name_any() == bound_schema_name(&Probe::group_resource());
                s.namespace().filter(|_| probe).map(|ns| (ns, SCHEMA_BOUND))
            },
            seen,
            stop,
        ),
        watch_parts(
            Api::<RoleBinding>::all(client.clone()),
            owned_by_binding.clone(),
            |b| {
                let binder = b.name_any() == BINDER_ROLE_NAME;
                b.namespace()
                    .filter(|_| binder)
                    .map(|ns| (ns, ROLE_BINDING))
            },
            seen,
            stop,
        ),
        watch_parts(
            Api::<ClusterRole>::all(client.clone()),
            owned_by_binding,
            |r| {
                let namespace = r.labels().get(OWNER_NAMESPACE_LABEL)?;
                let grants = r.rules.iter().flatten().any(|rule| {
                    rule.resources
                        .iter()
                        .flatten()
                        .any(|res| res == PROBE_RESOURCE)
                });
                (grants && r.name_any() == cluster_role_name(namespace))
                    .then(|| (namespace.clone(), CLUSTER_ROLE))
            },
            seen,
            stop,
        ),
    )?;
    Ok(())
}

/// Watches `api` until `stop`, sending the part `part_of` finds in each object; the returned
/// future resolves once the initial list is through.
fn watch_parts<K>(
    api: Api<K>,
    config: watcher::Config,
    part_of: fn(&K) -> Option<Seen>,
    seen: &mpsc::UnboundedSender<Seen>,
    stop: &CancellationToken,
) -> impl Future<Output = Result<(), String>> + use<K>
where
    K: Resource<DynamicType = ()> + Clone + serde::de::DeserializeOwned + Debug + Send + 'static,
{
    let (listed_tx, listed_rx) = oneshot::channel();
    let seen = seen.clone();
    let stop = stop.clone();
    let kind = K::kind(&()).into_owned();
    tokio::spawn(async move {
        let mut events = pin!(watch(api, config).default_backoff());
        let mut listed = Some(listed_tx);
        loop {
            let event = tokio::select! {
                () = stop.cancelled() => return,
                event = events.next() => event,
            };
            match event {
                Some(Ok(Event::InitDone)) => {
                    if let Some(listed) = listed.take() {
                        let _ = listed.send(());
                    }
                }
                Some(Ok(Event::Apply(object) | Event::InitApply(object))) => {
                    if let Some(part) = part_of(&object) {
                        let _ = seen.send(part);
                    }
                }
                Some(Ok(Event::Delete(_) | Event::Init)) => {}
                Some(Err(err)) => eprintln!("watch of {kind} failed, retrying: {err}"),
                None => return,
            }
        }
    });
    async move {
        listed_rx
            .await
            .map_err(|_| "a watch ended before listing".to_owned())
    }
}

/// How many bindings have converged, and how many lack each part.
#[derive(Debug, Clone, Default)]
struct Progress {
    converged: usize,
    lacking: [usize; PARTS.len()],
    namespaces: usize,
}

impl Progress {
    fn describe(&self, n: usize) -> String {
        let lacking: Vec<String> = PARTS
            .iter()
            .zip(self.lacking)
            .filter(|(_, count)| *count > 0)
            .map(|((_, part), count)| format!("{count} lack {part}"))
            .collect();
        format!(
            "{}/{n} converged, {} namespaces seen; {}",
            self.converged,
            self.namespaces,
            lacking.join(", ")
        )
    }
}

/// Tallies the parts seen per namespace of this phase (`prefix…`); sends the time from `start`
/// once `n` namespaces are converged.
async fn collect(
    mut seen: mpsc::UnboundedReceiver<Seen>,
    prefix: String,
    n: usize,
    start: Instant,
    done: oneshot::Sender<Duration>,
    progress: tokio::sync::watch::Sender<Progress>,
) {
    let mut parts: HashMap<String, u8> = HashMap::new();
    let mut converged = 0;
    while let Some((namespace, part)) = seen.recv().await {
        if !namespace.starts_with(&prefix) {
            continue;
        }
        let bits = parts.entry(namespace).or_default();
        let was = *bits == CONVERGED;
        *bits |= part;
        if !was && *bits == CONVERGED {
            converged += 1;
            if converged == n {
                let _ = done.send(start.elapsed());
                return;
            }
        }
        progress.send_modify(|p| {
            p.converged = converged;
            p.namespaces = parts.len();
            for (i, (bit, _)) in PARTS.iter().enumerate() {
                p.lacking[i] = parts.values().filter(|b| *b & bit == 0).count();
            }
        });
    }
}

/// A binding whose consumer writes are done, for the floor's provider writes.
struct Created {
    namespace: Namespace,
    binding: ClusterBinding,
    request: APIServiceExportRequest,
}

/// The consumer's writes, `WORKERS` bindings at once: namespace, ClusterBinding, request.
async fn consumer_writes(
    client: Client,
    n: usize,
    tag: String,
    created: mpsc::UnboundedSender<Created>,
) -> Result<(), String> {
    stream::iter(0..n)
        .map(|i| {
            let (client, tag, created) = (client.clone(), tag.clone(), created.clone());
            async move {
                let binding = create_binding(&client, &tag, i)
                    .await
                    .map_err(|e| format!("consumer write {i} failed: {e}"))?;
                let _ = created.send(binding);
                Ok::<_, String>(())
            }
        })
        .buffer_unordered(WORKERS)
        .try_collect()
        .await
}

async fn create_binding(client: &Client, tag: &str, i: usize) -> Result<Created, kube::Error> {
    let params = PostParams::default();
    let namespace: Namespace = serde_json::from_value(json!({
        "metadata": {
            "generateName": format!("{tag}-"),
            "labels": {PHASE_LABEL: tag},
            "annotations": {IDENTITY_ANNOTATION: format!("bench-consumer-{i}#")},
        },
    }))
    .map_err(kube::Error::SerdeError)?;
    let namespace = Api::<Namespace>::all(client.clone())
        .create(&params, &namespace)
        .await?;
    let ns = namespace.name_any();
    let binding = Api::<ClusterBinding>::namespaced(client.clone(), &ns)
        .create(&params, &cluster_binding(&ns, "Backend"))
        .await?;
    let request: APIServiceExportRequest = serde_json::from_value(json!({
        "apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExportRequest",
        "metadata": {"name": PROBE_RESOURCE, "namespace": ns},
        "spec": {"resources": [{"group": PROBE_GROUP, "resource": PROBE_RESOURCE}]},
    }))
    .map_err(kube::Error::SerdeError)?;
    let request = Api::<APIServiceExportRequest>::namespaced(client.clone(), &ns)
        .create(&params, &request)
        .await?;
    Ok(Created {
        namespace,
        binding,
        request,
    })
}

/// The floor's provider writes, `WORKERS` bindings at once, each as soon as its consumer writes
/// are done.
async fn floor_writes(
    client: &Client,
    probe: &Probe,
    created: mpsc::UnboundedReceiver<Created>,
) -> Result<(), String> {
    let mut created = created;
    stream::poll_fn(|cx| created.poll_recv(cx))
        .map(|binding| async move {
            let ns = binding.namespace.name_any();
            provide(client, probe, binding)
                .await
                .map_err(|e| format!("floor write in {ns} failed: {e}"))
        })
        .buffer_unordered(WORKERS)
        .try_collect()
        .await
}

/// What the backend writes for one binding on its way to convergence, in its order.
async fn provide(client: &Client, probe: &Probe, created: Created) -> Result<(), kube::Error> {
    let Created {
        namespace,
        binding,
        request,
    } = created;
    let ns = namespace.name_any();
    let uid = namespace.uid().unwrap_or_default();
    let now = Time(Timestamp::now());
    let params = PostParams {
        field_manager: status::params().field_manager,
        ..PostParams::default()
    };

    // The request controller: BoundSchema, export, request status.
    let schemas = Api::<BoundSchema>::namespaced(client.clone(), &ns);
    let schema = schemas
        .create(
            &params,
            &bound_schema(probe.spec.clone(), &ns, Some(&probe.labels)),
        )
        .await?;
    let resolved = ResolvedResource {
        group_resource: Probe::group_resource(),
        versions: vec![PROBE_VERSION.to_owned()],
    };
    let export = export_for_request(
        &request,
        &[resolved],
        std::slice::from_ref(&schema.spec),
        &InformerScope::Namespaced,
        &Isolation::Prefixed,
    );
    let exports = Api::<APIServiceExport>::namespaced(client.clone(), &ns);
    let export = exports.create(&params, &export).await?;
    let mut request_conditions = Vec::new();
    let (ready, succeeded) = exports_created();
    conditions::set(&mut request_conditions, ready, &now);
    conditions::set_summary(&mut request_conditions, &now);
    let requests = Api::<APIServiceExportRequest>::namespaced(client.clone(), &ns);
    let request_status = json!({"phase": succeeded, "conditions": request_conditions});
    patch_status(&requests, &request, request_status).await?;

    // The export controller: the BoundSchema's owner reference, the export's status.
    if let Some(owners) = export_owner_reference(&export).and_then(|o| with_owner(&schema, &o)) {
        let mut owned = schema.clone();
        owned.metadata.owner_references = Some(owners);
        owned.metadata.managed_fields = None;
        schemas.replace(&schema.name_any(), &params, &owned).await?;
    }
    let mut export_conditions = Vec::new();
    conditions::set(
        &mut export_conditions,
        ConditionChange::true_(CONDITION_PROVIDER_IN_SYNC),
        &now,
    );
    conditions::set_summary(&mut export_conditions, &now);
    patch_status(&exports, &export, json!({"conditions": export_conditions})).await?;

    // The ClusterBinding controller: RoleBinding, ClusterRole, the binding's status.
    Api::<RoleBinding>::namespaced(client.clone(), &ns)
        .create(&params, &rbac::cluster_namespace_role_binding(&ns))
        .await?;
    let rules = rbac::bound_resource_rules(&ns, std::slice::from_ref(&export), |name| {
        (name == schema.name_any()).then_some(&schema)
    })
    .map_err(|e| kube::Error::Service(e.to_string().into()))?;
    let cluster_ns = ClusterNamespace {
        name: &ns,
        uid: &uid,
    };
    Api::<ClusterRole>::all(client.clone())
        .create(&params, &rbac::cluster_role(cluster_ns, rules))
        .await?;
    let mut binding_conditions = Vec::new();
    conditions::set(
        &mut binding_conditions,
        health(None, Timestamp::now()).condition,
        &now,
    );
    conditions::set_summary(&mut binding_conditions, &now);
    let bindings = Api::<ClusterBinding>::namespaced(client.clone(), &ns);
    patch_status(
        &bindings,
        &binding,
        json!({"conditions": binding_conditions}),
    )
    .await?;
    Ok(())
}

/// Deletes the phase's namespaces and waits until they are gone.
async fn cleanup(client: &Client, tag: &str) -> anyhow::Result<()> {
    let api = Api::<Namespace>::all(client.clone());
    let selector = ListParams::default().labels(&format!("{PHASE_LABEL}={tag}"));
    let names: Vec<String> = api
        .list_metadata(&selector)
        .await?
        .items
        .iter()
        .map(|n| n.name_any())
        .collect();
    stream::iter(names)
        .map(|name| {
            let api = api.clone();
            async move {
                match api.delete(&name, &DeleteParams::background()).await {
                    Ok(_) => Ok(()),
                    Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
                    Err(err) => Err(err),
                }
            }
        })
        .buffer_unordered(16)
        .try_collect::<()>()
        .await?;
    let deadline = Instant::now() + CLEANUP_TIMEOUT;
    loop {
        let left = api.list_metadata(&selector).await?.items.len();
        if left == 0 {
            return Ok(());
        }
        if Instant::now() > deadline {
            anyhow::bail!("{left} namespaces of {tag} still there after {CLEANUP_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The apiserver's `apiserver_request_total`, summed over codes and scopes, WATCH left out.
async fn request_counts(env: &Env) -> anyhow::Result<RequestCounts> {
    let text = env.metrics().await?;
    let mut counts = RequestCounts::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let label = |name: &str| {
            let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
            let end = labels[start..].find('"')? + start;
            Some(&labels[start..end])
        };
        let verb = label("verb").unwrap_or_default();
        if verb == "WATCH" {
            continue;
        }
        let mut resource = label("resource").unwrap_or_default().to_owned();
        if let Some(sub) = label("subresource").filter(|s| !s.is_empty()) {
            resource = format!("{resource}/{sub}");
        }
        *counts.entry((verb.to_owned(), resource)).or_default() +=
            value.trim().parse::<f64>().unwrap_or(0.0);
    }
    Ok(counts)
}

fn difference(after: &RequestCounts, before: &RequestCounts) -> RequestCounts {
    after
        .iter()
        .map(|(key, count)| (key.clone(), count - before.get(key).copied().unwrap_or(0.0)))
        .filter(|(_, count)| *count >= 0.5)
        .collect()
}

fn print_table(rows: &[(usize, Phase, Phase)]) {
    println!();
    println!(
        "{:>6} {:>11} {:>9} {:>7} {:>10} {:>13} {:>11}",
        "N", "backend s", "floor s", "ratio", "bindings/s", "backend cpu s", "floor cpu s"
    );
    for (n, backend_phase, floor_phase) in rows {
        let (backend, floor) = (&backend_phase.outcome, &floor_phase.outcome);
        let seconds = |o: &Outcome| match o {
            Ok(d) => format!("{:.2}", d.as_secs_f64()),
            Err(_) => "gave up".to_owned(),
        };
        let (ratio, rate) = match (backend, floor) {
            (Ok(b), Ok(f)) => (
                format!("{:.2}×", b.as_secs_f64() / f.as_secs_f64()),
                format!("{:.1}", *n as f64 / b.as_secs_f64()),
            ),
            (Ok(b), Err(_)) => (
                "-".to_owned(),
                format!("{:.1}", *n as f64 / b.as_secs_f64()),
            ),
            _ => ("-".to_owned(), "-".to_owned()),
        };
        println!(
            "{n:>6} {:>11} {:>9} {ratio:>7} {rate:>10} {:>13.1} {:>11.1}",
            seconds(backend),
            seconds(floor),
            backend_phase.cpu.as_secs_f64(),
            floor_phase.cpu.as_secs_f64()
        );
    }
    println!("target: ratio ≤ {TARGET_RATIO}×");
}

/// The apiserver's requests per binding in each phase, for the resources bindings touch.
fn print_profiles(profiles: &[(usize, Side, RequestCounts)], counts: &[usize]) {
    const RESOURCES: [&str; 7] = [
        "namespaces",
        "clusterbindings",
        "apiserviceexportrequests",
        "apiserviceexports",
        "boundschemas",
        "rolebindings",
        "clusterroles",
    ];
    for &n in counts {
        let of = |side: Side| {
            profiles
                .iter()
                .find(|(m, s, _)| *m == n && *s == side)
                .map(|(_, _, c)| c)
        };
        let (Some(floor), Some(backend)) = (of(Side::Floor), of(Side::Backend)) else {
            continue;
        };
        println!();
        println!("apiserver requests per binding at N={n} (floor → backend):");
        let keys: std::collections::BTreeSet<_> = floor.keys().chain(backend.keys()).collect();
        for key @ (verb, resource) in keys {
            let base = resource.split('/').next().unwrap_or_default();
            if !RESOURCES.contains(&base) {
                continue;
            }
            let per = |c: &RequestCounts| c.get(key).copied().unwrap_or(0.0) / n as f64;
            println!(
                "  {verb:<6} {resource:<34} {:>6.2} → {:>6.2}",
                per(floor),
                per(backend)
            );
        }
    }
}
