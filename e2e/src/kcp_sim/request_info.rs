//! What a Kubernetes API request is about (group, version, resource, namespace, name, verb),
//! parsed from its path and query like the apiserver's RequestInfoResolver.

use std::collections::BTreeMap;

/// A request for discovery, for a resource, or for something else (healthz, openapi, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiRequest {
    /// `/api`, `/apis`, `/apis/<group>`, `/api/v1`, `/apis/<group>/<version>`.
    Discovery(DiscoveryPath),
    Resource(ResourceRequest),
    /// `/version`.
    Version,
    Other,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DiscoveryPath {
    LegacyVersions,
    Groups,
    Group(String),
    GroupVersion { group: String, version: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceRequest {
    /// `""` for the core group.
    pub group: String,
    pub version: String,
    pub resource: String,
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub subresource: Option<String>,
    pub verb: Verb,
}

/// Kubernetes authorization verbs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    DeleteCollection,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }

    pub fn is_read(self) -> bool {
        matches!(self, Verb::Get | Verb::List | Verb::Watch)
    }
}

/// Subresources of namespaces that are not namespaced resources (as the apiserver's resolver).
const NAMESPACE_SUBRESOURCES: &[&str] = &["status", "finalize"];

/// Parses the query string into a map (last value wins, as Go's `url.Values.Get` first-wins is
/// irrelevant for the parameters we read).
pub fn query_params(query: Option<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.insert(percent_decode(k), percent_decode(v));
    }
    out
}

/// Minimal percent-decoding for query values (`+` is a space in form encoding).
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => match s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(b) => {
                    out.push(b);
                    i += 3;
                }
                None => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses `path` (without any `/clusters/<x>` prefix) and the request method.
