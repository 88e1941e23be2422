//! Two backend replicas behind one URL (haproxy, round-robin, no affinity) on a real
//! kube-apiserver: the CLI's logins and binds through the front all succeed while both replicas
//! serve them, with cookie and with redis sessions; and when the leader is SIGKILLed midway the
//! other replica takes the Lease and finishes every request, making nothing twice.
//!
//! Tests run one at a time: each starts its own replicas on the one cluster.

mod controller_support;
mod export_support;
mod login_support;
mod restart_support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use futures::future::try_join_all;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube_bind_e2e::harness::backend_process::BackendProcess;
use kube_bind_e2e::harness::child::free_port;
use kube_bind_e2e::harness::cli_flow::{self, Load};
use kube_bind_e2e::harness::haproxy::Haproxy;
use kube_bind_e2e::harness::redis::RedisServer;
use kube_bind_e2e::harness::{Check, Env, Workspace, wait_for};
use tokio::sync::Mutex;

use login_support::{fixed_keys, given_a_template, start_backend};
use restart_support::*;

static SERIAL: Mutex<()> = Mutex::const_new(());

/// Logins and binds through the front per session store.
const LOGINS: usize = 100;
/// How many of them run at once.
const CONCURRENCY: usize = 8;
/// The least share of the login and bind requests each replica must have answered.
const MIN_SHARE: f64 = 0.40;
/// Consumers whose requests the replicas reconcile while the leader is killed.
const CONSUMERS: usize = 20;
/// Requests that must have succeeded before the leader is killed.
const SUCCEEDED_BEFORE_KILL: usize = 3;
/// The routes of a CLI login and bind (as `/metrics` labels them).
const LOGIN_ROUTES: &[&str] = &[
    "/api/exports",
    "/api/authorize",
    "/oidc/*",
    "/api/callback",
    "/api/bind",
];

/// The flags both replicas share: they advertise the front's issuer and callback, seal and sign
/// with the same keys, elect one leader, and see haproxy (loopback) as a trusted proxy. The rate
/// limit is off: every test client comes from 127.0.0.1, one bucket.
fn replica_flags(front: &str, lease: &str) -> Vec<String> {
    let mut flags = fixed_keys();
    flags.extend([
        format!("--oidc-issuer-url={front}/oidc"),
        format!("--oidc-callback-url={front}/api/callback"),
        "--trusted-proxies=127.0.0.1".to_owned(),
        "--auth-rate-limit=0".to_owned(),
        "--leader-elect".to_owned(),
        "--leader-election-namespace=default".to_owned(),
        format!("--leader-election-id={lease}"),
        "--consumer-scope=Namespaced".to_owned(),
    ]);
    flags
}

