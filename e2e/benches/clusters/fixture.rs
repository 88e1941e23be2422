//! What the synthetic kcp serves in one configuration ([`Shape`]): per shard (virtual
//! workspace), APIBindings, ConfigMaps and Namespaces as seen through a wildcard (`/clusters/*`)
//! request, rendered once into LIST pages.
//!
//! Objects are byte-for-byte the same size in a [`Shape::Clusters`] run and in its
//! [`Shape::ObjectsOnly`] control (same names, same 16-character `kcp.io/cluster` value, same
//! data, same shards); only the number of distinct clusters differs, so the RSS difference is
//! what the clusters themselves cost.
//!
//! NOTE: a logical cluster lives on one shard, as in kcp: cluster `i` (and namespace `i`) is
//! served by shard `i % shards`, so each shard serves its own share of bindings and objects.

use bytes::Bytes;
use serde_json::{Value, json};

/// ConfigMaps in each namespace.
pub const CONFIG_MAPS_PER_NAMESPACE: usize = 5;
/// The page size the kube watcher asks for (`limit=500`, as client-go); other limits get
/// everything in one body, as a server may.
pub const PAGE_SIZE: usize = 500;
/// The annotation kcp puts on every object of a wildcard request.
const CLUSTER_ANNOTATION: &str = "kcp.io/cluster";

/// One measured configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// The slice and one empty virtual workspace: the process's fixed cost.
    Baseline,
    /// `n` bound clusters spread over `shards` virtual workspaces, each cluster with one
    /// namespace holding [`CONFIG_MAPS_PER_NAMESPACE`] ConfigMaps.
    Clusters { n: usize, shards: usize },
    /// The control for `Clusters { n, shards }`: the same namespaces and ConfigMaps on the same
    /// shards, in one cluster per shard.
    ObjectsOnly { n: usize, shards: usize },
}

impl Shape {
    pub fn label(self) -> String {
        let on = |shards: usize| match shards {
            1 => String::new(),
            s => format!(", {s} shards"),
        };
        match self {
            Self::Baseline => "baseline".to_owned(),
            Self::Clusters { n, shards } => format!("{n} clusters{}", on(shards)),
            Self::ObjectsOnly { n, shards: 1 } => format!("objects of {n}, 1 cluster"),
            Self::ObjectsOnly { n, shards } => format!("objects of {n}{}", on(shards)),
        }
    }

    /// Virtual workspaces the slice lists.
    pub fn shards(self) -> usize {
        match self {
            Self::Baseline => 1,
            Self::Clusters { shards, .. } | Self::ObjectsOnly { shards, .. } => shards,
        }
    }

    /// Clusters the provider should engage.
    pub fn clusters(self) -> usize {
        match self {
            Self::Baseline => 0,
            Self::Clusters { n, .. } => n,
            Self::ObjectsOnly { shards, .. } => shards,
        }
    }

    pub fn namespaces(self) -> usize {
        match self {
            Self::Baseline => 0,
            Self::Clusters { n, .. } | Self::ObjectsOnly { n, .. } => n,
        }
    }

    pub fn config_maps(self) -> usize {
        self.namespaces() * CONFIG_MAPS_PER_NAMESPACE
    }

    /// The cluster namespace `i` lives in (on shard `cluster % shards`).
    fn cluster_of_namespace(self, i: usize) -> usize {
        match self {
            Self::Clusters { .. } => i,
            Self::Baseline | Self::ObjectsOnly { .. } => i % self.shards(),
        }
    }
}

/// Everything the virtual workspaces serve in one configuration.
pub struct Fixture {
    /// One per virtual workspace the slice lists, in the slice's order.
    pub shards: Vec<ShardListings>,
}

/// What one shard's virtual workspace serves.
pub struct ShardListings {
    pub bindings: Listing,
    pub config_maps: Listing,
    pub namespaces: Listing,
}

/// One shard's objects while they are built.
#[derive(Default)]
struct ShardObjects {
    bindings: Vec<Value>,
    config_maps: Vec<Value>,
    namespaces: Vec<Value>,
}

impl Fixture {
    pub fn build(shape: Shape) -> Self {
        let shards = shape.shards();
        let shard_of = |cluster: usize| cluster % shards;
        let mut versions = ResourceVersions::default();
        let cluster_ids: Vec<String> = (0..shape.clusters()).map(logical_cluster_id).collect();
        let mut objects: Vec<ShardObjects> = (0..shards).map(|_| ShardObjects::default()).collect();

        for (i, cluster) in cluster_ids.iter().enumerate() {
            objects[shard_of(i)]
                .bindings
                .push(binding(cluster, versions.next()));
        }
        for i in 0..shape.namespaces() {
            let c = shape.cluster_of_namespace(i);
            let (cluster, shard) = (&cluster_ids[c], &mut objects[shard_of(c)]);
            let ns = format!("kube-bind-{i:05}");
            shard
                .namespaces
                .push(namespace(cluster, &ns, versions.next()));
            for j in 0..CONFIG_MAPS_PER_NAMESPACE {
                shard
                    .config_maps
                    .push(config_map(cluster, &ns, j, versions.next()));
            }
        }
        let rv = versions.next();
        let render = |shard: ShardObjects| ShardListings {
            bindings: Listing::render("apis.kcp.io/v1alpha1", "APIBinding", &rv, &shard.bindings),
            config_maps: Listing::render("v1", "ConfigMap", &rv, &shard.config_maps),
            namespaces: Listing::render("v1", "Namespace", &rv, &shard.namespaces),
        };
        Self {
            shards: objects.into_iter().map(render).collect(),
        }
    }
}

