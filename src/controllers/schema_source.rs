//! The provider's exported schemas (`--schema-source`): CRDs or kcp APIResourceSchemas labelled
//! `kube-bind.io/exported=true`, cached by that label only so memory does not grow with every
//! CRD of every workspace.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::ResourceExt as _;
use kube_bind_apis::kcp::APIResourceSchema;
use kube_bind_apis::keys::EXPORTED_LABEL;
use kube_bind_apis::{BoundSchemaSpec, GroupResource, InformerScope};

use crate::options::SchemaSource;
use crate::provider::ClusterId;
use crate::resources::bound_schema::{spec_from_api_resource_schema, spec_from_crd};
use crate::runtime::caches::CacheError;
use crate::runtime::{Cache, CacheEvent, CachedResource, Caches, ControllerBuilder, Reconciler};

/// The label selector of exported schemas.
pub fn exported_selector() -> String {
    format!("{EXPORTED_LABEL}=true")
}

/// A kind that can be a schema source.
pub trait SourceSchema: CachedResource {
    /// Group and plural of the resource it describes.
    fn source_group_resource(&self) -> GroupResource;
    /// Its BoundSchema spec, `None` if it cannot be one.
    fn bound_schema_spec(&self, informer_scope: &InformerScope) -> Option<BoundSchemaSpec>;
}

impl SourceSchema for CustomResourceDefinition {
    fn source_group_resource(&self) -> GroupResource {
        GroupResource::new(self.spec.group.clone(), self.spec.names.plural.clone())
    }
    fn bound_schema_spec(&self, informer_scope: &InformerScope) -> Option<BoundSchemaSpec> {
        spec_from_crd(self, informer_scope)
    }
}

impl SourceSchema for APIResourceSchema {
    fn source_group_resource(&self) -> GroupResource {
        GroupResource::new(self.spec.group.clone(), self.spec.names.plural.clone())
    }
    fn bound_schema_spec(&self, informer_scope: &InformerScope) -> Option<BoundSchemaSpec> {
        spec_from_api_resource_schema(self, informer_scope)
    }
}

/// One exported schema as a BoundSchema spec, with the source's labels.
#[derive(Clone, Debug)]
pub struct ExportedSchema {
    pub spec: BoundSchemaSpec,
    pub labels: BTreeMap<String, String>,
}

/// Exported schemas by group and plural.
pub type ExportedSchemas = BTreeMap<GroupResource, ExportedSchema>;

/// The cache of the configured schema source.
#[derive(Clone)]
pub enum SourceSchemas {
    Crds(Arc<Cache<CustomResourceDefinition>>),
    ApiResourceSchemas(Arc<Cache<APIResourceSchema>>),
}

impl SourceSchemas {
    /// Declares the label-selected cache of `source` in `caches`.
    pub fn declare(caches: &Caches, source: SchemaSource) -> Result<Self, CacheError> {
        let selector = exported_selector();
        Ok(match source {
            SchemaSource::CustomResourceDefinitions => {
                Self::Crds(caches.get_selected(Some(&selector))?)
            }
            SchemaSource::ApiResourceSchemas => {
                Self::ApiResourceSchemas(caches.get_selected(Some(&selector))?)
            }
        })
    }

    /// The exported schemas of `cluster`. When several sources describe one resource (kcp keeps
    /// one APIResourceSchema per revision, named `v<date>-<hash>.<plural>.<group>`), the last by
    /// name wins, as in upstream's map built from a LIST in name order.
    pub fn exported(&self, cluster: &ClusterId, informer_scope: &InformerScope) -> ExportedSchemas {
        match self {
            Self::Crds(cache) => exported_of(cache, cluster, informer_scope),
            Self::ApiResourceSchemas(cache) => exported_of(cache, cluster, informer_scope),
        }
    }

    /// Declares the cache as read by `builder`'s controller, and enqueues what `map` returns for
    /// the resource of each changed source schema.
    pub fn watched_by<'m, R: Reconciler>(
        &self,
        mut builder: ControllerBuilder<'m, R>,
        map: impl Fn(&ClusterId, &GroupResource) -> Vec<crate::runtime::ObjectKey>
        + Send
        + Sync
        + 'static,
    ) -> ControllerBuilder<'m, R> {
        let selector = exported_selector();
        match self {
            Self::Crds(_) => {
                let _ = builder.reads_selected::<CustomResourceDefinition>(&selector);
                builder.watches::<CustomResourceDefinition>(move |e| map_source(e, &map))
            }
            Self::ApiResourceSchemas(_) => {
                let _ = builder.reads_selected::<APIResourceSchema>(&selector);
                builder.watches::<APIResourceSchema>(move |e| map_source(e, &map))
            }
        }
    }
}

fn exported_of<S: SourceSchema>(
    cache: &Cache<S>,
    cluster: &ClusterId,
    informer_scope: &InformerScope,
) -> ExportedSchemas {
    let mut sources = cache.list(cluster, None);
    sources.sort_by_key(|s| s.name_any());
    sources
        .iter()
        .filter_map(|source| {
            let spec = source.bound_schema_spec(informer_scope)?;
            let labels = source.labels().clone();
            Some((
                source.source_group_resource(),
                ExportedSchema { spec, labels },
            ))
        })
        .collect()
}

fn map_source<S: SourceSchema>(
    event: &CacheEvent<'_, S>,
    map: &impl Fn(&ClusterId, &GroupResource) -> Vec<crate::runtime::ObjectKey>,
) -> Vec<crate::runtime::ObjectKey> {
    let entry = match event {
        CacheEvent::Applied { new, .. } => *new,
        CacheEvent::Deleted { old, .. } => *old,
    };
    match entry.valid() {
        Some(source) => map(&event.key().cluster, &source.source_group_resource()),
        None => Vec::new(),
    }
}
