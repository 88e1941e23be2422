//! Login and bind on real kcp: the CLI logs in for one provider workspace (`cluster_id`), binds
//! through the APIExport virtual workspace, and the kubeconfig it gets targets that workspace
//! (`<kcp>/clusters/<id>`) and works there; a token for one workspace is refused in another.

mod controller_support;
mod login_support;

use base64::Engine as _;
use kube_bind_e2e::harness::topology::{KubeBindTopology, setup_kube_bind};
use kube_bind_e2e::harness::{Browser, Env, EnvSpec, apply};
use login_support::*;
use serde_json::{Value, json};
use tokio::sync::OnceCell;

static SPEC: EnvSpec = EnvSpec::kcp(&["kube-bind", "provider-a", "provider-b"]);
static TOPOLOGY: OnceCell<KubeBindTopology> = OnceCell::const_new();

async fn given_two_provider_workspaces() -> anyhow::Result<(&'static Env, &'static KubeBindTopology)>
{
    let env = Env::shared(&SPEC)?;
    let topology = TOPOLOGY
        .get_or_try_init(|| setup_kube_bind(env, "kube-bind", &["provider-a", "provider-b"], None))
        .await?;
    Ok((env, topology))
}

#[tokio::test]
async fn a_cli_login_for_one_workspace_binds_there_and_only_there() -> anyhow::Result<()> {
    let (env, topology) = given_two_provider_workspaces().await?;
    let (a, b) = (&topology.providers[0], &topology.providers[1]);
    apply::apply(
        &a.client().await?,
        &json!({
            "apiVersion": "kube-bind.io/v1alpha2",
            "kind": "APIServiceExportTemplate",
            "metadata": {"name": "widgets"},
            "spec": {
                "scope": "Namespaced",
                "resources": [{"group": "example.com", "resource": "widgets", "versions": ["v1"]}],
            }
        }),
    )
    .await?;
    let backend = start_backend(
        &topology.home,
        &[
            "--multicluster-runtime-provider=kcp".to_owned(),
            "--apiexport-endpointslice-name=kube-bind.io".to_owned(),
            "--schema-source=apiresourceschemas".to_owned(),
            "--consumer-scope=namespaced".to_owned(),
        ],
    )
    .await?;
    let browser = Browser::new()?;
    let user = env.unique("kcp-alice");
    // The workspaces engage as their bindings become Bound: wait for /api/exports to know them.
    for id in [&a.id, &b.id] {
        kube_bind_e2e::harness::wait_for(
            format!("cluster {id} served"),
            env.patience(),
            || async {
                match browser
                    .get(&format!("{}/api/exports?cluster_id={id}", backend.url()))
                    .await
                {
                    Ok(page) if page.status == 200 => kube_bind_e2e::harness::Check::Done(()),
                    Ok(page) => kube_bind_e2e::harness::Check::Pending(page.body),
                    Err(e) => kube_bind_e2e::harness::Check::Pending(e.to_string()),
                }
            },
        )
        .await?;
    }
    let token = cli_login_to(&browser, &backend.url(), &user, &a.id).await?;
    let auth = format!("Bearer {token}");

    let templates = browser
        .get_with(
            &format!("{}/api/templates?cluster_id={}", backend.url(), a.id),
            &[("authorization", &auth)],
        )
        .await?;
    assert_eq!(templates.status, 200, "{}", templates.body);
    assert!(templates.body.contains("\"widgets\""), "{}", templates.body);

    // The token is for workspace a: b refuses it.
    let elsewhere = browser
        .get_with(
            &format!("{}/api/ping?cluster_id={}", backend.url(), b.id),
            &[("authorization", &auth)],
        )
        .await?;
    assert_eq!(
        (elsewhere.status, error_code(&elsewhere).as_str()),
        (403, "AUTHORIZATION_FAILED")
    );

    let bound = browser
        .post_json(
            &format!("{}/api/bind?cluster_id={}", backend.url(), a.id),
            &json!({"metadata": {"name": "widgets"}, "templateRef": {"name": "widgets"}}),
            &[("authorization", &auth)],
        )
        .await?;
    assert_eq!(bound.status, 200, "{}", bound.body);
    let response: Value = serde_json::from_str(&bound.body)?;
    let kubeconfig = base64::engine::general_purpose::STANDARD
        .decode(response["kubeconfig"].as_str().unwrap_or_default())?;
    let text = String::from_utf8_lossy(&kubeconfig);
    assert!(text.contains(&format!("/clusters/{}", a.id)), "{text}");
    assert!(
        !text.contains("/services/apiexport"),
        "never the virtual workspace: {text}"
    );

    consumer_creates_the_request(&user, &response, None)?;
    backend.stop().await
}
