//! The real backend (started in-process with its real wiring) against a real kube-apiserver:
//! stopped or aborted while K consumers' requests are still converging, a new backend finishes
//! the work without making anything twice; and the identity a consumer gets from login and
//! `/api/bind` may do what upstream's konnector needs in its own cluster namespace and nothing
//! in another's, as `kubectl auth can-i` answers with that kubeconfig.
//!
//! Tests run one at a time: each starts its own backends on the one cluster.

mod controller_support;
mod export_support;
mod login_support;

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine as _;
use futures::future::try_join_all;
use futures::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt as _, watcher};
use kube::{Client, Resource, ResourceExt};
use kube_bind_apis::keys::API_SERVICE_NAMESPACE_ANNOTATION;
use kube_bind_apis::{
    APIServiceExport, APIServiceExportRequest, APIServiceExportRequestPhase, APIServiceNamespace,
    BoundSchema,
};
use kube_bind_backend::resources::owner::OWNER_NAMESPACE_LABEL;
use kube_bind_e2e::harness::env::client_from_kubeconfig;
use kube_bind_e2e::harness::kubectl::kubectl;
use kube_bind_e2e::harness::{Browser, Check, Env, Workspace, apply, wait_for};
use kube_bind_e2e::konnector::{ExportReport, Konnector, established_crd_status};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use tokio::sync::{Mutex, OnceCell};

use controller_support::{Backend, wait_object};
use export_support::{example_crds, phase};

static SERIAL: Mutex<()> = Mutex::const_new(());

/// How many consumers bind at once in the restart tests.
const CONSUMERS: usize = 20;
/// The requests that must have succeeded before the first backend goes.
const SUCCEEDED_BEFORE_STOP: usize = 3;
/// Every consumer's request (and so its export) is named after what it binds.
const REQUEST: &str = "cowboys";
const BOUND_SCHEMA: &str = "cowboys.wildwest.dev";
/// The consumer namespace every request asks a provider namespace for.
const CONSUMER_NS: &str = "default";

/// The plain cluster with the kube-bind CRDs and the exported example CRDs (cowboys).
async fn given_a_provider_exporting_cowboys() -> anyhow::Result<(&'static Env, &'static Workspace)>
{
    static EXAMPLES: OnceCell<()> = OnceCell::const_new();
    let (env, plain) = controller_support::given_a_provider_cluster().await?;
    EXAMPLES
        .get_or_try_init(|| async {
            apply::install_crds(&plain.client().await?, &example_crds()?, env.patience()).await?;
            anyhow::Ok(())
        })
        .await?;
    Ok((env, plain))
}

/// A consumer's cluster namespace as bind-time provisioning leaves it (kubeconfig Secret,
/// ClusterBinding `cluster`), with its request for cowboys asking for consumer namespace
/// `default`. Returns the namespace.
async fn given_a_consumer_requesting_cowboys(
    env: &Env,
    plain: &Workspace,
) -> anyhow::Result<String> {
    let client = plain.client().await?;
    let ns = env.test_namespace(plain, "cluster").await?;
    let objects = [
        json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "kubeconfig", "namespace": ns},
            "stringData": {"kubeconfig": "apiVersion: v1\nkind: Config\n"}}),
        json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "ClusterBinding",
            "metadata": {"name": "cluster", "namespace": ns},
            "spec": {"kubeconfigSecretRef": {"name": "kubeconfig", "key": "kubeconfig"},
                     "providerPrettyName": "Wild West"}}),
        json!({"apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExportRequest",
            "metadata": {"name": REQUEST, "namespace": ns},
            "spec": {"resources": [{"group": "wildwest.dev", "resource": "cowboys"}],
                     "namespaces": [{"name": CONSUMER_NS}]}}),
    ];
    for object in &objects {
        apply::apply(&client, object).await?;
    }
    Ok(ns)
}

