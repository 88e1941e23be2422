//! The UI's pages: askama templates (under `templates/ui/`, HTML-escaped at compile time) and the
//! view models they render, built from typed objects so a page can be checked without a cluster.

use askama::Template;
use kube::ResourceExt as _;
use kube_bind_apis::v1alpha2::{APIServiceExportTemplate, Collection, PermissionClaim};

use crate::http::ApiError;

/// The hidden fields every catalogue form carries back to `/ui/*`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FormContext {
    pub session_id: String,
    /// The CLI's loopback callback, when `kubectl bind <url>` opened the page.
    pub redirect_url: String,
    pub cluster_id: String,
    pub csrf: String,
}

/// One APIServiceExportTemplate as the catalogue shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateView {
    pub name: String,
    pub description: String,
    pub scope: String,
    pub resources: Vec<ResourceView>,
    pub claims: Vec<ClaimView>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResourceView {
    /// `core` for the empty group, as kubectl shows it.
    pub group: String,
    pub resource: String,
    /// Comma-separated, or a phrase when every served version is exported.
    pub versions: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimView {
    pub group: String,
    pub resource: String,
    /// Which objects are claimed, as the selector's JSON.
    pub selector: String,
}

/// One Collection as the catalogue shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollectionView {
    pub name: String,
    pub description: String,
    pub templates: Vec<String>,
}

fn group_label(group: &str) -> String {
    if group.is_empty() {
        "core".to_owned()
    } else {
        group.to_owned()
    }
}

impl From<&APIServiceExportTemplate> for TemplateView {
    fn from(template: &APIServiceExportTemplate) -> Self {
        let spec = &template.spec;
        Self {
            name: template.name_any(),
            description: spec.description.clone(),
            scope: spec.scope.as_str().to_owned(),
            resources: spec
                .resources
                .iter()
                .map(|r| ResourceView {
                    group: group_label(&r.group),
                    resource: r.resource.clone(),
                    versions: if r.versions.is_empty() {
                        "every served version".to_owned()
                    } else {
                        r.versions.join(", ")
                    },
                })
                .collect(),
            claims: spec.permission_claims.iter().map(ClaimView::from).collect(),
        }
    }
}

impl From<&PermissionClaim> for ClaimView {
    fn from(claim: &PermissionClaim) -> Self {
        Self {
            group: group_label(&claim.group),
            resource: claim.resource.clone(),
            // The selector is a small typed value; its JSON is exact and needs no prose.
            selector: serde_json::to_string(&claim.selector).unwrap_or_default(),
        }
    }
}

impl From<&Collection> for CollectionView {
    fn from(collection: &Collection) -> Self {
        Self {
            name: collection.name_any(),
            description: collection.spec.description.clone(),
            templates: collection
                .spec
                .templates
                .iter()
                .map(|t| t.name.clone())
                .collect(),
        }
    }
}

impl CataloguePage {
    /// Whether a template a collection lists is on this page (a collection may name one that
    /// does not exist, or not yet).
    pub fn offers(&self, template: &str) -> bool {
        self.templates.iter().any(|t| t.name == template)
    }
}

/// Someone who is not logged in for this cluster.
#[derive(Template)]
#[template(path = "ui/login.html")]
pub struct LoginPage {
    pub provider: String,
    pub cluster: String,
    /// `/api/authorize?…`, relative.
    pub login_href: String,
    /// Whether `kubectl bind` opened the page (then the bind returns to the terminal).
    pub from_cli: bool,
}

/// What a logged-in consumer can bind.
#[derive(Template)]
#[template(path = "ui/catalogue.html")]
pub struct CataloguePage {
    pub provider: String,
    pub subject: String,
    pub cluster: String,
    pub templates: Vec<TemplateView>,
    pub collections: Vec<CollectionView>,
    pub form: FormContext,
}

/// A bind made from the UI without a CLI waiting for it.
#[derive(Template)]
#[template(path = "ui/result.html")]
pub struct ResultPage {
    pub provider: String,
    pub template: String,
    /// The consumer's cluster namespace in the provider.
    pub namespace: String,
    /// The Secret there holding the kubeconfig.
    pub secret_name: String,
    /// The export requests, one YAML document each.
    pub requests: Vec<String>,
    pub kubeconfig: String,
    /// The catalogue of the same cluster.
    pub back_href: String,
}

/// Any failure of a UI route, as a page.
#[derive(Template)]
#[template(path = "ui/error.html")]
pub struct ErrorPage {
    pub provider: String,
    pub title: String,
    pub message: String,
    pub details: String,
}

