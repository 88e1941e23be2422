//! `--request-ttl`: the backend deletes an APIServiceExportRequest once it is older than the
//! TTL, whatever its phase, and keeps what the request made (upstream's fixed ten minutes,
//! shortened here so the test can watch it happen).

mod export_support;

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt as _;
use kube::api::Api;
use kube::runtime::watcher::{self, Event, watcher};
use kube_bind_apis::{
    APIServiceExport, APIServiceExportRequest, APIServiceExportRequestPhase, BoundSchema,
};
use serde_json::json;
use tokio::sync::watch;

use export_support::{create, given_a_provider_with_a_backend_flagged, phase, wait_until};

const TTL: Duration = Duration::from_secs(30);

#[tokio::test]
async fn requests_are_deleted_after_the_ttl_in_every_phase_and_the_export_stays()
-> anyhow::Result<()> {
    let ttl = format!("--request-ttl={}s", TTL.as_secs());
    let (env, plain) = given_a_provider_with_a_backend_flagged(&[&ttl]).await?;
    let client = plain.client().await?;
    let ns = env.test_namespace(plain, "cluster").await?;
    let requests: Api<APIServiceExportRequest> = Api::namespaced(client.clone(), &ns);
    let deletions = Deletions::watch(requests.clone()).await?;

    // One request per phase it can be in when the TTL ends: Succeeded, Failed (a claim that
    // cannot be claimed fails at once), and Pending (an unknown resource waits out its
    // one-minute grace, longer than the TTL).
    let cases = [
        (
            "cowboys",
            "wildwest.dev",
            "cowboys",
            "secrets",
            APIServiceExportRequestPhase::Succeeded,
        ),
        (
            "bad-claim",
            "wildwest.dev",
            "cowboys",
            "pods",
            APIServiceExportRequestPhase::Failed,
        ),
        (
            "unknown",
            "wildwest.dev",
            "horses",
            "secrets",
            APIServiceExportRequestPhase::Pending,
        ),
    ];
    for (name, group, resource, claim, _) in &cases {
        create(
            plain,
            json!({
                "apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExportRequest",
                "metadata": {"name": name, "namespace": ns},
                "spec": {
                    "resources": [{"group": group, "resource": resource}],
                    "permissionClaims": [{
                        "group": "", "resource": claim,
                        "selector": {"labelSelector": {"matchLabels": {"app": "ttl"}}},
                    }],
                },
            }),
        )
        .await?;
    }
    let mut created = Vec::new();
    for (name, _, _, _, expected) in &cases {
        let request = wait_until(&requests, name, env.patience(), "its phase", |r| {
            let reached = phase(r) == *expected
                && (*expected != APIServiceExportRequestPhase::Pending
                    || r.status.as_ref().is_some_and(|s| !s.conditions.is_empty()));
            if reached {
                Ok(())
            } else {
                Err(format!("{:?}", r.status))
            }
        })
        .await?;
        let at = request
            .metadata
            .creation_timestamp
            .map(|t| t.0)
            .ok_or_else(|| anyhow::anyhow!("{name} has no creationTimestamp"))?;
        created.push((*name, at));
    }

    // Each is gone once the TTL has passed, and not before.
    let deleted = deletions
        .wait_for(cases.len(), TTL + env.patience())
        .await?;
    for (name, created_at) in created {
        let gone_at = deleted
            .get(name)
            .ok_or_else(|| anyhow::anyhow!("{name} was not deleted"))?;
        let age = gone_at.duration_since(created_at);
        // The backend counts from creationTimestamp too, so this holds to the nanosecond.
        assert!(
            age >= SignedDuration::try_from(TTL)?,
            "{name} was deleted {age:#} after its creation, before the {TTL:?} TTL"
        );
    }

    // What the Succeeded request made stays: the export and its BoundSchema.
    Api::<APIServiceExport>::namespaced(client.clone(), &ns)
        .get("cowboys")
        .await?;
    Api::<BoundSchema>::namespaced(client, &ns)
        .get("cowboys.wildwest.dev")
        .await?;
    Ok(())
}

/// When each request of a namespace disappeared, as a watch saw it.
struct Deletions {
    seen: watch::Receiver<BTreeMap<String, Timestamp>>,
    task: tokio::task::JoinHandle<()>,
}

impl Deletions {
    /// Watches `requests` from now on; returns once the watch has listed them.
    async fn watch(requests: Api<APIServiceExportRequest>) -> anyhow::Result<Self> {
        let (tx, seen) = watch::channel(BTreeMap::new());
        let (listed_tx, listed) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            let mut listed_tx = Some(listed_tx);
            let mut events = std::pin::pin!(watcher(requests, watcher::Config::default()));
            while let Some(event) = events.next().await {
                match event {
                    Ok(Event::InitDone) => {
                        if let Some(listed) = listed_tx.take() {
                            let _ = listed.send(());
                        }
                    }
                    Ok(Event::Delete(request)) => {
                        let now = Timestamp::now();
                        tx.send_modify(|seen| {
                            seen.insert(request.name_any(), now);
                        });
                    }
                    _ => {}
                }
            }
        });
        tokio::time::timeout(Duration::from_secs(30), listed)
            .await
            .map_err(|_| anyhow::anyhow!("the request watch did not list within 30 s"))??;
        Ok(Self { seen, task })
    }

    /// Waits until `count` requests were deleted; returns when each was.
    async fn wait_for(
        mut self,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<BTreeMap<String, Timestamp>> {
        let reached = tokio::time::timeout(timeout, self.seen.wait_for(|s| s.len() >= count))
            .await
            .is_ok_and(|r| r.is_ok());
        self.task.abort();
        let seen = self.seen.borrow().clone();
        anyhow::ensure!(
            reached,
            "{} of {count} requests deleted within {timeout:?}: {:?}",
            seen.len(),
            seen.keys().collect::<Vec<_>>()
        );
        Ok(seen)
    }
}
