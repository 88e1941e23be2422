//! Evaluates every CEL rule of the generated CRDs with kube-cel, accept and reject cases.
//! The e2e suite also checks one rule end to end on a real apiserver
//! (`upstream_crds_install_as_they_are_and_their_cel_rules_are_enforced`).

use serde_json::{Value, json};

fn schema(plural: &str, version: &str) -> Value {
    let crd = kube_bind_apis::crds::all()
        .unwrap()
        .into_iter()
        .find(|c| c.spec.names.plural == plural)
        .unwrap();
    let v = crd
        .spec
        .versions
        .into_iter()
        .find(|v| v.name == version)
        .unwrap();
    serde_json::to_value(v.schema.unwrap().open_api_v3_schema.unwrap()).unwrap()
}

fn accepts(schema: &Value, obj: &Value, old: Option<&Value>) -> bool {
    kube_cel::validate(schema, obj, old).is_ok()
}

fn rejects_with(schema: &Value, obj: &Value, old: Option<&Value>, message: &str) {
    let errors = kube_cel::validate(schema, obj, old).expect_err("expected a CEL rejection");
    assert!(
        errors
            .as_slice()
            .iter()
            .any(|e| e.message.contains(message)),
        "wanted {message:?}, got {errors:?}"
    );
}

fn claim(resource: &str) -> Value {
    json!({"group": "", "resource": resource, "selector": {"namedResources": [{"name": "x"}]}})
}

fn export(resources: &[&str], claims: &[&str], scope: &str) -> Value {
    json!({
        "apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExport",
        "metadata": {"name": "e", "namespace": "ns"},
        "spec": {
            "resources": resources.iter().map(|r| json!({"group": "wildwest.dev", "resource": r})).collect::<Vec<_>>(),
            "permissionClaims": claims.iter().map(|c| claim(c)).collect::<Vec<_>>(),
            "informerScope": scope,
        }
    })
}

#[test]
fn cluster_binding_must_be_named_cluster() {
    for version in ["v1alpha1", "v1alpha2"] {
        let s = schema("clusterbindings", version);
        let obj = |name: &str| {
            json!({"metadata": {"name": name, "namespace": "ns"},
                   "spec": {"kubeconfigSecretRef": {"name": "kc", "key": "kubeconfig"}, "providerPrettyName": "P"}})
        };
        assert!(accepts(&s, &obj("cluster"), None), "{version}");
        rejects_with(
            &s,
            &obj("other"),
            None,
            "cluster binding name should be cluster",
        );
    }
}

#[test]
fn cluster_binding_secret_ref_is_immutable() {
    let s = schema("clusterbindings", "v1alpha2");
    let obj = |secret: &str| {
        json!({"metadata": {"name": "cluster"},
               "spec": {"kubeconfigSecretRef": {"name": secret, "key": "kubeconfig"}, "providerPrettyName": "P"}})
    };
    assert!(accepts(&s, &obj("a"), Some(&obj("a"))));
    rejects_with(
        &s,
        &obj("b"),
        Some(&obj("a")),
        "kubeconfigSecretRef is immutable",
    );
}

#[test]
fn export_fields_are_immutable() {
    let s = schema("apiserviceexports", "v1alpha2");
    let old = export(&["cowboys"], &["secrets"], "Namespaced");
    assert!(accepts(&s, &old, None));
    assert!(accepts(&s, &old, Some(&old)));
    rejects_with(
        &s,
        &export(&["sheriffs"], &["secrets"], "Namespaced"),
        Some(&old),
        "resources are immutable",
    );
    rejects_with(
        &s,
        &export(&["cowboys"], &["configmaps"], "Namespaced"),
        Some(&old),
        "permissionClaims are immutable",
    );
    rejects_with(
        &s,
        &export(&["cowboys"], &["secrets"], "Cluster"),
        Some(&old),
        "informerScope is immutable",
    );
}