pub fn parse(method: &http::Method, path: &str, query: Option<&str>) -> ApiRequest {
    let segs: Vec<&str> = path
        .trim_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .collect();
    let (group, version, rest) = match segs.as_slice() {
        ["version"] => return ApiRequest::Version,
        ["api"] => return ApiRequest::Discovery(DiscoveryPath::LegacyVersions),
        ["apis"] => return ApiRequest::Discovery(DiscoveryPath::Groups),
        ["api", v] => {
            return ApiRequest::Discovery(DiscoveryPath::GroupVersion {
                group: String::new(),
                version: (*v).to_string(),
            });
        }
        ["apis", g] => return ApiRequest::Discovery(DiscoveryPath::Group((*g).to_string())),
        ["apis", g, v] => {
            return ApiRequest::Discovery(DiscoveryPath::GroupVersion {
                group: (*g).to_string(),
                version: (*v).to_string(),
            });
        }
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return ApiRequest::Other,
    };
    let params = query_params(query);
    let is_watch = params.get("watch").is_some_and(|w| w == "1" || w == "true");

    let mut rest: &[&str] = rest;
    let mut namespace = None;
    if rest.first() == Some(&"namespaces") && rest.len() > 1 {
        namespace = Some(rest[1].to_string());
        if rest.len() > 2 && !NAMESPACE_SUBRESOURCES.contains(&rest[2]) {
            rest = &rest[2..];
        }
    }
    // `/api/v1/namespaces/<ns>` and its subresources address the namespace object itself.
    let (resource, name, subresource) = if rest.first() == Some(&"namespaces") {
        namespace = None;
        (
            "namespaces".to_string(),
            rest.get(1).map(|s| (*s).to_string()),
            rest.get(2).map(|s| (*s).to_string()),
        )
    } else {
        match rest {
            [r] => ((*r).to_string(), None, None),
            [r, n] => ((*r).to_string(), Some((*n).to_string()), None),
            [r, n, s, ..] => (
                (*r).to_string(),
                Some((*n).to_string()),
                Some((*s).to_string()),
            ),
            _ => return ApiRequest::Other,
        }
    };

    let verb = match *method {
        http::Method::GET | http::Method::HEAD if is_watch => Verb::Watch,
        http::Method::GET | http::Method::HEAD if name.is_some() => Verb::Get,
        http::Method::GET | http::Method::HEAD => Verb::List,
        http::Method::POST => Verb::Create,
        http::Method::PUT => Verb::Update,
        http::Method::PATCH => Verb::Patch,
        http::Method::DELETE if name.is_some() => Verb::Delete,
        http::Method::DELETE => Verb::DeleteCollection,
        _ => return ApiRequest::Other,
    };
    ApiRequest::Resource(ResourceRequest {
        group: group.to_string(),
        version: version.to_string(),
        resource,
        namespace,
        name,
        subresource,
        verb,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn res(method: Method, path: &str, query: Option<&str>) -> ResourceRequest {
        match parse(&method, path, query) {
            ApiRequest::Resource(r) => r,
            other => panic!("{path}: {other:?}"),
        }
    }

    #[test]
    fn discovery_paths() {
        assert_eq!(
            parse(&Method::GET, "/api", None),
            ApiRequest::Discovery(DiscoveryPath::LegacyVersions)
        );
        assert_eq!(
            parse(&Method::GET, "/apis/", None),
            ApiRequest::Discovery(DiscoveryPath::Groups)
        );
        assert_eq!(
            parse(&Method::GET, "/apis/apps", None),
            ApiRequest::Discovery(DiscoveryPath::Group("apps".into()))
        );
        assert_eq!(
            parse(&Method::GET, "/api/v1", None),
            ApiRequest::Discovery(DiscoveryPath::GroupVersion {
                group: String::new(),
                version: "v1".into()
            })
        );
        assert_eq!(parse(&Method::GET, "/version", None), ApiRequest::Version);
        assert_eq!(parse(&Method::GET, "/openapi/v2", None), ApiRequest::Other);
    }

    #[test]
    fn resource_paths_and_verbs() {
        let r = res(
            Method::GET,
            "/api/v1/configmaps",
            Some("watch=1&resourceVersion=5"),
        );
        assert_eq!(
            (r.group.as_str(), r.resource.as_str(), r.verb),
            ("", "configmaps", Verb::Watch)
        );
        let r = res(Method::GET, "/api/v1/namespaces/ns1/configmaps/cm", None);
        assert_eq!(r.namespace.as_deref(), Some("ns1"));
        assert_eq!(r.name.as_deref(), Some("cm"));
        assert_eq!(r.verb, Verb::Get);
        let r = res(Method::GET, "/api/v1/namespaces/ns1", None);
        assert_eq!(
            (
                r.resource.as_str(),
                r.name.as_deref(),
                r.namespace.as_deref()
            ),
            ("namespaces", Some("ns1"), None)
        );
        let r = res(Method::PUT, "/api/v1/namespaces/ns1/finalize", None);
        assert_eq!(
            (r.resource.as_str(), r.subresource.as_deref(), r.verb),
            ("namespaces", Some("finalize"), Verb::Update)
        );
        let r = res(
            Method::PATCH,
            "/apis/kube-bind.io/v1alpha2/namespaces/a/apiserviceexports/x/status",
            None,
        );
        assert_eq!(r.group, "kube-bind.io");
        assert_eq!(r.subresource.as_deref(), Some("status"));
        assert_eq!(r.verb, Verb::Patch);
        assert_eq!(
            res(Method::DELETE, "/api/v1/namespaces/a/secrets", None).verb,
            Verb::DeleteCollection
        );
        assert_eq!(
            res(Method::POST, "/apis/apis.kcp.io/v1alpha1/apibindings", None).verb,
            Verb::Create
        );
        assert_eq!(
            res(Method::GET, "/api/v1/namespaces", None).verb,
            Verb::List
        );
    }

    #[test]
    fn query_decoding() {
        let q = query_params(Some("labelSelector=a%3Db%2Cc&watch=true&x"));
        assert_eq!(q.get("labelSelector").map(String::as_str), Some("a=b,c"));
        assert_eq!(q.get("x").map(String::as_str), Some(""));
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("a%2"), "a%2");
    }
}