/// Sum of `kube_bind_http_requests_total` over [`LOGIN_ROUTES`] in a `/metrics` text.
fn login_requests(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("kube_bind_http_requests_total{"))
        .filter(|l| {
            LOGIN_ROUTES
                .iter()
                .any(|r| l.contains(&format!("route=\"{r}\"")))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A replica's own count of login and bind requests, read on its own port.
async fn login_requests_at(url: &str) -> anyhow::Result<f64> {
    let text = reqwest::get(format!("{url}/metrics"))
        .await?
        .error_for_status()?
        .text()
        .await?;
    Ok(login_requests(&text))
}

/// Given two replicas with `store` sessions behind haproxy, when [`LOGINS`] CLI logins and binds
/// go through the front, then all succeed, each replica answered a fair share, and logins begun
/// on one replica were finished on the other.
async fn logins_through_the_front_alternate_and_all_succeed(
    store: &[String],
    label: &str,
) -> anyhow::Result<()> {
    let (env, plain) = given_a_provider_exporting_cowboys().await?;
    let template = env.unique("replicas");
    given_a_template(plain, &template, "example.com", "widgets", "v1").await?;
    let front_port = free_port()?;
    let front = format!("http://127.0.0.1:{front_port}");
    let mut flags = replica_flags(&front, &env.unique("replicas-lease"));
    flags.extend(store.iter().cloned());
    let one = start_backend(plain, &flags).await?;
    let two = start_backend(plain, &flags).await?;
    let haproxy = Haproxy::start_on(front_port, &[one.port(), two.port()]).await?;
    let before = [
        login_requests_at(&one.url()).await?,
        login_requests_at(&two.url()).await?,
    ];

    let load = cli_flow::run(
        &haproxy.url(),
        &env.unique("replica-user"),
        &template,
        LOGINS,
        CONCURRENCY,
    )
    .await;

    report(label, &load);
    assert!(
        load.failed.is_empty(),
        "{} of {LOGINS} logins and binds failed, e.g. {}",
        load.failed.len(),
        load.failed[0]
    );
    assert_eq!(load.done.len(), LOGINS);
    let served = [
        login_requests_at(&one.url()).await? - before[0],
        login_requests_at(&two.url()).await? - before[1],
    ];
    let total = served[0] + served[1];
    println!(
        "{label}: login and bind requests answered: replica 1 {}, replica 2 {} ({:.0}% / {:.0}%)",
        served[0],
        served[1],
        100.0 * served[0] / total,
        100.0 * served[1] / total
    );
    for (i, n) in served.iter().enumerate() {
        assert!(
            *n >= MIN_SHARE * total,
            "replica {} answered {n} of {total} login and bind requests, under {:.0}%",
            i + 1,
            MIN_SHARE * 100.0
        );
    }
    let crossed = load.done.iter().filter(|l| l.crossed_replicas()).count();
    let handed_over = load
        .done
        .iter()
        .filter(|l| l.served("/api/authorize") != l.served("/api/callback"))
        .count();
    println!(
        "{label}: {crossed}/{LOGINS} logins crossed replicas; {handed_over} were begun on one \
         replica (/api/authorize) and finished on the other (/api/callback)"
    );
    assert!(
        load.done
            .iter()
            .all(|l| l.hops.iter().all(|(_, s)| s.starts_with("replica-"))),
        "haproxy did not name the replica of every hop"
    );
    assert!(
        crossed >= LOGINS / 2,
        "only {crossed} of {LOGINS} logins crossed replicas"
    );
    assert!(
        handed_over >= LOGINS / 5,
        "only {handed_over} of {LOGINS} logins were finished on another replica than begun"
    );

    drop(haproxy);
    one.stop().await?;
    two.stop().await
}

fn report(label: &str, load: &Load) {
    println!(
        "{label}: {} logins and binds through the front in {:.1} s: {:.1}/s ({CONCURRENCY} at once)",
        load.done.len(),
        load.elapsed.as_secs_f64(),
        load.rate()
    );
}

#[tokio::test]
async fn logins_through_two_replicas_with_cookie_sessions_alternate_and_all_succeed()
-> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    logins_through_the_front_alternate_and_all_succeed(
        &["--session-store=cookie".to_owned()],
        "cookie",
    )
    .await
}

#[tokio::test]
async fn logins_through_two_replicas_with_redis_sessions_alternate_and_all_succeed()
-> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let redis = RedisServer::start().await?;
    logins_through_the_front_alternate_and_all_succeed(
        &[
            "--session-store=redis".to_owned(),
            format!("--redis-url={}", redis.url()),
        ],
        "redis",
    )
    .await
}

/// A replica as its own process, so that it can be SIGKILLed.
async fn replica_process(
    env: &Env,
    plain: &Workspace,
    flags: &[String],
) -> anyhow::Result<BackendProcess> {
    let mut all = vec![
        format!("--kubeconfig={}", plain.kubeconfig.display()),
        "--oidc-type=embedded".to_owned(),
    ];
    all.extend(flags.iter().cloned());
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_kb-backend"));
    Ok(BackendProcess::start(binary, &all, env.patience()).await?)
}

/// The pid in a Lease holder identity (`<host>_<pid>_<start>`, `runtime::leader::identity`).
fn pid_of_holder(holder: &str) -> Option<u32> {
    holder.rsplit('_').nth(1)?.parse().ok()
}

async fn holder(leases: &Api<Lease>, name: &str) -> anyhow::Result<Option<String>> {
    Ok(leases
        .get_opt(name)
        .await?
        .and_then(|l| l.spec?.holder_identity)
        .filter(|h| !h.is_empty()))
}

