//! Why provisioning a consumer's access failed.

use std::time::Duration;

use kube_bind_apis::keys::IDENTITY_ANNOTATION;

use super::kubeconfig::RenderError;
use super::server_url::ServerUrlError;
use crate::provider::ClusterId;

/// Provisioning failed; nothing written so far is undone (a retry picks it up again).
#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// A request to the cluster failed; [`ProvisionError::kube_error`] tells how.
    #[error(
        "cannot {action} in cluster {cluster:?}: {source}; check that the cluster answers and that \
         the backend may do this there (kcp: the kube-bind.io APIExport claims the resource and the \
         provider workspace accepted the claim), then bind again"
    )]
    Api {
        cluster: ClusterId,
        action: String,
        #[source]
        source: kube::Error,
    },
    #[error(
        "namespaces {} in cluster {cluster:?} all belong to identity {identity}; delete all but one \
         of them (or remove their {IDENTITY_ANNOTATION} annotation), then bind again",
        namespaces.join(", ")
    )]
    AmbiguousNamespace {
        cluster: ClusterId,
        identity: String,
        namespaces: Vec<String>,
    },
    #[error(
        "the API server of cluster {cluster:?} created a namespace for identity {identity} but \
         returned no name; bind again"
    )]
    UnnamedNamespace {
        cluster: ClusterId,
        identity: String,
    },
    #[error(
        "Secret {namespace}/{secret} in cluster {cluster:?} still has no token and ca.crt after \
         {waited:?}: the token controller did not fill it; check that the controller-manager runs \
         its serviceaccount-token controller, then bind again"
    )]
    TokenNotIssued {
        cluster: ClusterId,
        namespace: String,
        secret: String,
        waited: Duration,
    },
    #[error(
        "the token in Secret {namespace}/{secret} of cluster {cluster:?} is not text; delete that \
         Secret so the token controller issues a new one, then bind again"
    )]
    TokenNotText {
        cluster: ClusterId,
        namespace: String,
        secret: String,
    },
    #[error("cluster {cluster:?}: {source}")]
    ServerUrl {
        cluster: ClusterId,
        #[source]
        source: ServerUrlError,
    },
    #[error(transparent)]
    Render(#[from] RenderError),
}

impl ProvisionError {
    /// The API server's answer behind this error, if it came from one, so that HTTP can map
    /// 404/401/403/400 as upstream does (anything else is a 500).
    pub fn kube_error(&self) -> Option<&kube::Error> {
        match self {
            Self::Api { source, .. } => Some(source),
            _ => None,
        }
    }
}
