//! Tolerant decoding of server objects, strict decoding of input from people, and lossless
//! round trips of upstream-shaped JSON.

use kube_bind_apis::strict::{self, StrictError};
use kube_bind_apis::v1alpha2::{
    APIServiceExport, APIServiceExportRequest, BindableResourcesRequest, BoundSchema,
    ClusterBinding, InformerScope,
};
use kube_bind_apis::wire::{BindingProvider, BindingResponse, ErrorBody};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn round_trip<T: DeserializeOwned + Serialize>(input: Value) {
    let typed: T = serde_json::from_value(input.clone()).unwrap();
    assert_eq!(serde_json::to_value(&typed).unwrap(), input);
}

fn export_json(scope: &str) -> Value {
    json!({
        "apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExport",
        "metadata": {"name": "test-binding", "namespace": "kube-bind-abcde",
                     "annotations": {"kube-bind.io/source-spec-hash": "1234"}},
        "spec": {
            "resources": [{"group": "wildwest.dev", "resource": "cowboys", "versions": ["v1alpha1"]}],
            "permissionClaims": [{"resource": "secrets", "selector": {"labelSelector": {"matchLabels": {"app": "x"}}}}],
            "informerScope": scope,
            "clusterScopedIsolation": "Prefixed"
        },
        "status": {"conditions": [
            {"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-02T03:04:05Z"},
            {"type": "Connected", "status": "False", "severity": "Warning", "reason": "NoHeartbeat",
             "message": "no heartbeat", "lastTransitionTime": "2025-01-02T03:04:05Z"}
        ]}
    })
}

#[test]
fn unknown_enum_from_server_is_kept_and_round_trips() {
    let input = export_json("Bogus");
    let export: APIServiceExport = serde_json::from_value(input.clone()).unwrap();
    assert_eq!(
        export.spec.informer_scope,
        InformerScope::Unknown("Bogus".into())
    );
    assert!(!export.spec.informer_scope.is_known());
    assert_eq!(serde_json::to_value(&export).unwrap(), input);
}

#[test]
fn unknown_fields_from_server_are_ignored() {
    let mut input = export_json("Cluster");
    input["spec"]["futureField"] = json!(1);
    let export: APIServiceExport = serde_json::from_value(input).unwrap();
    assert_eq!(export.spec.informer_scope, InformerScope::Cluster);
}

#[test]
fn schema_lists_only_known_enum_values() {
    let crd = kube_bind_apis::crds::all()
        .unwrap()
        .into_iter()
        .find(|c| c.spec.names.plural == "apiserviceexports");
    let crd = serde_json::to_value(crd.unwrap()).unwrap();
    let scope = crd
        .pointer(
            "/spec/versions/1/schema/openAPIV3Schema/properties/spec/properties/informerScope/enum",
        )
        .unwrap();
    assert_eq!(scope, &json!(["Cluster", "Namespaced"]));
}

#[test]
fn strict_accepts_valid_input() {
    let req: BindableResourcesRequest = strict::from_str(
        r#"{"metadata":{"name":"test-binding"},"templateRef":{"name":"cowboys"}}"#,
    )
    .unwrap();
    assert_eq!(req.template_ref.name, "cowboys");
    let export: APIServiceExport =
        strict::from_slice(export_json("Namespaced").to_string().as_bytes()).unwrap();
    assert_eq!(export.spec.informer_scope, InformerScope::Namespaced);
}