/// Given two replicas behind haproxy, both `--leader-elect`, reconciling [`CONSUMERS`]
/// consumers' requests, when the leader is SIGKILLed after a few succeeded, then the other takes
/// the Lease, every request succeeds, everything exists exactly once, and the front keeps
/// answering.
#[tokio::test]
async fn a_killed_leaders_requests_are_finished_by_the_other_replica_without_duplicates()
-> anyhow::Result<()> {
    let _serial = SERIAL.lock().await;
    let (env, plain) = given_a_provider_exporting_cowboys().await?;
    let client = plain.client().await?;
    let front_port = free_port()?;
    let lease = env.unique("replicas-kill");
    let flags = replica_flags(&format!("http://127.0.0.1:{front_port}"), &lease);
    let mut replicas = vec![
        replica_process(env, plain, &flags).await?,
        replica_process(env, plain, &flags).await?,
    ];
    let haproxy = Haproxy::start_on(front_port, &[replicas[0].port(), replicas[1].port()]).await?;
    let leases = Api::<Lease>::namespaced(client.clone(), "default");
    let leader = wait_for("a leader", env.patience(), || async {
        match holder(&leases, &lease).await {
            Ok(Some(h)) => Check::Done(h),
            Ok(None) => Check::Pending("no holder yet".into()),
            Err(e) => Check::Pending(e.to_string()),
        }
    })
    .await?;
    let leader_pid = pid_of_holder(&leader)
        .ok_or_else(|| anyhow::anyhow!("no pid in the Lease holder {leader:?}"))?;
    let index = replicas
        .iter()
        .position(|r| r.pid() == leader_pid)
        .ok_or_else(|| anyhow::anyhow!("the Lease holder {leader:?} is none of the replicas"))?;

    let consumers: BTreeSet<String> =
        try_join_all((0..CONSUMERS).map(|_| given_a_consumer_requesting_cowboys(env, plain)))
            .await?
            .into_iter()
            .collect();
    first_succeeded(env, &client, &consumers, SUCCEEDED_BEFORE_KILL).await?;
    replicas[index].kill()?;
    let killed = Instant::now();
    println!(
        "SIGKILLed the leader (replica {}, pid {leader_pid}) with {}/{CONSUMERS} requests Succeeded",
        index + 1,
        succeeded(&client, &consumers).await?
    );
    let new_holder = wait_for(
        "the Lease to name another holder",
        env.patience(),
        || async {
            match holder(&leases, &lease).await {
                Ok(Some(h)) if h != leader => Check::Done(h),
                Ok(h) => Check::Pending(format!("holder {h:?}")),
                Err(e) => Check::Pending(e.to_string()),
            }
        },
    )
    .await?;
    let hand_over = killed.elapsed();
    println!(
        "hand-over: {:.2} s from the kill until the Lease named {new_holder}",
        hand_over.as_secs_f64()
    );
    let survivor = &replicas[1 - index];
    assert_eq!(pid_of_holder(&new_holder), Some(survivor.pid()));

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
    println!(
        "after the kill: {} ({:.1} s after it)",
        by_kind(&converged),
        killed.elapsed().as_secs_f64()
    );

    // The front took the dead replica out of rotation: ten answers in a row from the survivor.
    let exports = format!("{}/api/exports?cluster_id=", haproxy.url());
    wait_for(
        "ten answers in a row through the front",
        env.patience(),
        || async {
            let mut codes = BTreeMap::<u16, usize>::new();
            for _ in 0..10 {
                let code = match reqwest::get(&exports).await {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                *codes.entry(code).or_default() += 1;
            }
            if codes.keys().eq([200].iter()) {
                Check::Done(())
            } else {
                Check::Pending(format!("answers by status (0: no answer): {codes:?}"))
            }
        },
    )
    .await?;

    // Nothing more appears once the survivor stops.
    drop(haproxy);
    for replica in &mut replicas {
        replica.stop().await;
    }
    assert_eq!(inventory(&client, &consumers).await?, converged);
    Ok(())
}

#[test]
fn login_requests_sum_the_login_routes_only() {
    let text = "# HELP x\n\
        kube_bind_http_requests_total{route=\"/api/authorize\",method=\"GET\",code=\"302\"} 5\n\
        kube_bind_http_requests_total{route=\"/oidc/*\",method=\"POST\",code=\"302\"} 3\n\
        kube_bind_http_requests_total{route=\"/healthz\",method=\"GET\",code=\"200\"} 100\n\
        kube_bind_http_requests_total{route=\"/api/bind\",method=\"POST\",code=\"200\"} 2\n";
    assert_eq!(login_requests(text), 10.0);
    assert_eq!(pid_of_holder("host_name_4242_18a3f"), Some(4242));
    assert_eq!(pid_of_holder("nohost"), None);
}
