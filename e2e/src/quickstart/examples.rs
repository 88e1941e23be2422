//! The example APIs under `hack/examples/`: which files go where, read at run time so an edited
//! example takes effect on the next quickstart without a rebuild.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// The example CRDs for a plain provider cluster.
pub const CRDS: &[&str] = &["crd-cowboys.yaml", "crd-sheriffs.yaml"];
/// What a kcp provider workspace gets instead of CRDs, in apply order.
pub const KCP_APIS: &[&str] = &[
    "kcp/apiresourceschema-cowboys.yaml",
    "kcp/apiresourceschema-sheriffs.yaml",
    "kcp/apiexport-cowboys-stable.yaml",
    "kcp/apibinding-cowboys-stable.yaml",
];
/// The APIBinding in [`KCP_APIS`].
pub const KCP_BINDING: &str = "cowboys-stable";
/// Templates and the collection (both modes, once the APIs are served).
pub const CATALOG: &[&str] = &[
    "template-cowboys.yaml",
    "template-sheriffs.yaml",
    "collection.yaml",
];
/// The example resources, as (group, version, plural).
pub const RESOURCES: &[(&str, &str, &str)] = &[
    ("wildwest.dev", "v1alpha1", "cowboys"),
    ("wildwest.dev", "v1alpha1", "sheriffs"),
];

#[derive(Debug, thiserror::Error)]
pub enum ExamplesError {
    #[error("cannot read example {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("example {path} is not valid YAML: {message}")]
    Yaml { path: PathBuf, message: String },
}

/// The directory holding the examples (`hack/examples`).
#[derive(Clone, Debug)]
pub struct Examples {
    dir: PathBuf,
}

impl Examples {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Examples { dir: dir.into() }
    }

    /// `hack/examples` of this repository.
    pub fn in_repo() -> Self {
        Examples::new(crate::harness::paths::repo_root().join("hack/examples"))
    }

    /// Every object of `files`, in order (documents of one file in file order).
    pub fn load(&self, files: &[&str]) -> Result<Vec<Value>, ExamplesError> {
        let mut objects = Vec::new();
        for file in files {
            objects.extend(self.load_file(&self.dir.join(file))?);
        }
        Ok(objects)
    }

    fn load_file(&self, path: &Path) -> Result<Vec<Value>, ExamplesError> {
        let text = std::fs::read_to_string(path).map_err(|source| ExamplesError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&text).map_err(|e| ExamplesError::Yaml {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
    }
}

/// `kind/name` of an object, for messages.
pub fn describe(object: &Value) -> String {
    format!(
        "{}/{}",
        object["kind"].as_str().unwrap_or("?"),
        object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("?")
    )
}

#[cfg(test)]
mod tests {
    use kube_bind_apis::{APIServiceExportTemplate, Collection, kcp_config, strict};

    use super::*;

    fn examples() -> Examples {
        Examples::in_repo()
    }

    fn one(file: &str) -> Value {
        let mut objects = examples().load(&[file]).unwrap();
        assert_eq!(objects.len(), 1, "{file} holds one object");
        objects.remove(0)
    }

    #[test]
    fn every_example_file_is_listed_and_parses() {
        let listed: Vec<&str> = [CRDS, KCP_APIS, CATALOG].concat();
        for file in &listed {
            assert!(!examples().load(&[file]).unwrap().is_empty(), "{file}");
        }
        for file in ["cowboy.yaml", "sheriff.yaml"] {
            assert_eq!(examples().load(&[file]).unwrap().len(), 4, "{file}");
        }
    }

    #[test]
    fn templates_and_collection_decode_strictly_into_the_kube_bind_types() {
        let templates: Vec<APIServiceExportTemplate> =
            ["template-cowboys.yaml", "template-sheriffs.yaml"]
                .iter()
                .map(|f| strict::from_value(one(f)).unwrap_or_else(|e| panic!("{f}: {e}")))
                .collect();
        let collection: Collection = strict::from_value(one("collection.yaml")).unwrap();
        let names: Vec<_> = templates
            .iter()
            .map(|t| t.metadata.name.clone().unwrap())
            .collect();
        assert_eq!(names, ["cowboys", "sheriffs"]);
        let listed: Vec<_> = collection
            .spec
            .templates
            .iter()
            .map(|t| t.name.clone())
            .collect();
        assert_eq!(listed, names, "the collection offers both templates");
        for template in &templates {
            for resource in &template.spec.resources {
                assert!(
                    RESOURCES.iter().any(|(g, v, r)| resource.group == *g
                        && resource.resource == *r
                        && resource.versions.iter().any(|x| x == v)),
                    "{resource:?} is an example resource"
                );
            }
            assert_eq!(template.spec.permission_claims.len(), 1);
        }
    }

    #[test]
    fn each_apiresourceschema_is_its_crd_and_the_export_names_them() {
        let export = one("kcp/apiexport-cowboys-stable.yaml");
        for (file, plural) in [
            ("crd-cowboys.yaml", "cowboys"),
            ("crd-sheriffs.yaml", "sheriffs"),
        ] {
            let crd = one(file);
            let schema = one(&format!("kcp/apiresourceschema-{plural}.yaml"));
            assert_eq!(
                schema["spec"],
                kcp_config::schema_spec_from_crd(&crd),
                "kcp/apiresourceschema-{plural}.yaml must be {file} as a schema"
            );
            for object in [&crd, &schema] {
                assert_eq!(
                    object.pointer("/metadata/labels/kube-bind.io~1exported"),
                    Some(&Value::from("true")),
                    "{} is labelled exported",
                    describe(object)
                );
            }
            let exported = export["spec"]["resources"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == plural)
                .unwrap_or_else(|| panic!("cowboys-stable exports {plural}"));
            assert_eq!(exported["schema"], schema["metadata"]["name"]);
            assert_eq!(exported["group"], crd["spec"]["group"]);
        }
        let binding = one("kcp/apibinding-cowboys-stable.yaml");
        assert_eq!(binding["metadata"]["name"], KCP_BINDING);
        assert_eq!(
            binding["spec"]["reference"]["export"]["name"],
            export["metadata"]["name"]
        );
    }

    #[test]
    fn secrets_are_claimed_in_the_core_group_written_out() {
        for file in ["template-cowboys.yaml", "template-sheriffs.yaml"] {
            let claim = &one(file)["spec"]["permissionClaims"][0];
            assert_eq!(claim["resource"], "secrets", "{file}");
            assert_eq!(
                claim["group"], "",
                "{file}: group \"\" as upstream writes it"
            );
        }
    }

    #[test]
    fn scopes_are_one_namespaced_one_cluster() {
        assert_eq!(one("crd-cowboys.yaml")["spec"]["scope"], "Namespaced");
        assert_eq!(one("crd-sheriffs.yaml")["spec"]["scope"], "Cluster");
    }
}
