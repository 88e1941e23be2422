//! Helpers shared by the e2e tests: recording what a kube-rs watcher sees.

#![allow(dead_code)]

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::{
    Resource, ResourceExt,
    api::Api,
    runtime::watcher::{self, Event},
};
use kube_bind_e2e::harness::{Check, Env, wait_for};

/// One thing a watcher reported.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// `Apply`, `Delete`, `InitApply`, `Init`, `InitDone`.
    pub what: &'static str,
    /// The `kcp.io/cluster` annotation.
    pub cluster: String,
    pub namespace: String,
    pub name: String,
}

/// Runs a kube-rs `watcher` in the background and records every event.
pub struct Recorder {
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Recorder {
    pub fn start<K>(api: Api<K>, config: watcher::Config) -> Recorder
    where
        K: Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    {
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            let mut stream = watcher::watcher(api, config).boxed();
            while let Some(event) = stream.next().await {
                let record = |what: &'static str, obj: Option<&K>| Seen {
                    what,
                    cluster: obj
                        .and_then(|o| o.annotations().get("kcp.io/cluster").cloned())
                        .unwrap_or_default(),
                    namespace: obj.and_then(|o| o.namespace()).unwrap_or_default(),
                    name: obj.map(|o| o.name_any()).unwrap_or_default(),
                };
                let entry = match &event {
                    Ok(Event::Apply(o)) => record("Apply", Some(o)),
                    Ok(Event::Delete(o)) => record("Delete", Some(o)),
                    Ok(Event::InitApply(o)) => record("InitApply", Some(o)),
                    Ok(Event::Init) => record("Init", None),
                    Ok(Event::InitDone) => record("InitDone", None),
                    Err(e) => Seen {
                        what: "Error",
                        cluster: String::new(),
                        namespace: String::new(),
                        name: e.to_string(),
                    },
                };
                sink.lock().unwrap().push(entry);
            }
        });
        Recorder { seen, task }
    }

    pub fn snapshot(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `done` holds for what was seen so far.
    pub async fn wait(&self, what: &str, timeout: Duration, done: impl Fn(&[Seen]) -> bool) {
        let result = wait_for(what, timeout, || {
            let seen = self.snapshot();
            let ok = done(&seen);
            async move {
                if ok {
                    Check::Done(())
                } else {
                    let tail: Vec<String> = seen
                        .iter()
                        .rev()
                        .take(6)
                        .map(|s| format!("{} {}/{}@{}", s.what, s.namespace, s.name, s.cluster))
                        .collect();
                    Check::Pending(format!(
                        "{} events, latest: {}",
                        seen.len(),
                        tail.join(", ")
                    ))
                }
            }
        })
        .await;
        if let Err(e) = result {
            panic!("{e}");
        }
    }

    /// How often an object (name) was reported as present (Apply or InitApply).
    pub fn count(&self, what: &[&str], cluster: &str, name: &str) -> usize {
        self.snapshot()
            .iter()
            .filter(|s| what.contains(&s.what) && s.cluster == cluster && s.name == name)
            .count()
    }

    /// Waits until every (name, cluster) of `expected` was seen, then checks each was reported
    /// as present exactly once and the watch was listed only once (no relist).
    pub async fn expect_each_once_without_relist(
        &self,
        what: &str,
        timeout: Duration,
        expected: &[(String, String)],
    ) {
        self.wait(what, timeout, |seen| {
            expected
                .iter()
                .all(|(n, c)| seen.iter().any(|e| &e.name == n && &e.cluster == c))
        })
        .await;
        for (name, cluster) in expected {
            assert_eq!(
                self.count(&["Apply", "InitApply"], cluster, name),
                1,
                "{name} in {cluster}: {:?}",
                self.snapshot()
            );
        }
        let seen = self.snapshot();
        assert_eq!(
            seen.iter().filter(|e| e.what == "Init").count(),
            1,
            "the client relisted: {seen:?}"
        );
    }
}

/// Records the ConfigMaps labelled `e2e=<label>` that the wildcard URL of the virtual workspace
/// at `endpoint_url` shows (as admin).
pub async fn record_labelled_configmaps(
    env: &Env,
    endpoint_url: &str,
    label: &str,
) -> anyhow::Result<Recorder> {
    let vw = env
        .client_for(&format!("{endpoint_url}/clusters/*"), &env.admin_token)
        .await?;
    Ok(Recorder::start(
        Api::<ConfigMap>::all(vw),
        watcher::Config::default().labels(&format!("e2e={label}")),
    ))
}