/// One resource's LIST snapshot, pre-rendered, and the BOOKMARK its watches send.
pub struct Listing {
    /// Pages of [`PAGE_SIZE`] items; every page but the last carries a `continue` token.
    pages: Vec<Bytes>,
    /// All items in one body, for any other `limit`.
    whole: Bytes,
    /// One watch-event line.
    bookmark: Bytes,
}

impl Listing {
    pub fn render(api_version: &str, kind: &str, resource_version: &str, items: &[Value]) -> Self {
        let list_kind = format!("{kind}List");
        let body = |items: &[Value], next: Option<String>| {
            let mut metadata = json!({ "resourceVersion": resource_version });
            if let Some(next) = next {
                metadata["continue"] = Value::String(next);
            }
            let list = json!({
                "apiVersion": api_version,
                "kind": list_kind,
                "metadata": metadata,
                "items": items,
            });
            Bytes::from(list.to_string())
        };
        let chunks: Vec<&[Value]> = items.chunks(PAGE_SIZE).collect();
        let pages = if chunks.is_empty() {
            vec![body(&[], None)]
        } else {
            chunks
                .iter()
                .enumerate()
                .map(|(i, chunk)| body(chunk, (i + 1 < chunks.len()).then(|| page_token(i + 1))))
                .collect()
        };
        let bookmark = json!({
            "type": "BOOKMARK",
            "object": {
                "apiVersion": api_version,
                "kind": kind,
                "metadata": { "resourceVersion": resource_version },
            },
        });
        Self {
            pages,
            whole: body(items, None),
            bookmark: Bytes::from(format!("{bookmark}\n")),
        }
    }

    /// The LIST body for `limit` and `continue`, or `None` for a token this listing never gave.
    pub fn page(&self, limit: Option<usize>, token: Option<&str>) -> Option<Bytes> {
        match (limit, token) {
            (Some(PAGE_SIZE), None) => self.pages.first().cloned(),
            (Some(PAGE_SIZE), Some(token)) => {
                let index: usize = token.strip_prefix("page-")?.parse().ok()?;
                self.pages.get(index).cloned()
            }
            (_, None) => Some(self.whole.clone()),
            (_, Some(_)) => None,
        }
    }

    pub fn bookmark(&self) -> Bytes {
        self.bookmark.clone()
    }
}

fn page_token(index: usize) -> String {
    format!("page-{index}")
}

/// Hands out increasing resourceVersions.
#[derive(Default)]
struct ResourceVersions(u64);

impl ResourceVersions {
    fn next(&mut self) -> String {
        self.0 += 1;
        self.0.to_string()
    }
}

/// A kcp-shaped logical cluster id: 16 base36 characters, deterministic in `i`.
pub fn logical_cluster_id(i: usize) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut x = u128::from(splitmix64(i as u64)) << 64 | u128::from(splitmix64(!(i as u64)));
    (0..16)
        .map(|_| {
            let digit = DIGITS[(x % 36) as usize];
            x /= 36;
            char::from(digit)
        })
        .collect()
}

fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn uid(resource_version: &str) -> String {
    let n: u64 = resource_version.parse().unwrap_or_default();
    format!("00000000-0000-4000-8000-{n:012x}")
}

fn metadata(cluster: &str, namespace: Option<&str>, name: &str, resource_version: &str) -> Value {
    let mut meta = json!({
        "name": name,
        "uid": uid(resource_version),
        "resourceVersion": resource_version,
        "creationTimestamp": "2025-01-01T00:00:00Z",
        "annotations": { CLUSTER_ANNOTATION: cluster },
    });
    if let Some(namespace) = namespace {
        meta["namespace"] = Value::String(namespace.to_owned());
    }
    meta
}

fn binding(cluster: &str, resource_version: String) -> Value {
    json!({
        "apiVersion": "apis.kcp.io/v1alpha1",
        "kind": "APIBinding",
        "metadata": metadata(cluster, None, "kube-bind.io", &resource_version),
        "spec": { "reference": { "export": { "path": "root:bench", "name": "kube-bind.io" } } },
        "status": { "phase": "Bound", "apiExportClusterName": logical_cluster_id(usize::MAX) },
    })
}

fn namespace(cluster: &str, name: &str, resource_version: String) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": metadata(cluster, None, name, &resource_version),
        "spec": { "finalizers": ["kubernetes"] },
        "status": { "phase": "Active" },
    })
}

fn config_map(cluster: &str, namespace: &str, index: usize, resource_version: String) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(cluster, Some(namespace), &format!("config-{index}"), &resource_version),
        "data": { "settings": format!("replicas: 3\nlog-level: info\nslot: {index}\n") },
    })
}
