//! The kcp kinds every workspace serves, as CRDs: apis.kcp.io (APIResourceSchema, APIExport,
//! APIBinding, APIExportEndpointSlice) and core.kcp.io LogicalCluster.
//!
//! Schemas preserve unknown fields in spec and status (kcp validates; the stand-in does not),
//! but are structural so a 1.20 apiserver accepts them; status is a subresource where kcp has one.

use serde_json::{Value, json};

/// One served version of a kcp CRD.
struct Version {
    name: &'static str,
    storage: bool,
}

struct KcpCrd {
    group: &'static str,
    plural: &'static str,
    singular: &'static str,
    kind: &'static str,
    versions: &'static [Version],
    status: bool,
    columns: &'static [(&'static str, &'static str)],
}

const CRDS: &[KcpCrd] = &[
    KcpCrd {
        group: "apis.kcp.io",
        plural: "apiresourceschemas",
        singular: "apiresourceschema",
        kind: "APIResourceSchema",
        versions: &[Version {
            name: "v1alpha1",
            storage: true,
        }],
        status: false,
        columns: &[],
    },
    KcpCrd {
        group: "apis.kcp.io",
        plural: "apiexports",
        singular: "apiexport",
        kind: "APIExport",
        versions: &[Version {
            name: "v1alpha2",
            storage: true,
        }],
        status: true,
        columns: &[],
    },
    KcpCrd {
        group: "apis.kcp.io",
        plural: "apibindings",
        singular: "apibinding",
        kind: "APIBinding",
        // kcp serves both; the shapes differ only in permission claims, which we read leniently.
        versions: &[
            Version {
                name: "v1alpha1",
                storage: true,
            },
            Version {
                name: "v1alpha2",
                storage: false,
            },
        ],
        status: true,
        columns: &[
            ("Export", ".spec.reference.export.name"),
            ("Phase", ".status.phase"),
        ],
    },
    KcpCrd {
        group: "apis.kcp.io",
        plural: "apiexportendpointslices",
        singular: "apiexportendpointslice",
        kind: "APIExportEndpointSlice",
        versions: &[Version {
            name: "v1alpha1",
            storage: true,
        }],
        status: true,
        columns: &[("Export", ".spec.export.name")],
    },
    KcpCrd {
        group: "core.kcp.io",
        plural: "logicalclusters",
        singular: "logicalcluster",
        kind: "LogicalCluster",
        versions: &[Version {
            name: "v1alpha1",
            storage: true,
        }],
        status: true,
        columns: &[("Phase", ".status.phase"), ("URL", ".status.URL")],
    },
];

fn crd(def: &KcpCrd) -> Value {
    let open_object = json!({"type": "object", "x-kubernetes-preserve-unknown-fields": true});
    let versions: Vec<Value> = def
        .versions
        .iter()
        .map(|v| {
            let mut version = json!({
                "name": v.name,
                "served": true,
                "storage": v.storage,
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {"spec": open_object, "status": open_object},
                }},
            });
            if def.status {
                version["subresources"] = json!({"status": {}});
            }
            if !def.columns.is_empty() {
                let mut cols: Vec<Value> = def
                    .columns
                    .iter()
                    .map(|(name, path)| json!({"name": name, "type": "string", "jsonPath": path}))
                    .collect();
                cols.push(json!({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}));
                version["additionalPrinterColumns"] = Value::Array(cols);
            }
            version
        })
        .collect();
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{}.{}", def.plural, def.group)},
        "spec": {
            "group": def.group,
            "scope": "Cluster",
            "names": {
                "plural": def.plural,
                "singular": def.singular,
                "kind": def.kind,
                "listKind": format!("{}List", def.kind),
                "categories": ["kcp"],
            },
            "versions": versions,
        },
    })
}

/// All kcp CRDs a workspace serves.
pub fn all() -> Vec<Value> {
    CRDS.iter().map(crd).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_crd_has_exactly_one_storage_version_and_a_structural_root() {
        let crds = all();
        assert_eq!(crds.len(), 5);
        for crd in &crds {
            let versions = crd["spec"]["versions"].as_array().unwrap();
            assert_eq!(
                versions.iter().filter(|v| v["storage"] == true).count(),
                1,
                "{}",
                crd["metadata"]["name"]
            );
            for v in versions {
                assert_eq!(v["schema"]["openAPIV3Schema"]["type"], "object");
            }
        }
        assert!(
            crds.iter()
                .any(|c| c["metadata"]["name"] == "logicalclusters.core.kcp.io")
        );
    }
}
