//! The `server` of a consumer kubeconfig (reference §3.1 step 6, §5.1): where the consumer's
//! konnector reaches its cluster namespace with the `kube-binder` token.
//!
//! NOTE: in kcp mode the backend writes through the APIExport virtual workspace, but the
//! consumer must never get a virtual-workspace URL: the token is a ServiceAccount token of the
//! provider workspace, valid at `/clusters/<id>` of the front (or shard), not in the VW.

use crate::provider::EndpointKind;

/// Why no kubeconfig server could be derived.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerUrlError {
    #[error(
        "invalid apiexport URL format: {url} is not https://<host>/services/apiexport/<cluster>/<export>/clusters/<id>; \
         check that --apiexport-endpointslice-name names the APIExportEndpointSlice of the kube-bind.io APIExport"
    )]
    InvalidApiExportUrl { url: String },
}

/// The kubeconfig `server` for a cluster reached at `cluster_url` (what
/// [`crate::provider::Endpoint::cluster_url`] returns) through an endpoint of `kind`.
///
/// - `Direct` (kubernetes provider): `external_address` as it is, else `cluster_url`.
/// - `VirtualWorkspace` (kcp): `cluster_url` must be
///   `<scheme>://<vw-host>/services/apiexport/<export cluster>/<export>/clusters/<id>` (at least
///   six path segments, the fifth `clusters`); the result is `external_address` (else the VW's
///   scheme and host) followed by `/clusters/<id>`.
pub fn kubeconfig_server(
    kind: EndpointKind,
    cluster_url: &str,
    external_address: Option<&str>,
) -> Result<String, ServerUrlError> {
    match kind {
        EndpointKind::Direct => Ok(external_address.unwrap_or(cluster_url).to_owned()),
        EndpointKind::VirtualWorkspace => {
            let invalid = || ServerUrlError::InvalidApiExportUrl {
                url: cluster_url.to_owned(),
            };
            let uri: http::Uri = cluster_url.parse().map_err(|_| invalid())?;
            let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
                return Err(invalid());
            };
            let segments: Vec<&str> = uri.path().trim_matches('/').split('/').collect();
            let id = match segments.as_slice() {
                [_, _, _, _, "clusters", id, ..] if !id.is_empty() => *id,
                _ => return Err(invalid()),
            };
            let base = match external_address {
                Some(address) => address.trim_end_matches('/').to_owned(),
                None => format!("{scheme}://{authority}"),
            };
            Ok(format!("{base}/clusters/{id}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VW: &str =
        "https://kcp.example:6443/services/apiexport/1abc/kube-bind.io/clusters/2ocmmccjkme8bof4";

    #[test]
    fn direct_uses_the_external_address_as_it_is_else_the_rest_host() {
        let cases = [
            (
                "rest host",
                "https://10.0.0.1:6443",
                None,
                "https://10.0.0.1:6443",
            ),
            (
                "rest host with trailing slash kept",
                "https://10.0.0.1:6443/",
                None,
                "https://10.0.0.1:6443/",
            ),
            (
                "external address wins, untouched",
                "https://10.0.0.1:6443",
                Some("https://api.example.com:443/prefix/"),
                "https://api.example.com:443/prefix/",
            ),
        ];
        for (name, url, external, want) in cases {
            assert_eq!(
                kubeconfig_server(EndpointKind::Direct, url, external).as_deref(),
                Ok(want),
                "{name}"
            );
        }
    }

    #[test]
    fn virtual_workspace_becomes_the_workspace_under_clusters() {
        let cases = [
            (
                "vw host",
                VW,
                None,
                "https://kcp.example:6443/clusters/2ocmmccjkme8bof4",
            ),
            (
                "trailing slash",
                "https://kcp.example:6443/services/apiexport/1abc/kube-bind.io/clusters/2ocmmccjkme8bof4/",
                None,
                "https://kcp.example:6443/clusters/2ocmmccjkme8bof4",
            ),
            (
                "external address with port",
                VW,
                Some("https://front.example:8443"),
                "https://front.example:8443/clusters/2ocmmccjkme8bof4",
            ),
            (
                "external address with a path and a trailing slash",
                VW,
                Some("https://front.example:8443/kcp/"),
                "https://front.example:8443/kcp/clusters/2ocmmccjkme8bof4",
            ),
            (
                "plain http VW keeps its scheme",
                "http://127.0.0.1:6443/services/apiexport/x/y/clusters/abc",
                None,
                "http://127.0.0.1:6443/clusters/abc",
            ),
        ];
        for (name, url, external, want) in cases {
            assert_eq!(
                kubeconfig_server(EndpointKind::VirtualWorkspace, url, external).as_deref(),
                Ok(want),
                "{name}"
            );
        }
    }

    #[test]
    fn malformed_virtual_workspace_urls_are_refused() {
        for url in [
            "https://kcp.example:6443",
            "https://kcp.example:6443/services/apiexport/1abc/kube-bind.io",
            "https://kcp.example:6443/services/apiexport/1abc/kube-bind.io/clusters",
            "https://kcp.example:6443/services/apiexport/1abc/kube-bind.io/clusters/",
            "https://kcp.example:6443/services/apiexport/1abc/kube-bind.io/workspaces/abc",
            "https://kcp.example:6443/clusters/abc",
            "/services/apiexport/1abc/kube-bind.io/clusters/abc",
            "not a url",
        ] {
            let err = kubeconfig_server(EndpointKind::VirtualWorkspace, url, None).unwrap_err();
            assert_eq!(
                err,
                ServerUrlError::InvalidApiExportUrl {
                    url: url.to_owned()
                },
                "{url}"
            );
            assert!(err.to_string().starts_with("invalid apiexport URL format"));
        }
    }
}
