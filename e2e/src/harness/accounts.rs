//! ServiceAccount tokens: what a test or the quickstart needs to act as an identity other than
//! admin (the controller-manager fills legacy token Secrets; 1.20 has no bound-token projection
//! outside pods).

use std::time::Duration;

use k8s_openapi::api::core::v1::{Secret, ServiceAccount};
use kube::{Api, Client};

use super::wait::{Check, WaitError, wait_for};

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

/// The token of ServiceAccount `namespace/name`, from the token Secret the controller-manager
/// creates for it.
pub async fn service_account_token(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Result<String, WaitError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    wait_for(
        format!("a token for ServiceAccount {namespace}/{name}"),
        timeout,
        || async {
            let secret = match accounts.get_opt(name).await {
                Ok(Some(account)) => account
                    .secrets
                    .and_then(|s| s.into_iter().find_map(|r| r.name)),
                Ok(None) => return Check::Pending("no ServiceAccount".into()),
                Err(err) => return Check::Pending(err.to_string()),
            };
            let Some(secret) = secret else {
                return Check::Pending("no token Secret yet".into());
            };
            match secrets.get_opt(&secret).await {
                Ok(Some(found)) => match token_of(&found) {
                    Some(token) => Check::Done(token),
                    None => Check::Pending(format!("Secret {secret} holds no token yet")),
                },
                Ok(None) => Check::Pending(format!("Secret {secret} not found")),
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
