//! The web UI in a real browser (headless Chromium) on real kcp: opened for one provider
//! workspace (`cluster_id`), it shows that workspace's templates only, binds there, and hands the
//! CLI a kubeconfig for `<kcp>/clusters/<id>` that creates the request; a foreign `redirect_url`
//! is refused. Screenshots in `target/e2e-artifacts/<test>/`.

mod controller_support;
mod login_support;
mod ui_browser_support;

use kube_bind_e2e::harness::topology::{KubeBindTopology, setup_kube_bind};
use kube_bind_e2e::harness::{
    Browser, Check, Env, EnvSpec, Workspace, apply, chromium::Chromium, cli_callback::CliCallback,
    wait_for,
};
use login_support::*;
use serde_json::json;
use tokio::sync::OnceCell;
use ui_browser_support::*;

static SPEC: EnvSpec = EnvSpec::kcp(&["kube-bind", "provider-a", "provider-b"]);
static TOPOLOGY: OnceCell<KubeBindTopology> = OnceCell::const_new();

/// Two provider workspaces, each with a template of its own: `widgets` in a, `doohickeys` in b.
async fn given_two_provider_workspaces() -> anyhow::Result<(&'static Env, &'static KubeBindTopology)>
{
    let env = Env::shared(&SPEC)?;
    let topology = TOPOLOGY
        .get_or_try_init(|| async {
            let topology =
                setup_kube_bind(env, "kube-bind", &["provider-a", "provider-b"], None).await?;
            for (provider, name) in topology.providers.iter().zip(["widgets", "doohickeys"]) {
                given_a_kcp_template(provider, name).await?;
            }
            anyhow::Ok(topology)
        })
        .await?;
    Ok((env, topology))
}

async fn given_a_kcp_template(provider: &Workspace, name: &str) -> anyhow::Result<()> {
    apply::apply(
        &provider.client().await?,
        &json!({
            "apiVersion": "kube-bind.io/v1alpha2",
            "kind": "APIServiceExportTemplate",
            "metadata": {"name": name},
            "spec": {
                "scope": "Namespaced",
                "resources": [{"group": "example.com", "resource": name, "versions": ["v1"]}],
            }
        }),
    )
    .await?;
    Ok(())
}

/// The backend serving the `kube-bind.io` endpoint slice, once it serves every provider.
async fn start_kcp_backend(env: &Env, topology: &KubeBindTopology) -> anyhow::Result<Backend> {
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
    let http = Browser::new()?;
    // The workspaces engage as their bindings become Bound: wait for /api/exports to know them.
    for provider in &topology.providers {
        let url = format!("{}/api/exports?cluster_id={}", backend.url(), provider.id);
        wait_for(
            format!("cluster {} served", provider.id),
            env.patience(),
            || async {
                match http.get(&url).await {
                    Ok(page) if page.status == 200 => Check::Done(()),
                    Ok(page) => Check::Pending(page.body),
                    Err(e) => Check::Pending(e.to_string()),
                }
            },
        )
        .await?;
    }
    Ok(backend)
}