#[test]
fn export_request_fields_are_immutable() {
    let s = schema("apiserviceexportrequests", "v1alpha2");
    let req = |resource: &str, claim_res: &str, ns: &str, param: i64| {
        json!({"metadata": {"name": "r"}, "spec": {
            "parameters": {"size": param},
            "resources": [{"group": "wildwest.dev", "resource": resource}],
            "permissionClaims": [claim(claim_res)],
            "namespaces": [{"name": ns}],
        }})
    };
    let old = req("cowboys", "secrets", "wild-west", 1);
    assert!(accepts(&s, &old, Some(&old)));
    rejects_with(
        &s,
        &req("sheriffs", "secrets", "wild-west", 1),
        Some(&old),
        "resources are immutable",
    );
    rejects_with(
        &s,
        &req("cowboys", "configmaps", "wild-west", 1),
        Some(&old),
        "permissionClaims are immutable",
    );
    rejects_with(
        &s,
        &req("cowboys", "secrets", "other", 1),
        Some(&old),
        "namespaces are immutable",
    );
    rejects_with(
        &s,
        &req("cowboys", "secrets", "wild-west", 2),
        Some(&old),
        "parameters are immutable",
    );

    let v1 = schema("apiserviceexportrequests", "v1alpha1");
    let old1 = json!({"metadata": {"name": "r"}, "spec": {"resources": [{"resource": "cowboys"}]}});
    let new1 =
        json!({"metadata": {"name": "r"}, "spec": {"resources": [{"resource": "sheriffs"}]}});
    assert!(accepts(&v1, &old1, Some(&old1)));
    rejects_with(&v1, &new1, Some(&old1), "resources are immutable");
}

#[test]
fn api_service_binding_secret_ref_is_immutable() {
    for version in ["v1alpha1", "v1alpha2"] {
        let s = schema("apiservicebindings", version);
        let obj = |ns: &str| {
            json!({"metadata": {"name": "b"},
                   "spec": {"kubeconfigSecretRef": {"name": "kc", "namespace": ns, "key": "kubeconfig"}}})
        };
        assert!(
            accepts(&s, &obj("kube-bind"), Some(&obj("kube-bind"))),
            "{version}"
        );
        rejects_with(
            &s,
            &obj("other"),
            Some(&obj("kube-bind")),
            "kubeconfigSecretRef is immutable",
        );
    }
}

#[test]
fn bound_schema_webhook_rule() {
    let s = schema("boundschemas", "v1alpha2");
    let obj = |conversion: Value| {
        json!({"metadata": {"name": "cowboys.wildwest.dev"}, "spec": {
            "informerScope": "Namespaced", "group": "wildwest.dev", "scope": "Namespaced",
            "names": {"plural": "cowboys", "kind": "Cowboy"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object"}}}],
            "conversion": conversion,
        }})
    };
    let webhook = json!({"conversionReviewVersions": ["v1"], "clientConfig": {"url": "https://x"}});
    assert!(accepts(&s, &obj(json!({"strategy": "None"})), None));
    assert!(accepts(
        &s,
        &obj(json!({"strategy": "Webhook", "webhook": webhook})),
        None
    ));
    let message = "Webhook must be specified if strategy=Webhook";
    rejects_with(&s, &obj(json!({"strategy": "Webhook"})), None, message);
    rejects_with(
        &s,
        &obj(json!({"strategy": "None", "webhook": webhook})),
        None,
        message,
    );
}

#[test]
fn v1alpha1_export_rules() {
    let s = schema("apiserviceexports", "v1alpha1");
    let obj = |name: &str, scope: &str, informer: &str, isolation: Option<&str>| {
        let mut spec = json!({
            "group": "wildwest.dev", "scope": scope, "informerScope": informer,
            "names": {"plural": "cowboys", "kind": "Cowboy"},
            "versions": [{"name": "v1", "served": true, "storage": true, "schema": {"openAPIV3Schema": {}}}],
        });
        if let Some(i) = isolation {
            spec["clusterScopedIsolation"] = json!(i);
        }
        json!({"metadata": {"name": name}, "spec": spec})
    };
    let good_ns = obj("cowboys.wildwest.dev", "Namespaced", "Namespaced", None);
    assert!(accepts(&s, &good_ns, None));
    assert!(accepts(
        &s,
        &obj(
            "cowboys.wildwest.dev",
            "Cluster",
            "Cluster",
            Some("Prefixed")
        ),
        None
    ));
    // Upstream labels the name rule "informerScope is immutable".
    rejects_with(
        &s,
        &obj("wrong", "Namespaced", "Namespaced", None),
        None,
        "informerScope is immutable",
    );
    rejects_with(
        &s,
        &obj(
            "cowboys.wildwest.dev",
            "Cluster",
            "Namespaced",
            Some("Prefixed"),
        ),
        None,
        "informerScope must be Cluster for cluster-scoped resources",
    );
    rejects_with(
        &s,
        &obj("cowboys.wildwest.dev", "Cluster", "Cluster", None),
        None,
        "clusterScopedIsolation must be defined for cluster-scoped resources",
    );
    rejects_with(
        &s,
        &obj(
            "cowboys.wildwest.dev",
            "Namespaced",
            "Namespaced",
            Some("None"),
        ),
        None,
        "clusterScopedIsolation is not relevant for namespaced resources",
    );
    let changed = obj("cowboys.wildwest.dev", "Namespaced", "Cluster", None);
    rejects_with(&s, &changed, Some(&good_ns), "informerScope is immutable");
}
