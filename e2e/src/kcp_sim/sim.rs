//! The stand-in's shared state: workspaces, bindings, resume registry, metrics, and the indexes
//! its controllers keep.

use std::{collections::HashMap, sync::Arc, sync::Mutex};

use super::{
    auth::Authorizer, bound::BindingRegistry, bound::ExportKey, kcp_types::ExportReference,
    metrics::Metrics, names::ClusterId, queue::Queue, resume::ResumeRegistry,
    workspaces::Workspaces,
};

/// An object the controllers reconcile: a kind, the logical cluster it lives in, its name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    Export(ClusterId, String),
    Binding(ClusterId, String),
    Slice(ClusterId, String),
}

/// Which export each APIBinding and APIExportEndpointSlice points at (resolved to a cluster id).
#[derive(Debug, Default)]
pub struct Index {
    pub bindings: HashMap<(ClusterId, String), ExportKey>,
    pub slices: HashMap<(ClusterId, String), ExportKey>,
}

pub struct Sim {
    pub workspaces: Workspaces,
    /// `https://127.0.0.1:<port>`.
    pub base_url: String,
    pub bindings: BindingRegistry,
    pub resume: ResumeRegistry,
    pub metrics: Metrics,
    pub authorizer: Authorizer,
    pub queue: Arc<Queue<Key>>,
    pub index: Mutex<Index>,
}

impl Sim {
    pub fn index(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Resolves an export reference made from workspace `from` (an empty path means `from`).
    pub fn resolve_export(
        &self,
        from: &ClusterId,
        reference: &ExportReference,
    ) -> Option<ExportKey> {
        let member = if reference.path.is_empty() {
            self.workspaces.by_id(from)?
        } else {
            self.workspaces.resolve(&reference.path)?
        };
        Some(ExportKey {
            cluster: member.id.clone(),
            name: reference.name.clone(),
        })
    }

    /// The virtual-workspace URL of an export (what endpoint slices list).
    pub fn vw_url(&self, export: &ExportKey) -> String {
        format!(
            "{}/services/apiexport/{}/{}",
            self.base_url, export.cluster, export.name
        )
    }

    /// Requeues the bindings of `export` (its resources or claims changed).
    pub fn requeue_bindings(&self, export: &ExportKey) {
        for ((cluster, name), key) in &self.index().bindings {
            if key == export {
                self.queue.add(Key::Binding(cluster.clone(), name.clone()));
            }
        }
    }

    /// Requeues the endpoint slices of `export` (it appeared, vanished, or its bindings changed).
    pub fn requeue_slices(&self, export: &ExportKey) {
        for ((cluster, name), key) in &self.index().slices {
            if key == export {
                self.queue.add(Key::Slice(cluster.clone(), name.clone()));
            }
        }
    }
}