#[tokio::test]
async fn a_person_binds_in_one_provider_workspace_through_the_ui() -> anyhow::Result<()> {
    let (env, topology) = given_two_provider_workspaces().await?;
    let a = &topology.providers[0];
    let backend = start_kcp_backend(env, topology).await?;
    let chromium =
        Chromium::start("a_person_binds_in_one_provider_workspace_through_the_ui").await?;

    println!("step: open the UI for workspace {}", a.id);
    chromium
        .goto(ui_url(&backend.url(), &[("cluster_id", &a.id)])?.as_str())
        .await?;
    let catalogue = log_in_from_the_login_page(&chromium, &env.unique("kcp-person")).await?;
    assert_eq!(
        query_of(&catalogue).get("cluster_id"),
        Some(&a.id),
        "the login comes back for the workspace: {catalogue}"
    );
    assert!(
        chromium
            .find("main#catalogue section#template-doohickeys")
            .await
            .is_err(),
        "workspace b's template is not in a's catalogue"
    );
    bind_from_the_catalogue(&chromium, "widgets").await?;

    let result = the_result_page(&chromium).await?;
    assert_requests(&result.request, "widgets");
    let kubeconfig = assert_a_kubeconfig(&result.kubeconfig)?;
    let server = kubeconfig["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap_or_default();
    assert!(
        server.ends_with(&format!("/clusters/{}", a.id)),
        "the kubeconfig targets workspace a: {server}"
    );
    assert_the_secret_holds_the_kubeconfig(a.client().await?, &result).await?;

    chromium.close().await;
    backend.stop().await
}

#[tokio::test]
async fn kubectl_bind_for_a_workspace_through_the_ui_hands_the_binding_to_the_cli()
-> anyhow::Result<()> {
    let (env, topology) = given_two_provider_workspaces().await?;
    let b = &topology.providers[1];
    let backend = start_kcp_backend(env, topology).await?;
    let mut callback = CliCallback::start().await?;
    let chromium =
        Chromium::start("kubectl_bind_for_a_workspace_through_the_ui_hands_the_binding_to_the_cli")
            .await?;
    let user = env.unique("kcp-cli");

    println!("step: the page kubectl bind opens for workspace {}", b.id);
    let opened = ui_url(
        &backend.url(),
        &[
            ("session_id", "kcp-cli-session"),
            ("redirect_url", callback.url()),
            ("cluster_id", &b.id),
        ],
    )?;
    chromium.goto(opened.as_str()).await?;
    let catalogue = log_in_from_the_login_page(&chromium, &user).await?;
    let query = query_of(&catalogue);
    assert_eq!(query.get("cluster_id"), Some(&b.id), "{catalogue}");
    assert_eq!(
        query.get("session_id").map(String::as_str),
        Some("kcp-cli-session"),
        "{catalogue}"
    );
    bind_from_the_catalogue(&chromium, "doohickeys").await?;

    println!("step: the CLI's callback gets the binding");
    let handed = callback.next(Chromium::PATIENCE).await?;
    chromium
        .wait_for("main#cli-callback", Chromium::PATIENCE)
        .await;
    chromium.screenshot("cli-callback").await?;
    assert_eq!(
        handed.get("session_id").map(String::as_str),
        Some("kcp-cli-session"),
        "{handed:?}"
    );
    let response = binding_response_of(&handed)?;
    let kubeconfig = assert_a_kubeconfig(&kubeconfig_of(&response)?)?;
    let server = kubeconfig["clusters"][0]["cluster"]["server"]
        .as_str()
        .unwrap_or_default();
    assert!(
        server.ends_with(&format!("/clusters/{}", b.id)),
        "the kubeconfig targets workspace b, never the virtual workspace: {server}"
    );
    assert_requests(&response["requests"][0], "doohickeys");

    println!("step: the CLI creates the request in workspace b with that kubeconfig");
    consumer_creates_the_request(&user, &response, None)?;

    chromium.close().await;
    backend.stop().await
}

#[tokio::test]
async fn a_foreign_redirect_url_for_a_workspace_gets_the_error_page() -> anyhow::Result<()> {
    let (env, topology) = given_two_provider_workspaces().await?;
    let backend = start_kcp_backend(env, topology).await?;
    let chromium =
        Chromium::start("a_foreign_redirect_url_for_a_workspace_gets_the_error_page").await?;
    let evil = ui_url(
        &backend.url(),
        &[
            ("session_id", "evil-session"),
            ("redirect_url", "https://evil.example/cb"),
            ("cluster_id", &topology.providers[0].id),
        ],
    )?;
    assert_a_refused_redirect(&chromium, &evil).await?;
    chromium.close().await;
    backend.stop().await
}