/// Every object the backend makes for one consumer whose request for cowboys succeeded, as
/// `Kind namespace/name` (reference §3.2, §3.3, §3.5 in Namespaced scope).
fn expected_for(cluster_ns: &str) -> Vec<String> {
    let provider_ns = format!("{cluster_ns}-{CONSUMER_NS}");
    let claim_rbac = format!("kube-binder-export-{CONSUMER_NS}-{REQUEST}");
    vec![
        format!("APIServiceExportRequest {cluster_ns}/{REQUEST}"),
        format!("APIServiceExport {cluster_ns}/{REQUEST}"),
        format!("BoundSchema {cluster_ns}/{BOUND_SCHEMA}"),
        format!("APIServiceNamespace {cluster_ns}/{CONSUMER_NS}"),
        format!("Namespace {provider_ns} for {cluster_ns}/{CONSUMER_NS}"),
        format!("RoleBinding {cluster_ns}/kube-binder"),
        format!("ClusterRole kube-binder-{cluster_ns}"),
        format!("RoleBinding {provider_ns}/kube-binder"),
        format!("Role {provider_ns}/{claim_rbac}"),
        format!("RoleBinding {provider_ns}/{claim_rbac}"),
    ]
}

/// `Kind namespace/name` of every `K` in one of `cluster_namespaces` (everywhere when
/// `selector` is given, which then picks the objects).
async fn names_of<K>(
    client: &Client,
    cluster_namespaces: &BTreeSet<String>,
    selector: Option<&str>,
) -> anyhow::Result<Vec<String>>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    let kind = K::kind(&());
    let name = |o: &K| match o.namespace() {
        Some(ns) => format!("{kind} {ns}/{}", o.name_any()),
        None => format!("{kind} {}", o.name_any()),
    };
    let listed = match selector {
        Some(selector) => Api::<K>::all(client.clone())
            .list(&ListParams::default().labels(selector))
            .await?
            .items
            .iter()
            .map(name)
            .collect(),
        None => Api::<K>::all(client.clone())
            .list(&ListParams::default())
            .await?
            .items
            .iter()
            .filter(|o| {
                o.namespace()
                    .is_some_and(|ns| cluster_namespaces.contains(&ns))
            })
            .map(name)
            .collect(),
    };
    Ok(listed)
}

/// Everything the backend made (and the requests) for `cluster_namespaces`, sorted, with
/// repeats kept: kube-bind objects in those namespaces, provider namespaces by the backend's
/// annotation, RBAC by the backend's owner label.
async fn inventory(
    client: &Client,
    cluster_namespaces: &BTreeSet<String>,
) -> anyhow::Result<Vec<String>> {
    let owned = format!(
        "{OWNER_NAMESPACE_LABEL} in ({})",
        cluster_namespaces
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join(",")
    );
    let mut all = Vec::new();
    all.extend(names_of::<APIServiceExportRequest>(client, cluster_namespaces, None).await?);
    all.extend(names_of::<APIServiceExport>(client, cluster_namespaces, None).await?);
    all.extend(names_of::<BoundSchema>(client, cluster_namespaces, None).await?);
    all.extend(names_of::<APIServiceNamespace>(client, cluster_namespaces, None).await?);
    all.extend(names_of::<RoleBinding>(client, cluster_namespaces, Some(&owned)).await?);
    all.extend(names_of::<Role>(client, cluster_namespaces, Some(&owned)).await?);
    all.extend(names_of::<ClusterRole>(client, cluster_namespaces, Some(&owned)).await?);
    all.extend(names_of::<ClusterRoleBinding>(client, cluster_namespaces, Some(&owned)).await?);
    for namespace in Api::<Namespace>::all(client.clone())
        .list(&ListParams::default())
        .await?
    {
        let Some(owner) = namespace
            .annotations()
            .get(API_SERVICE_NAMESPACE_ANNOTATION)
        else {
            continue;
        };
        if owner
            .split_once('/')
            .is_some_and(|(ns, _)| cluster_namespaces.contains(ns))
        {
            all.push(format!("Namespace {} for {owner}", namespace.name_any()));
        }
    }
    all.sort();
    Ok(all)
}

/// How many of the requests in `cluster_namespaces` have succeeded.
async fn succeeded(
    client: &Client,
    cluster_namespaces: &BTreeSet<String>,
) -> anyhow::Result<usize> {
    let requests = Api::<APIServiceExportRequest>::all(client.clone())
        .list(&ListParams::default())
        .await?;
    Ok(requests
        .items
        .iter()
        .filter(|r| {
            r.namespace()
                .is_some_and(|ns| cluster_namespaces.contains(&ns))
        })
        .filter(|r| phase(r) == APIServiceExportRequestPhase::Succeeded)
        .count())
}

