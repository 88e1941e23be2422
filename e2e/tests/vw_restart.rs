//! A member apiserver restarting under a merged virtual-workspace watch: the watch goes on, and
//! every object created before, during and after the restart is seen exactly once, with no relist.

mod common;

use std::collections::BTreeMap;

use common::record_labelled_configmaps;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Api, Client,
    api::{ObjectMeta, PostParams},
};
use kube_bind_e2e::harness::{Env, EnvSpec, topology::setup_kube_bind};

static SPEC: EnvSpec = EnvSpec {
    workspaces: &["kube-bind", "provider-a", "provider-b"],
};

async fn create(client: &Client, name: &str, label: &str) -> anyhow::Result<()> {
    let cm = ConfigMap {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            labels: Some(BTreeMap::from([("e2e".to_string(), label.to_string())])),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<ConfigMap>::namespaced(client.clone(), "default")
        .create(&PostParams::default(), &cm)
        .await?;
    Ok(())
}

#[tokio::test]
async fn a_restarted_member_resumes_without_losing_or_repeating_events() -> anyhow::Result<()> {
    let env = Env::shared(&SPEC)?;
    if !env.is_sim() {
        return Ok(()); // restarting a member needs the stand-in's control plane
    }
    let topology = setup_kube_bind(env, "kube-bind", &["provider-a", "provider-b"], None).await?;
    let (a, b) = (env.workspace("provider-a")?, env.workspace("provider-b")?);
    let (a_client, b_client) = (a.client().await?, b.client().await?);
    let label = env.unique("restart");
    let recorder = record_labelled_configmaps(env, &topology.endpoint_url, &label).await?;
    let patience = env.patience();

    // Given objects in both providers, seen by the watch.
    create(&a_client, "a-before", &label).await?;
    create(&b_client, "b-before", &label).await?;
    recorder
        .wait("the objects created before the restart", patience, |s| {
            ["a-before", "b-before"]
                .iter()
                .all(|n| s.iter().any(|e| e.name == *n))
        })
        .await;

    // When provider-b's apiserver stops, provider-a's events keep flowing.
    env.stop_member("provider-b")?;
    for i in 0..3 {
        create(&a_client, &format!("a-during-{i}"), &label).await?;
    }
    recorder
        .wait(
            "provider-a's objects while provider-b is down",
            patience,
            |s| (0..3).all(|i| s.iter().any(|e| e.name == format!("a-during-{i}"))),
        )
        .await;

    // When it is back, objects created afterwards in both arrive.
    env.start_member("provider-b")?;
    let b_client = b.client().await?;
    for i in 0..3 {
        create(&b_client, &format!("b-after-{i}"), &label).await?;
        create(&a_client, &format!("a-after-{i}"), &label).await?;
    }
    let expected: Vec<(String, String)> = [("a-before", &a.id), ("b-before", &b.id)]
        .into_iter()
        .map(|(n, c)| (n.to_string(), c.clone()))
        .chain((0..3).map(|i| (format!("a-during-{i}"), a.id.clone())))
        .chain((0..3).flat_map(|i| {
            [
                (format!("b-after-{i}"), b.id.clone()),
                (format!("a-after-{i}"), a.id.clone()),
            ]
        }))
        .collect();
    // Each was seen exactly once, and the client never had to relist.
    recorder
        .expect_each_once_without_relist("every object after the restart", patience, &expected)
        .await;
    let seen = recorder.snapshot();
    assert!(
        !seen.iter().any(|e| e.what == "Error" || e.what == "Delete"),
        "{seen:?}"
    );
    let metrics = env.metrics().await?;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("kcp_sim_member_watch_restarts_total") && !l.ends_with(" 0")),
        "the member stream was restarted: {metrics}"
    );
    Ok(())
}
