//! How the runtime names and decodes objects: [`ObjectKey`] (cluster, namespace, name) and
//! [`Tolerant`] decoding, which keeps one malformed object from failing a watch shared by every
//! cluster.

use std::any::TypeId;
use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use kube::api::ObjectMeta;
use kube::core::NamespaceResourceScope;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer};

use crate::provider::ClusterId;

/// Where an object lives: its logical cluster, namespace (None if cluster-scoped) and name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    pub cluster: ClusterId,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectKey {
    pub fn new(cluster: ClusterId, namespace: Option<String>, name: impl Into<String>) -> Self {
        Self {
            cluster,
            namespace,
            name: name.into(),
        }
    }

    /// The key of `meta` in `cluster`.
    pub fn from_meta(cluster: ClusterId, meta: &ObjectMeta) -> Self {
        Self {
            cluster,
            namespace: meta.namespace.clone(),
            name: meta.name.clone().unwrap_or_default(),
        }
    }

    /// The (namespace, name) part, as caches index it within a cluster.
    pub(crate) fn local(&self) -> LocalName {
        (self.namespace.clone(), self.name.clone())
    }
}

/// (namespace, name) within one cluster.
pub(crate) type LocalName = (Option<String>, String);

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cluster = if self.cluster.as_str().is_empty() {
            "-"
        } else {
            self.cluster.as_str()
        };
        match &self.namespace {
            Some(ns) => write!(f, "{cluster}|{ns}/{}", self.name),
            None => write!(f, "{cluster}|{}", self.name),
        }
    }
}

impl fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

/// Whether objects of kind `K` live in namespaces.
pub fn is_namespaced<K: Resource>() -> bool
where
    K::Scope: 'static,
{
    TypeId::of::<K::Scope>() == TypeId::of::<NamespaceResourceScope>()
}

/// An object that did not decode into its Rust type, with what could be read of it.
#[derive(Debug, Clone)]
pub struct Malformed {
    pub metadata: ObjectMeta,
    /// Why decoding failed, naming the field.
    pub error: String,
}

/// A watched object: decoded, or kept as [`Malformed`] so it can be reported on that object
/// alone instead of failing the watch every cluster shares.
#[derive(Debug, Clone)]
pub enum Tolerant<K> {
    Valid(K),
    Malformed(Box<Malformed>),
}

impl<'de, K: DeserializeOwned> Deserialize<'de> for Tolerant<K> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(deserializer)?;
        match K::deserialize(&value) {
            Ok(object) => Ok(Self::Valid(object)),
            Err(err) => {
                // Metadata is what identifies the object; without it nothing can be reported.
                let metadata = value
                    .get("metadata")
                    .map(ObjectMeta::deserialize)
                    .transpose()
                    .map_err(serde::de::Error::custom)?
                    .unwrap_or_default();
                Ok(Self::Malformed(Box::new(Malformed {
                    metadata,
                    error: err.to_string(),
                })))
            }
        }
    }
}

impl<K: Resource<DynamicType = ()>> Resource for Tolerant<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(dt: &()) -> Cow<'_, str> {
        K::kind(dt)
    }
    fn group(dt: &()) -> Cow<'_, str> {
        K::group(dt)
    }
    fn version(dt: &()) -> Cow<'_, str> {
        K::version(dt)
    }
    fn plural(dt: &()) -> Cow<'_, str> {
        K::plural(dt)
    }
    fn meta(&self) -> &ObjectMeta {
        match self {
            Self::Valid(object) => object.meta(),
            Self::Malformed(malformed) => &malformed.metadata,
        }
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Self::Valid(object) => object.meta_mut(),
            Self::Malformed(malformed) => &mut malformed.metadata,
        }
    }
}

/// What a cache holds for a key.
#[derive(Debug)]
pub enum Entry<K> {
    Valid(Arc<K>),
    Malformed(Arc<Malformed>),
}

impl<K> Clone for Entry<K> {
    fn clone(&self) -> Self {
        match self {
            Self::Valid(object) => Self::Valid(object.clone()),
            Self::Malformed(malformed) => Self::Malformed(malformed.clone()),
        }
    }
}

impl<K: Resource> Entry<K> {
    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Self::Valid(object) => object.meta(),
            Self::Malformed(malformed) => &malformed.metadata,
        }
    }

    pub fn valid(&self) -> Option<&Arc<K>> {
        match self {
            Self::Valid(object) => Some(object),
            Self::Malformed(_) => None,
        }
    }

    pub(crate) fn resource_version(&self) -> Option<String> {
        match self {
            Self::Valid(object) => object.resource_version(),
            Self::Malformed(malformed) => malformed.metadata.resource_version.clone(),
        }
    }
}

impl<K> From<Tolerant<K>> for Entry<K> {
    fn from(object: Tolerant<K>) -> Self {
        match object {
            Tolerant::Valid(object) => Self::Valid(Arc::new(object)),
            Tolerant::Malformed(malformed) => Self::Malformed(Arc::from(malformed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;
    use k8s_openapi::api::core::v1::Namespace;

    use super::*;

    #[test]
    fn a_wrongly_typed_field_is_kept_as_malformed_with_its_metadata() {
        let json = r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x","namespace":"ns","resourceVersion":"7"},"data":{"k":42}}"#;
        let decoded: Tolerant<ConfigMap> = serde_json::from_str(json).unwrap();
        let Tolerant::Malformed(malformed) = decoded else {
            panic!("should be malformed")
        };
        assert_eq!(malformed.metadata.name.as_deref(), Some("x"));
        assert!(
            malformed.error.contains("invalid type"),
            "{}",
            malformed.error
        );

        let good =
            r#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"},"data":{"k":"v"}}"#;
        assert!(matches!(
            serde_json::from_str::<Tolerant<ConfigMap>>(good).unwrap(),
            Tolerant::Valid(_)
        ));
    }

    #[test]
    fn scope_is_known_per_kind() {
        assert!(is_namespaced::<ConfigMap>());
        assert!(!is_namespaced::<Namespace>());
    }

    #[test]
    fn keys_print_cluster_namespace_and_name() {
        let key = ObjectKey::new(ClusterId::new("abc"), Some("ns".into()), "n");
        assert_eq!(key.to_string(), "abc|ns/n");
        assert_eq!(
            ObjectKey::new(ClusterId::single(), None, "n").to_string(),
            "-|n"
        );
    }
}
