//! BindableResourcesRequest: the body of `POST /api/bind`, naming a template to bind.
//!
//! Unlike the other kinds it has no `spec`: `templateRef` sits at the top level. So it implements
//! [`kube::Resource`] by hand, and its CRD schema is built in [`crate::crds`].

use std::borrow::Cow;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::strict::no_open_enums;

/// Asks the backend for a binding to the template `templateRef.name`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindableResourcesRequest {
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub api_version: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Only `name` matters: it becomes the export request's name.
    #[serde(default)]
    pub metadata: ObjectMeta,
    pub template_ref: APIServiceExportTemplateRef,
}

/// A reference to an APIServiceExportTemplate by name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct APIServiceExportTemplateRef {
    pub name: String,
}

no_open_enums!(BindableResourcesRequest, APIServiceExportTemplateRef);

/// Why a [`BindableResourcesRequest`] is not usable.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum BindRequestError {
    #[error("templateRef.name is required")]
    MissingTemplate,
    #[error("metadata.name is required")]
    MissingName,
    #[error("metadata.name {name:?} is not a valid DNS label: {reason}")]
    InvalidName { name: String, reason: &'static str },
}

impl BindableResourcesRequest {
    pub const KIND: &'static str = "BindableResourcesRequest";

    /// A request named `name` for template `template`.
    pub fn new(name: impl Into<String>, template: impl Into<String>) -> Self {
        Self {
            api_version: crate::wire::API_VERSION.to_owned(),
            kind: Self::KIND.to_owned(),
            metadata: ObjectMeta {
                name: Some(name.into()),
                ..Default::default()
            },
            template_ref: APIServiceExportTemplateRef {
                name: template.into(),
            },
        }
    }

    /// Checks what upstream's `Validate()` checks: a template name and a DNS-1123 label name.
    pub fn validate(&self) -> Result<(), BindRequestError> {
        if self.template_ref.name.is_empty() {
            return Err(BindRequestError::MissingTemplate);
        }
        let name = self.metadata.name.as_deref().unwrap_or_default();
        if name.is_empty() {
            return Err(BindRequestError::MissingName);
        }
        dns1123_label(name).map_err(|reason| BindRequestError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    }
}

/// Checks a DNS-1123 label: at most 63 characters, lower-case alphanumerics and `-`,
/// starting and ending with an alphanumeric.
pub fn dns1123_label(name: &str) -> Result<(), &'static str> {
    if name.len() > 63 {
        return Err("must be no more than 63 characters");
    }
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    let valid = name.chars().all(|c| ok_char(c) || c == '-')
        && name.chars().next().is_some_and(ok_char)
        && name.chars().last().is_some_and(ok_char);
    if valid {
        Ok(())
    } else {
        Err(
            "must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
        )
    }
}

impl kube::Resource for BindableResourcesRequest {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        Cow::Borrowed(Self::KIND)
    }
    fn group(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("kube-bind.io")
    }
    fn version(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("v1alpha2")
    }
    fn plural(_: &()) -> Cow<'_, str> {
        Cow::Borrowed("bindableresourcesrequests")
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validate_table() {
        let cases = [
            (
                "ok",
                BindableResourcesRequest::new("my-binding", "cowboys"),
                None,
            ),
            (
                "no template",
                BindableResourcesRequest::new("x", ""),
                Some(BindRequestError::MissingTemplate),
            ),
            (
                "no name",
                BindableResourcesRequest::new("", "t"),
                Some(BindRequestError::MissingName),
            ),
        ];
        for (name, req, want) in cases {
            assert_eq!(req.validate().err(), want, "{name}");
        }
        for bad in ["Upper", "-lead", "trail-", "dot.ted", &"a".repeat(64)] {
            assert!(
                matches!(
                    BindableResourcesRequest::new(bad, "t").validate(),
                    Err(BindRequestError::InvalidName { .. })
                ),
                "{bad}"
            );
        }
    }
}
