//! Who may bind `kube-bind.io` on real kcp: kcp's APIBinding admission checks verb `bind` on
//! `apiexports/kube-bind.io` in the home workspace for whoever creates the binding. Without
//! kcp-config's grant (`rbac-kube-bind-bind.yaml`) only kcp admins can; with it, the owner of a
//! service-provider workspace who is not a kcp admin can too.

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube_bind_apis::kcp_config;
use kube_bind_e2e::harness::{
    Check, Env, EnvSpec,
    accounts::{PROVIDER_OWNER, make_workspace_owner},
    apply,
    topology::{bind, install_kcp_config, is_bind_refused, kube_bind_binding},
    wait::binding_bound,
    wait_for,
};

static SPEC: EnvSpec = EnvSpec::kcp(&["kube-bind", "provider-owned"]);

#[tokio::test]
async fn given_a_non_admin_workspace_owner_when_it_binds_kube_bind_then_only_the_bind_grant_lets_it()
-> anyhow::Result<()> {
    let env = Env::shared(&SPEC)?;
    let patience = env.patience();

    // Given kcp-config without its bind grant (the home's own binding is admitted and bound:
    // kcp has resolved the export, so a refusal below is about permission only) ...
    let home = install_kcp_config(env, "kube-bind", &[kcp_config::BIND_GRANT_FILE]).await?;
    // ... and `provider-owner`, cluster-admin of its own workspace and nothing else.
    let provider = env.workspace("provider-owned")?;
    make_workspace_owner(&provider.client().await?, PROVIDER_OWNER).await?;
    let token = env.static_token(PROVIDER_OWNER)?;
    let owner = env
        .client_for(
            &format!("{}/clusters/{}", env.base_url, provider.path),
            &token,
        )
        .await?;
    let bindings = Api::<DynamicObject>::all_with(owner.clone(), &apibindings());
    wait_for(
        format!("{PROVIDER_OWNER} to be let into {}", provider.path),
        patience,
        || async {
            match bindings.list(&ListParams::default()).await {
                Ok(_) => Check::Done(()),
                Err(err) => Check::Pending(err.to_string()),
            }
        },
    )
    .await?;
    let in_home = env
        .client_for(&format!("{}/clusters/{}", env.base_url, home.path), &token)
        .await?;
    let home_bindings = Api::<DynamicObject>::all_with(in_home, &apibindings())
        .list(&ListParams::default())
        .await;
    assert!(
        matches!(&home_bindings, Err(kube::Error::Api(status)) if status.code == 403),
        "{PROVIDER_OWNER} is no kcp admin: the home workspace is closed to it, got {home_bindings:?}"
    );

    // When it binds kube-bind.io without the grant, then kcp refuses.
    let binding = kube_bind_binding(&home)?;
    let refused = apply::apply(&owner, &binding).await;
    assert!(
        matches!(&refused, Err(error) if is_bind_refused(error)),
        "without the grant the binding is refused with 403 \"no permission to bind\", got {refused:?}"
    );

    // When kcp-config's grant is applied, then the same binding is admitted and becomes Bound
    // (`bind` retries the 403 until kcp's RBAC caches have the new ClusterRoleBinding).
    let home_client = home.client().await?;
    for object in kcp_config::committed_file(kcp_config::BIND_GRANT_FILE)? {
        apply::apply(&home_client, &object).await?;
    }
    bind(&owner, &provider.path, &binding, patience).await?;
    binding_bound(&owner, &provider.path, kcp_config::EXPORT_NAME, patience).await?;
    Ok(())
}

fn apibindings() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apis.kcp.io", "v1alpha2", "APIBinding"),
        "apibindings",
    )
}
