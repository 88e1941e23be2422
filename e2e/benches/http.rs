//! HTTP throughput and tail latency of `/api/healthz` and `/api/exports` (issue 11, item 8), as a
//! ratio to a bare axum handler answering the same bytes, in the same process and run.
//!
//! Run with `cargo bench -p kube-bind-e2e --bench http`. Prints figures; asserts nothing about
//! them. `HTTP_BENCH_REQUESTS=<n>` changes the requests per measurement (default 20,000).
//!
//! How it measures: both routers (the backend's full router with its metrics middleware, and a
//! bare router) serve on 127.0.0.1; one bounded load generator (32 concurrent keep-alive
//! connections, a fixed number of requests) drives each route. Bare and ours alternate, twice,
//! and the better of the two rounds counts for each, so a noisy moment of the machine hurts
//! neither side alone. Target: ours ≥ 0.8× bare.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::StatusCode;
use axum::routing::get;
use kube_bind_backend::http::{AppState, HttpMetrics, router};
use kube_bind_backend::provider::{Cluster, ClusterId, Clusters, Endpoint, EndpointKind};
use kube_bind_backend::readiness::Readiness;
use tokio_util::sync::CancellationToken;

const CONCURRENCY: usize = 32;
const ROUNDS: usize = 2;

#[derive(Clone, Copy)]
struct Figures {
    per_second: f64,
    p50: Duration,
    p99: Duration,
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let requests: usize = std::env::var("HTTP_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(requests))
}

async fn run(requests: usize) -> anyhow::Result<()> {
    let ours = serve(ours()?).await?;
    let exports_body = reqwest::get(format!("http://{ours}/api/exports"))
        .await?
        .bytes()
        .await?;
    let bare = serve(bare(exports_body.to_vec())).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()?;
    println!(
        "HTTP bench: {requests} requests per measurement, {CONCURRENCY} concurrent, best of {ROUNDS} rounds"
    );
    println!(
        "{:<14} {:>12} {:>12} {:>9} {:>9} {:>9} {:>9} {:>8} {:>9}",
        "route",
        "bare req/s",
        "ours req/s",
        "bare p50",
        "ours p50",
        "bare p99",
        "ours p99",
        "ratio",
        "p99 ratio"
    );
    for route in ["/api/healthz", "/api/exports"] {
        let mut best_bare: Option<Figures> = None;
        let mut best_ours: Option<Figures> = None;
        for _ in 0..ROUNDS {
            let b = load(&client, &format!("http://{bare}{route}"), requests).await?;
            let o = load(&client, &format!("http://{ours}{route}"), requests).await?;
            best_bare = Some(better(best_bare, b));
            best_ours = Some(better(best_ours, o));
        }
        let (b, o) = (best_bare.unwrap_or(zero()), best_ours.unwrap_or(zero()));
        println!(
            "{route:<14} {:>12.0} {:>12.0} {:>9} {:>9} {:>9} {:>9} {:>7.2}× {:>8.2}×",
            b.per_second,
            o.per_second,
            ms(b.p50),
            ms(o.p50),
            ms(b.p99),
            ms(o.p99),
            o.per_second / b.per_second,
            o.p99.as_secs_f64() / b.p99.as_secs_f64().max(1e-9),
        );
    }
    println!(
        "ratio = ours req/s ÷ bare req/s (target ≥ 0.8×); p99 ratio = ours p99 ÷ bare p99 (lower is better)"
    );
    Ok(())
}

fn zero() -> Figures {
    Figures {
        per_second: 0.0,
        p50: Duration::ZERO,
        p99: Duration::ZERO,
    }
}

fn better(best: Option<Figures>, next: Figures) -> Figures {
    match best {
        Some(best) if best.per_second >= next.per_second => best,
        _ => next,
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2}ms", d.as_secs_f64() * 1000.0)
}

/// The backend's router as `app::start` builds it (metrics middleware included), serving one
/// engaged cluster; these two routes need no login.
fn ours() -> anyhow::Result<Router> {
    let client = kube::Client::try_from(kube::Config::new("http://127.0.0.1:9".parse()?))?;
    let clusters = Clusters::default();
    let endpoint = Arc::new(Endpoint::new(
        "http://127.0.0.1:9",
        EndpointKind::Direct,
        client,
        CancellationToken::new(),
    ));
    clusters.insert(Cluster::new(ClusterId::single(), endpoint));
    let state = AppState::new("bench", clusters, Readiness::default(), false)
        .with_metrics(HttpMetrics::default());
    Ok(router(state, None))
}

/// The floor: handlers that answer the same status and bytes and do nothing else.
fn bare(exports: Vec<u8>) -> Router {
    let exports = Arc::new(exports);
    Router::new()
        .route("/api/healthz", get(|| async { StatusCode::OK }))
        .route(
            "/api/exports",
            get(move || {
                let exports = exports.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        exports.as_ref().clone(),
                    )
                }
            }),
        )
}

async fn serve(router: Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        let service = router.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(err) = axum::serve(listener, service).await {
            eprintln!("bench server stopped: {err}");
        }
    });
    Ok(address)
}

/// `requests` GETs of `url` from `CONCURRENCY` workers; every answer must be 200.
async fn load(client: &reqwest::Client, url: &str, requests: usize) -> anyhow::Result<Figures> {
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for worker in 0..CONCURRENCY {
        let client = client.clone();
        let url = url.to_owned();
        let share = requests / CONCURRENCY + usize::from(worker < requests % CONCURRENCY);
        workers.spawn(async move {
            let mut latencies = Vec::with_capacity(share);
            for _ in 0..share {
                let sent = Instant::now();
                let response = client.get(&url).send().await?;
                let status = response.status();
                response.bytes().await?;
                anyhow::ensure!(status == reqwest::StatusCode::OK, "{url}: {status}");
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut all = Vec::with_capacity(requests);
    while let Some(done) = workers.join_next().await {
        all.extend(done??);
    }
    let elapsed = started.elapsed();
    all.sort();
    let at = |q: f64| all[((all.len() as f64 * q) as usize).min(all.len().saturating_sub(1))];
    Ok(Figures {
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        p50: at(0.50),
        p99: at(0.99),
    })
}