#[test]
fn strict_rejects_unknown_fields_with_path_and_allowed_fields() {
    let err = strict::from_str::<BindableResourcesRequest>(
        r#"{"metadata":{"name":"x"},"templateRef":{"name":"t","nmae":"oops"}}"#,
    )
    .unwrap_err();
    assert_eq!(
        err,
        StrictError::UnknownField {
            path: "templateRef.nmae".into(),
            allowed: vec!["name".into()]
        }
    );
    assert_eq!(
        err.to_string(),
        r#"unknown field `templateRef.nmae`; allowed fields there: "name""#
    );

    let err = strict::from_str::<BindableResourcesRequest>(
        r#"{"metadata":{"name":"x","lables":{}},"templateRef":{"name":"t"}}"#,
    )
    .unwrap_err();
    assert_eq!(err.path(), "metadata.lables");
    assert!(err.to_string().contains("\"labels\""), "{err}");

    let mut input = export_json("Cluster");
    input["spec"]["resources"][0]["verions"] = json!([]);
    let err = strict::from_value::<APIServiceExport>(input).unwrap_err();
    assert_eq!(err.path(), "spec.resources[0].verions");
    assert!(
        err.to_string()
            .contains(r#""group", "resource", "versions""#),
        "{err}"
    );
}

#[test]
fn strict_rejects_unknown_enum_values_with_path_and_allowed_values() {
    let err = strict::from_value::<APIServiceExport>(export_json("Bogus")).unwrap_err();
    assert_eq!(
        err.to_string(),
        r#"unknown value "Bogus" at `spec.informerScope`; allowed values there: "Cluster", "Namespaced""#
    );
    let mut input = export_json("Cluster");
    input["status"]["conditions"][1]["severity"] = json!("Fatal");
    let err = strict::from_value::<APIServiceExport>(input).unwrap_err();
    assert_eq!(err.path(), "status.conditions[1].severity");
}

#[test]
fn strict_reports_syntax_and_type_errors_with_path() {
    let err =
        strict::from_str::<BindableResourcesRequest>(r#"{"templateRef":{"name":5}}"#).unwrap_err();
    assert!(
        matches!(&err, StrictError::Syntax { path, .. } if path == "templateRef.name"),
        "{err}"
    );
    assert!(strict::from_str::<BindableResourcesRequest>("{").is_err());
    assert!(
        strict::from_str::<BindableResourcesRequest>(r#"{"templateRef":{"name":"t"}} x"#).is_err()
    );
}

#[test]
fn strict_yaml_input() {
    let req: BindableResourcesRequest =
        strict::from_yaml_str("metadata:\n  name: b\ntemplateRef:\n  name: cowboys\n").unwrap();
    assert_eq!(req.metadata.name.as_deref(), Some("b"));
    assert!(
        strict::from_yaml_str::<BindableResourcesRequest>("templateRef:\n  name: c\n  extra: 1\n")
            .is_err()
    );
}

#[test]
fn round_trip_export() {
    round_trip::<APIServiceExport>(export_json("Cluster"));
}

#[test]
fn round_trip_export_request_with_claims_and_selectors() {
    round_trip::<APIServiceExportRequest>(json!({
        "apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExportRequest",
        "metadata": {"name": "test-binding", "namespace": "kube-bind-abcde", "uid": "u-1", "resourceVersion": "42"},
        "spec": {
            "parameters": {"tier": "gold", "replicas": 3},
            "resources": [{"group": "wildwest.dev", "resource": "cowboys"}, {"resource": "configmaps", "versions": ["v1"]}],
            "permissionClaims": [
                {"resource": "secrets", "selector": {
                    "namedResources": [{"name": "colt-45-permit", "namespace": "wild-west"}],
                    "labelSelector": {"matchExpressions": [{"key": "gang", "operator": "In", "values": ["a", "b"]}]},
                    "references": [{"group": "wildwest.dev", "resource": "cowboys", "versions": ["v1alpha1"],
                                    "jsonPath": {"name": "spec.secretRef.name", "namespace": "spec.secretRef.namespace"}}]
                }},
                {"group": "", "resource": "configmaps", "selector": {"namedResources": [{"name": "cfg"}]}}
            ],
            "namespaces": [{"name": "wild-west"}]
        },
        "status": {"phase": "Failed", "terminalMessage": "no such resource",
                   "conditions": [{"type": "ExportsReady", "status": "Unknown", "lastTransitionTime": "2025-01-02T03:04:05Z"}]}
    }).as_object().map(|o| {
        // An explicit empty group is dropped on the way back, as Go's omitempty does.
        let mut v = Value::Object(o.clone());
        v["spec"]["permissionClaims"][1].as_object_mut().unwrap().remove("group");
        v
    }).unwrap());
}

#[test]
fn round_trip_bound_schema_with_full_schema() {
    round_trip::<BoundSchema>(json!({
        "apiVersion": "kube-bind.io/v1alpha2", "kind": "BoundSchema",
        "metadata": {"name": "cowboys.wildwest.dev", "namespace": "kube-bind-abcde"},
        "spec": {
            "informerScope": "Namespaced", "group": "wildwest.dev", "scope": "Namespaced",
            "names": {"plural": "cowboys", "singular": "cowboy", "kind": "Cowboy", "listKind": "CowboyList",
                      "shortNames": ["cb"], "categories": ["wildwest"]},
            "versions": [{
                "name": "v1alpha1", "served": true, "storage": true, "deprecated": true,
                "deprecationWarning": "use v1",
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {
                            "intent": {"type": "string", "enum": ["draw", "holster"]},
                            "secretRef": {"type": "object", "x-kubernetes-map-type": "atomic",
                                          "properties": {"name": {"type": "string"}}}
                        }, "x-kubernetes-validations": [{"rule": "self.intent != ''", "message": "intent"}]},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                    }
                }},
                "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.r", "statusReplicasPath": ".status.r"}},
                "additionalPrinterColumns": [{"name": "Intent", "type": "string", "jsonPath": ".spec.intent", "priority": 0}]
            }],
            "conversion": {"strategy": "Webhook", "webhook": {"conversionReviewVersions": ["v1"],
                           "clientConfig": {"url": "https://conv", "caBundle": "Q0E="}}}
        },
        "status": {"acceptedNames": {"plural": "cowboys", "kind": "Cowboy"}, "storedVersions": ["v1alpha1"],
                   "conditions": [{"type": "Established", "status": "True", "lastTransitionTime": "2025-01-02T03:04:05Z"}]}
    }));
}

