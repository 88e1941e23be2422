//! Waiting for a condition with a timeout and a message that says what was last seen.

use std::{future::Future, time::Duration};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind};

/// The answer of one probe.
pub enum Check<T> {
    Done(T),
    /// Not yet; the text says what was seen (it ends up in the timeout message).
    Pending(String),
}

#[derive(Debug, thiserror::Error)]
#[error("timed out after {}s waiting for {what}: last {last}", timeout.as_secs())]
pub struct WaitError {
    pub what: String,
    pub timeout: Duration,
    pub last: String,
}

/// Probes every 100 ms (backing off to 1 s) until `probe` is done or `timeout` passes.
pub async fn wait_for<T, F, Fut>(
    what: impl Into<String>,
    timeout: Duration,
    mut probe: F,
) -> Result<T, WaitError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Check<T>>,
{
    let what = what.into();
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = Duration::from_millis(100);
    let mut last = "nothing seen yet".to_string();
    loop {
        match tokio::time::timeout_at(deadline, probe()).await {
            Ok(Check::Done(value)) => return Ok(value),
            Ok(Check::Pending(state)) => last = state,
            Err(_) => {
                return Err(WaitError {
                    what,
                    timeout,
                    last,
                });
            }
        }
        if tokio::time::Instant::now() + pause > deadline {
            return Err(WaitError {
                what,
                timeout,
                last,
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_secs(1));
    }
}

/// Waits until the APIBinding `name` has phase `Bound`; `workspace` is only for the message.
pub async fn binding_bound(
    client: &kube::Client,
    workspace: &str,
    name: &str,
    timeout: Duration,
) -> Result<DynamicObject, WaitError> {
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apis.kcp.io", "v1alpha1", "APIBinding"),
        "apibindings",
    );
    let api: Api<DynamicObject> = Api::all_with(client.clone(), &ar);
    wait_for(
        format!("APIBinding {workspace}/{name} to be Bound"),
        timeout,
        || async {
            match api.get_opt(name).await {
                Ok(Some(b)) => {
                    let phase = b
                        .data
                        .pointer("/status/phase")
                        .and_then(|p| p.as_str())
                        .unwrap_or("<none>")
                        .to_string();
                    if phase == "Bound" {
                        Check::Done(b)
                    } else {
                        Check::Pending(format!("phase {phase}"))
                    }
                }
                Ok(None) => Check::Pending("not found".into()),
                Err(e) => Check::Pending(format!("error {e}")),
            }
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn times_out_with_the_last_state() {
        let err = wait_for("the answer", Duration::from_millis(300), || async {
            Check::<()>::Pending("phase Binding".into())
        })
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "timed out after 0s waiting for the answer: last phase Binding"
        );
        let mut n = 0;
        let v = wait_for("n", Duration::from_secs(5), || {
            n += 1;
            let n = n;
            async move {
                if n >= 3 {
                    Check::Done(n)
                } else {
                    Check::Pending(n.to_string())
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(v, 3);
    }
}
