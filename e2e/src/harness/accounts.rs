//! Identities other than admin: ServiceAccount tokens, from a legacy token Secret (kcp-config's
//! bootstrap has one) or the TokenRequest API, and kcp's static user [`PROVIDER_OWNER`], made
//! owner of a workspace with [`make_workspace_owner`].

use std::time::Duration;

use k8s_openapi::api::{
    authentication::v1::{TokenRequest, TokenRequestSpec},
    core::v1::{Secret, ServiceAccount},
};
use kube::{Api, Client, api::PostParams};
use serde_json::json;

use super::{
    HarnessError, apply,
    wait::{Check, WaitError, wait_for},
};

/// A static kcp user (token in `tokens.csv`, see `hack/lib/kcp.sh`) in no group but
/// `system:authenticated`: a workspace owner who is not a kcp admin. Its token:
/// [`super::Env::static_token`].
pub const PROVIDER_OWNER: &str = "provider-owner";

/// Makes `user` an owner of the workspace `admin` is an admin client of: `cluster-admin` there.
/// That also covers kcp's workspace entry check (verb `access` on the non-resource URL `/`),
/// since `cluster-admin` allows every verb on every non-resource URL.
pub async fn make_workspace_owner(admin: &Client, user: &str) -> Result<(), HarnessError> {
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": { "name": format!("owner:{user}") },
        "roleRef": { "apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin" },
        "subjects": [{ "apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user }],
    });
    apply::apply(admin, &binding).await?;
    Ok(())
}

/// The token in Secret `namespace/secret` (a `kubernetes.io/service-account-token` Secret), once
/// the controller-manager has filled it.
pub async fn secret_token(
    client: &Client,
    namespace: &str,
    secret: &str,
    timeout: Duration,
) -> Result<String, WaitError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    wait_for(
        format!("Secret {namespace}/{secret} to hold a ServiceAccount token"),
        timeout,
        || async {
            match secrets.get_opt(secret).await {
                Ok(Some(found)) => match token_of(&found) {
                    Some(token) => Check::Done(token),
                    None => Check::Pending("no token yet".into()),
                },
                Ok(None) => Check::Pending("not found".into()),
                Err(err) => Check::Pending(err.to_string()),
            }
        },
    )
    .await
}

/// A token for ServiceAccount `namespace/name` from the TokenRequest API, valid for a day (the
/// account may have just been created: a missing one is waited for).
pub async fn service_account_token(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<String, WaitError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let request = TokenRequest {
        spec: TokenRequestSpec {
            audiences: Vec::new(),
            expiration_seconds: Some(24 * 3600),
            ..Default::default()
        },
        ..Default::default()
    };
    wait_for(
        format!("a token for ServiceAccount {namespace}/{name}"),
        timeout,
        || async {
            match accounts
                .create_token_request(name, &PostParams::default(), &request)
                .await
            {
                Ok(answer) => match answer.status {
                    Some(status) if !status.token.is_empty() => Check::Done(status.token),
                    _ => Check::Pending("the TokenRequest returned no token".into()),
                },
                Err(err) => Check::Pending(err.to_string()),
            }
        },
    )
    .await
}

fn token_of(secret: &Secret) -> Option<String> {
    let token = secret.data.as_ref()?.get("token")?;
    Some(String::from_utf8_lossy(&token.0).into_owned()).filter(|t| !t.is_empty())
}
