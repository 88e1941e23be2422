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
mod restart_support;

use std::collections::BTreeSet;

use base64::Engine as _;
use futures::future::try_join_all;
use k8s_openapi::api::rbac::v1::RoleBinding;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::api::Api;
use kube_bind_apis::{APIServiceExportRequest, APIServiceExportRequestPhase, BoundSchema};
use kube_bind_e2e::harness::env::client_from_kubeconfig;
use kube_bind_e2e::harness::kubectl::{KONNECTOR_NEEDS, can_i};
use kube_bind_e2e::harness::{Browser, Check, wait_for};
use kube_bind_e2e::konnector::{ExportReport, Konnector, established_crd_status};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use controller_support::{Backend, wait_object};
use export_support::phase;
use restart_support::*;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// How many consumers bind at once in the restart tests.
const CONSUMERS: usize = 20;
/// The requests that must have succeeded before the first backend goes.
const SUCCEEDED_BEFORE_STOP: usize = 3;

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
            let args: Vec<&str> = [verb, resource]
                .into_iter()
                .chain(flags.iter().copied())
                .collect();
            if can_i(&kubeconfig, &args, &env.log_dir)? != want {
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