#[test]
fn round_trip_cluster_binding_with_status() {
    round_trip::<ClusterBinding>(json!({
        "apiVersion": "kube-bind.io/v1alpha2", "kind": "ClusterBinding",
        "metadata": {"name": "cluster", "namespace": "kube-bind-abcde"},
        "spec": {"kubeconfigSecretRef": {"name": "kubeconfig", "key": "kubeconfig"},
                 "providerPrettyName": "BigCorp.com", "serviceProviderSpec": {"anything": ["goes"]}},
        "status": {"lastHeartbeatTime": "2025-01-02T03:04:05Z", "heartbeatInterval": "5m0s",
                   "konnectorVersion": "v0.5.0",
                   "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2025-01-02T03:04:05Z"},
                                  {"type": "Healthy", "status": "True", "lastTransitionTime": "2025-01-02T03:04:05Z"}]}
    }));
}

#[test]
fn round_trip_wire_bodies_as_upstream_sends_them() {
    round_trip::<BindingProvider>(json!({
        "kind": "BindingProvider", "apiVersion": "v1alpha2", "providerPrettyName": "BigCorp.com", "version": "v0.5.0",
        "authenticationMethods": [{"method": "OAuth2CodeGrant",
            "oauth2CodeGrant": {"authenticatedURL": "http://127.0.0.1:8080/api/authorize?cluster_id=2ocmm"}}]
    }));
    round_trip::<BindingResponse>(json!({
        "kind": "BindingResponse", "apiVersion": "kube-bind.io/v1alpha2",
        "authentication": {"oauth2CodeGrant": {"sid": "S1", "id": "http://127.0.0.1:8080/oidc/kube-bind-embedded-user"}},
        "kubeconfig": "YXBpVmVyc2lvbjogdjEK",
        "requests": [{"apiVersion": "kube-bind.io/v1alpha2", "kind": "APIServiceExportRequest",
                      "metadata": {"name": "test-binding"},
                      "spec": {"resources": [{"group": "wildwest.dev", "resource": "cowboys"}]}, "status": {}}]
    }));
    round_trip::<ErrorBody>(json!({
        "kind": "Error", "apiVersion": "kube-bind.io/v1alpha2", "message": "Invalid JSON request body",
        "code": "BAD_REQUEST", "details": "unexpected EOF"
    }));
}