impl ErrorPage {
    pub fn of(provider: &str, error: &ApiError) -> Self {
        let status = error.status();
        Self {
            provider: provider.to_owned(),
            title: match status.canonical_reason() {
                Some(reason) => format!("{} {reason}", status.as_u16()),
                None => status.as_u16().to_string(),
            },
            message: error.body.message.clone(),
            details: error.body.details.clone(),
        }
    }
}

/// How the cluster is named on a page (`""` is the single cluster of the kubernetes provider).
pub fn cluster_label(cluster_id: &str) -> String {
    if cluster_id.is_empty() {
        "the provider cluster".to_owned()
    } else {
        format!("cluster {cluster_id}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube_bind_apis::v1alpha2::{APIServiceExportTemplateSpec, CollectionSpec};

    fn template(name: &str, description: &str) -> APIServiceExportTemplate {
        let spec: APIServiceExportTemplateSpec = serde_json::from_value(serde_json::json!({
            "description": description,
            "scope": "Namespaced",
            "resources": [{"group": "", "resource": "widgets", "versions": ["v1", "v2"]},
                          {"group": "example.com", "resource": "gadgets"}],
            "permissionClaims": [{"resource": "configmaps",
                "selector": {"labelSelector": {"matchLabels": {"app": "<x>"}}}}],
        }))
        .unwrap();
        APIServiceExportTemplate::new(name, spec)
    }

    fn catalogue(templates: Vec<TemplateView>, collections: Vec<CollectionView>) -> String {
        CataloguePage {
            provider: "ACME <Corp>".into(),
            subject: "alice\"><script>".into(),
            cluster: cluster_label("c1"),
            templates,
            collections,
            form: FormContext {
                session_id: "s\"1".into(),
                redirect_url: "http://127.0.0.1:1/cb?a=1&b=2".into(),
                cluster_id: "c1".into(),
                csrf: "token".into(),
            },
        }
        .render()
        .unwrap()
    }

    #[test]
    fn the_catalogue_escapes_what_providers_and_users_wrote() {
        let evil = template("widgets", "<script>alert(1)</script> & more");
        let collection = Collection::new(
            "all",
            serde_json::from_value::<CollectionSpec>(serde_json::json!({
                "description": "<img src=x onerror=alert(2)>",
                "templates": [{"name": "widgets"}, {"name": "gone"}],
            }))
            .unwrap(),
        );
        let html = catalogue(
            vec![TemplateView::from(&evil)],
            vec![CollectionView::from(&collection)],
        );
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        assert!(
            html.contains("&#60;script&#62;alert(1)&#60;/script&#62; &#38; more"),
            "{html}"
        );
        assert!(html.contains("alice&#34;&#62;&#60;script&#62;"), "{html}");
        assert!(
            html.contains(r#"value="http://127.0.0.1:1/cb?a=1&#38;b=2""#),
            "{html}"
        );
        assert!(html.contains(r#"<section class="template" id="template-widgets""#));
        assert!(html.contains(r#"<section class="collection" id="collection-all""#));
        assert!(
            html.contains(r##"href="#template-widgets">widgets</a></li>"##),
            "{html}"
        );
        assert!(
            html.contains(r##"href="#template-gone">gone</a> (not offered in this cluster)</li>"##),
            "{html}"
        );
        assert!(
            html.contains(r#"<button type="submit" name="bind" value="widgets">Bind</button>"#)
        );
        assert!(html.contains(r#"<input type="hidden" name="template" value="widgets">"#));
        assert!(html.contains(r#"<input type="hidden" name="csrf" value="token">"#));
        assert!(html.contains(r#"<form id="logout" method="post" action="/ui/logout">"#));
        // Resources and claims, the core group named as kubectl names it.
        assert!(html.contains("v1, v2"));
        assert!(html.contains("every served version"));
        assert!(html.contains("example.com"));
        assert!(html.contains("core"));
        assert!(
            html.contains("&#34;app&#34;:&#34;&#60;x&#62;&#34;"),
            "{html}"
        );
    }

    #[test]
    fn an_empty_catalogue_says_so() {
        let html = catalogue(vec![], vec![]);
        assert!(html.contains("id=\"catalogue\""));
        assert!(
            html.contains("This provider offers nothing to bind yet"),
            "{html}"
        );
        assert!(!html.contains("class=\"template\""));
    }

    #[test]
    fn views_keep_what_the_template_says() {
        let view = TemplateView::from(&template("widgets", ""));
        assert_eq!(view.scope, "Namespaced");
        assert_eq!(
            view.resources[0],
            ResourceView {
                group: "core".into(),
                resource: "widgets".into(),
                versions: "v1, v2".into()
            }
        );
        assert_eq!(view.claims[0].resource, "configmaps");
        let html = catalogue(vec![view], vec![]);
        assert!(html.contains("No description"), "{html}");
    }
}