/// Returns the moment `n` of the requests in `cluster_namespaces` have succeeded, as a watch
/// sees them (a poll could see many more by then).
async fn first_succeeded(
    env: &Env,
    client: &Client,
    cluster_namespaces: &BTreeSet<String>,
    n: usize,
) -> anyhow::Result<()> {
    let requests = Api::<APIServiceExportRequest>::all(client.clone());
    let mut seen = watcher::watcher(requests, watcher::Config::default())
        .applied_objects()
        .boxed();
    let mut done = BTreeSet::new();
    let watch = async {
        while let Some(request) = seen.try_next().await? {
            let Some(ns) = request.namespace() else {
                continue;
            };
            if cluster_namespaces.contains(&ns)
                && phase(&request) == APIServiceExportRequestPhase::Succeeded
            {
                done.insert(ns);
                if done.len() >= n {
                    return Ok(());
                }
            }
        }
        anyhow::bail!("the watch of APIServiceExportRequests ended")
    };
    tokio::time::timeout(env.patience(), watch)
        .await
        .map_err(|_| anyhow::anyhow!("timed out waiting for {n} requests to succeed"))?
}

/// Counts of `inventory` by kind (every kind the backend makes, zero included), for the log.
fn by_kind(inventory: &[String]) -> String {
    let kinds = expected_for("");
    let mut counts: std::collections::BTreeMap<&str, usize> = kinds
        .iter()
        .map(|e| (e.split(' ').next().unwrap_or_default(), 0))
        .collect();
    for entry in inventory {
        *counts
            .entry(entry.split(' ').next().unwrap_or_default())
            .or_default() += 1;
    }
    counts
        .iter()
        .map(|(kind, n)| format!("{kind}={n}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// How the first backend goes away.
#[derive(Clone, Copy, Debug)]
enum Stop {
    /// Shutdown token cancelled, every task awaited.
    Graceful,
    /// Dropped without waiting: the token cancelled and the backend's tasks (its `JoinSet`)
    /// aborted where they stand.
    Abort,
}

/// Given a backend serving K consumers binding at once, when it goes (`how`) after the first
/// few requests succeeded and a new backend starts, then every request succeeds and everything
/// exists exactly once.
async fn a_backend_going_midway_is_finished_by_the_next_without_duplicates(
    how: Stop,
) -> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_provider_exporting_cowboys().await?;
    let client = plain.client().await?;
    let first = Backend::start(plain, "Namespaced").await?;

    let consumers: BTreeSet<String> =
        try_join_all((0..CONSUMERS).map(|_| given_a_consumer_requesting_cowboys(env, plain)))
            .await?
            .into_iter()
            .collect();
    first_succeeded(env, &client, &consumers, SUCCEEDED_BEFORE_STOP).await?;
    match how {
        Stop::Graceful => first.stop().await?,
        Stop::Abort => drop(first),
    }
    let at_stop = inventory(&client, &consumers).await?;
    println!(
        "{how:?} stop: {}/{CONSUMERS} requests Succeeded; {}",
        succeeded(&client, &consumers).await?,
        by_kind(&at_stop)
    );

    let second = Backend::start(plain, "Namespaced").await?;
    wait_for("every request to succeed", env.patience(), || async {
        match succeeded(&client, &consumers).await {
            Ok(n) if n == CONSUMERS => Check::Done(()),
            Ok(n) => Check::Pending(format!("{n} succeeded")),
            Err(e) => Check::Pending(e.to_string()),
        }
    })
    .await?;
    let mut expected: Vec<String> = consumers.iter().flat_map(|ns| expected_for(ns)).collect();
    expected.sort();
    let converged = wait_for("exactly the expected objects", env.patience(), || async {
        match inventory(&client, &consumers).await {
            Ok(found) if found == expected => Check::Done(found),
            Ok(found) => Check::Pending(diff(&expected, &found)),
            Err(e) => Check::Pending(e.to_string()),
        }
    })
    .await?;
    println!("after restart: {}", by_kind(&converged));

    // Nothing more appears once its last write has landed.
    second.stop().await?;
    assert_eq!(
        inventory(&client, &consumers).await?,
        converged,
        "after the second backend stopped"
    );
    Ok(())
}

/// What `found` has beyond `expected` (repeats included) and what it lacks.
fn diff(expected: &[String], found: &[String]) -> String {
    let mut missing = expected.to_vec();
    let mut extra = Vec::new();
    for entry in found {
        match missing.iter().position(|e| e == entry) {
            Some(i) => {
                missing.remove(i);
            }
            None => extra.push(entry.clone()),
        }
    }
    format!("extra {extra:?}, missing {missing:?}")
}

#[tokio::test]
async fn a_backend_stopped_midway_is_finished_by_the_next_without_duplicates() -> anyhow::Result<()>
{
    a_backend_going_midway_is_finished_by_the_next_without_duplicates(Stop::Graceful).await
}

#[tokio::test]
async fn a_backend_aborted_midway_is_finished_by_the_next_without_duplicates() -> anyhow::Result<()>
{
    a_backend_going_midway_is_finished_by_the_next_without_duplicates(Stop::Abort).await
}

/// A consumer after login and `/api/bind`: the bind response and its cluster namespace (the
/// kubeconfig's context namespace).
struct BoundConsumer {
    user: String,
    namespace: String,
    response: Value,
}

/// Logs `user` in the way the CLI does and binds the template `template`.
async fn bound_consumer(
    backend: &Backend,
    user: &str,
    template: &str,
) -> anyhow::Result<BoundConsumer> {
    let browser = Browser::new()?;
    let token = login_support::cli_login(&browser, &backend.url(), user).await?;
    let bound = browser
        .post_json(
            &format!("{}/api/bind", backend.url()),
            &json!({"metadata": {"name": template}, "templateRef": {"name": template}}),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .await?;
    anyhow::ensure!(bound.status == 200, "POST /api/bind: {}", bound.body);
    let response: Value = serde_json::from_str(&bound.body)?;
    let kubeconfig = base64::engine::general_purpose::STANDARD
        .decode(response["kubeconfig"].as_str().unwrap_or_default())?;
    let parsed = kube::config::Kubeconfig::from_yaml(std::str::from_utf8(&kubeconfig)?)?;
    let namespace = parsed
        .contexts
        .first()
        .and_then(|c| c.context.as_ref())
        .and_then(|c| c.namespace.clone())
        .ok_or_else(|| anyhow::anyhow!("the kubeconfig of {user} names no namespace"))?;
    Ok(BoundConsumer {
        user: user.to_owned(),
        namespace,
        response,
    })
}

/// `kubectl auth can-i <verb> <resource> [<flags>]` with `kubeconfig`: whether it answers yes.
fn can_i(
    env: &Env,
    kubeconfig: &Path,
    verb: &str,
    resource: &str,
    flags: &[&str],
) -> anyhow::Result<bool> {
    let args: Vec<&str> = ["auth", "can-i", verb, resource]
        .into_iter()
        .chain(flags.iter().copied())
        .collect();
    let out = kubectl(kubeconfig, &args, &env.log_dir)?;
    match out.stdout.trim() {
        "yes" => Ok(true),
        "no" => Ok(false),
        _ => anyhow::bail!(
            "kubectl auth can-i {}: {} {}",
            args[2..].join(" "),
            out.stdout,
            out.stderr
        ),
    }
}

/// What upstream's `kube-binder` ClusterRole (reference §3.1 item 4), bound in the cluster
/// namespace by the ClusterBinding controller (§3.2 item 2), lets the konnector do there:
/// `(verb, resource, subresource)`.
const KONNECTOR_NEEDS: &[(&str, &str, &str)] = &[
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

#[tokio::test]
async fn the_consumers_kubeconfig_may_do_what_the_konnector_needs_in_its_namespace_only()
-> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_provider_exporting_cowboys().await?;
    let admin = plain.client().await?;
    login_support::given_a_template(plain, "cowboys", "wildwest.dev", "cowboys", "v1alpha1")
        .await?;
    let backend = login_support::start_backend(plain, &[]).await?;

    // Given two consumers bound through the CLI's login and /api/bind,
    let alice = bound_consumer(&backend, &env.unique("rbac-alice"), "cowboys").await?;
    let bob = bound_consumer(&backend, &env.unique("rbac-bob"), "cowboys").await?;
    assert_ne!(alice.namespace, bob.namespace);

    // when the ClusterBinding controller has bound `kube-binder` in alice's namespace,
    let binding = wait_object(
        env,
        &Api::<RoleBinding>::namespaced(admin.clone(), &alice.namespace),
        "kube-binder",
        |_| true,
    )
    .await?;
    assert_eq!(
        (
            binding.role_ref.kind.as_str(),
            binding.role_ref.name.as_str()
        ),
        ("ClusterRole", "kube-binder")
    );

    // alice creates the request with her kubeconfig, as upstream's CLI does,
    let kubeconfig =
        login_support::consumer_creates_the_request(&alice.user, &alice.response, None)?;
    let as_alice = client_from_kubeconfig(&kubeconfig).await?;
    let request_name = alice.response["requests"][0]["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    wait_object(
        env,
        &Api::<APIServiceExportRequest>::namespaced(as_alice.clone(), &alice.namespace),
        &request_name,
        |r| phase(r) == APIServiceExportRequestPhase::Succeeded,
    )
    .await?;

    // and her konnector does its provider-side writes with it,
    let konnector = Konnector::new(as_alice.clone(), &alice.namespace);
    konnector.heartbeat_once().await?;
    let schema = Api::<BoundSchema>::namespaced(as_alice.clone(), &alice.namespace)
        .get(BOUND_SCHEMA)
        .await?;
    let now = Time(k8s_openapi::jiff::Timestamp::now());
    konnector
        .report_bound_schema(BOUND_SCHEMA, &established_crd_status(&schema.spec, &now))
        .await?;
    konnector
        .mark_export(&request_name, &ExportReport::in_sync())
        .await?;
    konnector
        .claim_namespace(&request_name, CONSUMER_NS)
        .await?;
    let provider_ns = wait_for("alice's provider namespace", env.patience(), || async {
        match konnector.provider_namespace(CONSUMER_NS).await {
            Ok(Some(ns)) => Check::Done(ns),
            Ok(None) => Check::Pending("no status.namespace yet".into()),
            Err(e) => Check::Pending(e.to_string()),
        }
    })
    .await?;

    let claim_rbac = format!("kube-binder-export-{CONSUMER_NS}-{request_name}");
    for name in [claim_rbac.as_str(), "kube-binder"] {
        wait_object(
            env,
            &Api::<RoleBinding>::namespaced(admin.clone(), &provider_ns),
            name,
            |_| true,
        )
        .await?;
    }

    // then kubectl auth can-i answers as upstream's RBAC would.
    let mut wrong = Vec::new();
    let mut check =
        |verb: &str, resource: &str, flags: &[&str], want: bool| -> anyhow::Result<()> {
            if can_i(env, &kubeconfig, verb, resource, flags)? != want {
                wrong.push(format!(
                    "{verb} {resource} {}: want {}",
                    flags.join(" "),
                    if want { "yes" } else { "no" }
                ));
            }
            Ok(())
        };
    for (verb, resource, subresource) in KONNECTOR_NEEDS {
        let sub = format!("--subresource={subresource}");
        for (namespace, want) in [(&alice.namespace, true), (&bob.namespace, false)] {
            let mut flags = vec!["-n", namespace.as_str()];
            if !subresource.is_empty() {
                flags.push(&sub);
            }
            check(verb, resource, &flags, want)?;
        }
    }
    check(
        "create",
        "apiserviceexports.kube-bind.io",
        &["-n", alice.namespace.as_str()],
        false,
    )?;
    check("get", "secrets", &["--all-namespaces"], false)?;
    // The bound resource, in her provider namespace only (ClusterRole kube-binder-<ns>).
    check(
        "create",
        "cowboys.wildwest.dev",
        &["-n", &provider_ns],
        true,
    )?;
    check(
        "create",
        "cowboys.wildwest.dev",
        &["-n", &bob.namespace],
        false,
    )?;
    // The claimed configmaps, in her provider namespace only (the claim's Role there).
    check("create", "configmaps", &["-n", &provider_ns], true)?;
    check("create", "configmaps", &["-n", &alice.namespace], false)?;
    check("create", "configmaps", &["-n", &bob.namespace], false)?;
    assert!(
        wrong.is_empty(),
        "kube-binder of {}: {wrong:#?}",
        alice.namespace
    );

    backend.stop().await
}
