//! Falco's upstream k8saudit rules (../shared/k8s-audit/k8s_audit_rules.yaml, read at test
//! time) over audit events of our own: each rule fires on its case and stays quiet on a
//! near miss. Rules gated off upstream are turned on by redefining their gate macros, as
//! users do.

use saker_k8saudit::{parse_payload, AuditEvent, DEFAULT_MAX_EVENT_SIZE};
use saker_rules::engine::{Engine, LoadOptions, RuleMatching};
use saker_rules::ruleset::Ruleset;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// User overrides of the gate macros (our own text).
const GATES: &str = "
- macro: allowed_k8s_containers
  condition: ka.req.pod.containers.image.repository in (my-repo/app)
- macro: consider_all_events
  condition: (jevt.rawtime exists)
- macro: allowed_full_admin_users
  condition: (jevt.rawtime=0)
- macro: allow_all_k8s_nodes
  condition: (jevt.rawtime=0)
";

fn ruleset(with_gates: bool) -> Ruleset {
    let mut eng = Engine::new(LoadOptions {
        rule_matching: RuleMatching::All,
        ..Default::default()
    });
    for f in [
        "falco-rules/falco_rules.yaml",
        "k8s-audit/k8s_audit_rules.yaml",
    ] {
        let r = eng.load_file(&shared().join(f));
        assert!(r.successful(), "{}", r.to_text());
    }
    if with_gates {
        let r = eng.load_text("gates.yaml", GATES);
        assert!(r.successful(), "{}", r.to_text());
    }
    eng.check_plugin_requirements()
        .expect("k8saudit and json are built in");
    eng.ruleset()
}

/// A minimal audit event: `verb` on `resource`, by a system user, successful.
struct E(Value);

impl E {
    fn new(verb: &str, resource: &str) -> E {
        E(json!({
            "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "RequestResponse",
            "auditID": "0d1e2f30-aaaa-bbbb-cccc-ddddeeeeffff", "stage": "ResponseComplete",
            "requestURI": format!("/api/v1/namespaces/default/{resource}"), "verb": verb,
            "user": {"username": "system:serviceaccount:kube-system:deployer", "groups": ["system:serviceaccounts"]},
            "sourceIPs": ["10.1.2.3"], "userAgent": "kubectl/v1.29.3",
            "objectRef": {"resource": resource, "namespace": "default", "name": "obj-1"},
            "responseStatus": {"metadata": {}, "code": if verb == "create" { 201 } else { 200 }},
            "stageTimestamp": "2024-05-01T10:00:00.000001Z",
            "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": ""}
        }))
    }
    fn set(mut self, ptr: &str, v: Value) -> E {
        let (parent, key) = ptr.rsplit_once('/').unwrap();
        let mut cur = &mut self.0;
        for k in parent.split('/').filter(|k| !k.is_empty()) {
            cur = match k.parse::<usize>() {
                Ok(i) if cur.is_array() => &mut cur[i],
                _ => cur
                    .as_object_mut()
                    .unwrap()
                    .entry(k)
                    .or_insert_with(|| json!({})),
            };
        }
        cur[key] = v;
        self
    }
    fn del(mut self, ptr: &str) -> E {
        let (parent, key) = ptr.rsplit_once('/').unwrap();
        if let Some(o) = self.0.pointer_mut(parent).and_then(Value::as_object_mut) {
            o.remove(key);
        }
        self
    }
    fn user(self, u: &str) -> E {
        self.set("/user/username", json!(u))
    }
    fn code(self, c: u32) -> E {
        self.set("/responseStatus/code", json!(c))
    }
    fn ns(self, n: &str) -> E {
        self.set("/objectRef/namespace", json!(n))
    }
    fn name(self, n: &str) -> E {
        self.set("/objectRef/name", json!(n))
    }
    fn sub(self, s: &str) -> E {
        self.set("/objectRef/subresource", json!(s))
    }
    fn stage(self, s: &str) -> E {
        self.set("/stage", json!(s))
    }
    fn req(self, o: Value) -> E {
        self.set("/requestObject", o)
    }
    fn pod(images: &[&str]) -> E {
        let cs: Vec<Value> = images
            .iter()
            .enumerate()
            .map(|(i, im)| json!({"name": format!("c{i}"), "image": im}))
            .collect();
        E::new("create", "pods")
            .del("/objectRef/name")
            .req(json!({"kind": "Pod", "spec": {"containers": cs}}))
    }
    fn event(&self) -> AuditEvent {
        let mut p = parse_payload(self.0.to_string().as_bytes(), DEFAULT_MAX_EVENT_SIZE);
        assert!(p.errors.is_empty(), "{:?}", p.errors);
        p.events.remove(0)
    }
}

fn fired(rs: &Ruleset, e: &E) -> Vec<String> {
    let ev = e.event();
    let mut out = Vec::new();
    rs.matches_source("k8s_audit", &ev.view("h", 0), &mut out);
    out.iter().map(|&i| rs.info(i).name.clone()).collect()
}

fn role_rules(rules: Value) -> Value {
    json!({"kind": "ClusterRole", "rules": rules})
}

/// (rule, an event that must fire it, a near miss that must not).
fn cases() -> Vec<(&'static str, E, E)> {
    let sa = "system:serviceaccount:kube-system:deployer";
    vec![
        ("Disallowed K8s User", E::new("get", "pods").user("mallory"), E::new("get", "pods").user("vpa-updater")),
        ("Create Disallowed Pod", E::pod(&["evil/miner:1"]), E::pod(&["my-repo/app:1.0"])),
        (
            "Create Privileged Pod",
            E::pod(&["nginx", "mysql"]).set("/requestObject/spec/containers/1/securityContext", json!({"privileged": true})),
            E::pod(&["nginx", "mysql"]).set("/requestObject/spec/containers/1/securityContext", json!({"privileged": false})),
        ),
        (
            "Create Sensitive Mount Pod",
            E::pod(&["nginx"]).set("/requestObject/spec/volumes", json!([{"name": "v", "hostPath": {"path": "/etc"}}])),
            E::pod(&["nginx"]).set("/requestObject/spec/volumes", json!([{"name": "v", "hostPath": {"path": "/etc/app"}}])),
        ),
        (
            "Create HostNetwork Pod",
            E::pod(&["gke.gcr.io/kube-proxy:v1", "nginx"]).set("/requestObject/spec/hostNetwork", json!(true)),
            // Every image trusted: `in` is an all-elements test.
            E::pod(&["gke.gcr.io/kube-proxy:v1", "gke.gcr.io/netd-amd64:v2"]).set("/requestObject/spec/hostNetwork", json!(true)),
        ),
        ("Create HostPid Pod", E::pod(&["nginx"]).set("/requestObject/spec/hostPID", json!(true)), E::pod(&["nginx"]).set("/requestObject/spec/hostPID", json!(false))),
        ("Create HostIPC Pod", E::pod(&["nginx"]).set("/requestObject/spec/hostIPC", json!(true)), E::pod(&["nginx"])),
        (
            "Create NodePort Service",
            E::new("create", "services").req(json!({"spec": {"type": "NodePort", "ports": [{"port": 80, "nodePort": 30080}]}})),
            E::new("create", "services").req(json!({"spec": {"type": "ClusterIP"}})),
        ),
        (
            "Create/Modify Configmap With Private Credentials",
            E::new("update", "configmaps").req(json!({"data": {"creds": "aws_access_key_id=AKIA0000"}})),
            E::new("update", "configmaps").req(json!({"data": {"log_level": "debug"}})),
        ),
        (
            "Anonymous Request Allowed",
            E::new("get", "pods").user("system:anonymous").set("/requestURI", json!("/api/v1/pods")),
            E::new("get", "pods").user("system:anonymous").set("/requestURI", json!("/healthz?verbose")),
        ),
        (
            "Attach/Exec Pod",
            E::new("create", "pods").sub("exec").stage("ResponseStarted"),
            E::new("create", "pods").sub("portforward").stage("ResponseStarted"),
        ),
        ("EphemeralContainers Created", E::new("patch", "pods").sub("ephemeralcontainers"), E::new("patch", "pods").sub("status")),
        ("Create Disallowed Namespace", E::new("create", "namespaces").name("crypto"), E::new("create", "namespaces").name("kube-public")),
        (
            "Pod Created in Kube Namespace",
            E::pod(&["nginx"]).ns("kube-system"),
            E::pod(&["registry.k8s.io/kube-apiserver:v1.29.3"]).ns("kube-system"),
        ),
        (
            "Service Account Created in Kube Namespace",
            E::new("create", "serviceaccounts").ns("kube-system").name("backdoor"),
            E::new("create", "serviceaccounts").ns("kube-system").name("coredns"),
        ),
        ("System ClusterRole Modified/Deleted", E::new("patch", "clusterroles").name("system:node"), E::new("patch", "clusterroles").name("system:coredns")),
        (
            "Attach to cluster-admin Role",
            E::new("create", "clusterrolebindings").req(json!({"roleRef": {"name": "cluster-admin"}, "subjects": [{"kind": "User", "name": "bob"}]})),
            E::new("create", "clusterrolebindings").req(json!({"roleRef": {"name": "view"}})),
        ),
        (
            "ClusterRole With Wildcard Created",
            E::new("create", "clusterroles").req(role_rules(json!([{"resources": ["pods"], "verbs": ["get"]}, {"resources": ["*"], "verbs": ["get"]}]))),
            E::new("create", "clusterroles").req(role_rules(json!([{"resources": ["pods"], "verbs": ["get"]}]))),
        ),
        (
            "ClusterRole With Write Privileges Created",
            E::new("create", "roles").req(role_rules(json!([{"resources": ["pods"], "verbs": ["get", "delete"]}]))),
            E::new("create", "roles").req(role_rules(json!([{"resources": ["pods"], "verbs": ["get", "list"]}]))),
        ),
        (
            "ClusterRole With Pod Exec Created",
            E::new("create", "clusterroles").req(role_rules(json!([{"resources": ["pods/exec"], "verbs": ["get"]}]))),
            E::new("create", "clusterroles").req(role_rules(json!([{"resources": ["pods/log"], "verbs": ["get"]}]))),
        ),
        ("K8s Deployment Created", E::new("create", "deployments"), E::new("create", "deployments").code(409)),
        ("K8s Deployment Deleted", E::new("delete", "deployments"), E::new("delete", "deployments").code(404)),
        ("K8s Service Created", E::new("create", "services"), E::new("create", "services").code(422)),
        ("K8s Service Deleted", E::new("delete", "services"), E::new("get", "services")),
        ("K8s ConfigMap Created", E::new("create", "configmaps"), E::new("create", "configmaps").stage("RequestReceived")),
        ("K8s ConfigMap Deleted", E::new("delete", "configmaps"), E::new("delete", "secrets").user(sa)),
        ("K8s Namespace Created", E::new("create", "namespaces"), E::new("create", "namespaces").code(403)),
        ("K8s Namespace Deleted", E::new("delete", "namespaces").user("alice"), E::new("delete", "namespaces").user(sa)),
        ("K8s Serviceaccount Created", E::new("create", "serviceaccounts"), E::new("update", "serviceaccounts")),
        ("K8s Serviceaccount Deleted", E::new("delete", "serviceaccounts"), E::new("delete", "serviceaccounts").code(500)),
        ("K8s Role/Clusterrole Created", E::new("create", "roles"), E::new("create", "rolebindings")),
        ("K8s Role/Clusterrole Deleted", E::new("delete", "clusterroles"), E::new("delete", "clusterroles").code(404)),
        ("K8s Role/Clusterrolebinding Created", E::new("create", "clusterrolebindings"), E::new("create", "clusterrolebindings").code(409)),
        ("K8s Role/Clusterrolebinding Deleted", E::new("delete", "clusterrolebindings"), E::new("patch", "clusterrolebindings")),
        ("K8s Secret Created", E::new("create", "secrets").user("alice"), E::new("create", "secrets").user("alice").ns("kube-system")),
        ("K8s Secret Deleted", E::new("delete", "secrets").user("alice"), E::new("delete", "secrets").user(sa)),
        ("K8s Secret Get Successfully", E::new("get", "secrets"), E::new("get", "secrets").code(403)),
        ("K8s Secret Get Unsuccessfully Tried", E::new("get", "secrets").code(403), E::new("get", "secrets")),
        ("All K8s Audit Events", E::new("list", "endpoints"), E::new("list", "endpoints").stage("RequestReceived")),
        ("Full K8s Administrative Access", E::new("list", "pods").user("kubernetes-admin"), E::new("list", "pods").user("alice")),
        (
            "Ingress Object without TLS Certificate Created",
            E::new("create", "ingresses").req(json!({"spec": {"rules": []}})),
            E::new("create", "ingresses").req(json!({"spec": {"tls": [{"hosts": ["a.example.com"]}]}})),
        ),
        ("Untrusted Node Successfully Joined the Cluster", E::new("create", "nodes").name("node-9"), E::new("create", "nodes").name("node-9").code(403)),
        ("Untrusted Node Unsuccessfully Tried to Join the Cluster", E::new("create", "nodes").name("node-9").code(403), E::new("create", "nodes").name("node-9")),
    ]
}

#[test]
fn every_upstream_rule_fires_on_its_case_and_not_on_its_near_miss() {
    let rs = ruleset(true);
    let audit_rules: Vec<String> = rs
        .enabled_in("k8s_audit")
        .iter()
        .map(|&i| rs.info(i).name.clone())
        .collect();
    let cases = cases();
    // One case per upstream rule, none forgotten.
    let mut covered: Vec<&str> = cases.iter().map(|c| c.0).collect();
    covered.sort();
    let mut all: Vec<&str> = audit_rules.iter().map(String::as_str).collect();
    all.sort();
    assert_eq!(covered, all);
    assert_eq!(all.len(), 43);
    for (rule, hit, miss) in &cases {
        let f = fired(&rs, hit);
        assert!(
            f.iter().any(|r| r == rule),
            "{rule} must fire on {}: fired {f:?}",
            hit.0
        );
        let f = fired(&rs, miss);
        assert!(
            !f.iter().any(|r| r == rule),
            "{rule} must not fire on {}: fired {f:?}",
            miss.0
        );
    }
}

#[test]
fn gated_rules_stay_off_without_user_overrides() {
    let rs = ruleset(false);
    for (rule, hit, _) in cases() {
        let gated = matches!(
            rule,
            "Create Disallowed Pod"
                | "All K8s Audit Events"
                | "Full K8s Administrative Access"
                | "Untrusted Node Successfully Joined the Cluster"
                | "Untrusted Node Unsuccessfully Tried to Join the Cluster"
        );
        let f = fired(&rs, &hit);
        assert_eq!(f.iter().any(|r| r == rule), !gated, "{rule}: {f:?}");
    }
}

#[test]
fn the_rules_file_loads_alone_with_no_error_and_its_requirements_met() {
    let mut eng = Engine::new(LoadOptions::default());
    let r = eng.load_file(&shared().join("k8s-audit/k8s_audit_rules.yaml"));
    assert!(r.successful() && r.errors.is_empty(), "{}", r.to_text());
    eng.check_plugin_requirements().unwrap();
    let rs = eng.ruleset();
    assert_eq!(rs.enabled_in("k8s_audit").len(), 43);
    assert!(rs.enabled_in("syscall").is_empty());
    // Audit rules never widen the syscall selection.
    assert_eq!(rs.needed_event_types(), Some(Default::default()));
    // Newest-style requirements (aks/gke alternatives) are met by the built-in source too.
    let newest = "- required_plugin_versions:\n  - name: k8saudit-aks\n    version: 0.6.0\n  - name: k8saudit-gke\n    version: 0.9.0\n  - name: json\n    version: 0.7.0\n";
    let mut eng = Engine::new(LoadOptions::default());
    assert!(eng.load_text("req.yaml", newest).successful());
    eng.check_plugin_requirements().unwrap();
}

#[test]
fn sources_never_see_each_others_events() {
    let rs = ruleset(true);
    // An audit event reaches audit rules only.
    let f = fired(&rs, &E::new("get", "pods").user("mallory"));
    for name in &f {
        let i = rs.find(name).unwrap();
        assert_eq!(rs.info(i).source, "k8s_audit", "{name}");
    }
    // A syscall event with every field an audit rule could want still matches no audit rule.
    let mut mv = saker_rules::eval::MapView::new();
    mv.etype = 0;
    mv.set("jevt.rawtime", saker_fields_value("1"));
    mv.set("jevt.value[/stage]", saker_fields_value("ResponseComplete"));
    mv.set("ka.user.name", saker_fields_value("mallory"));
    let mut out = Vec::new();
    rs.matches(&mv, &mut out);
    assert!(
        out.iter().all(|&i| rs.info(i).source == "syscall"),
        "{out:?}"
    );
}

fn saker_fields_value(s: &'static str) -> saker_fields::Value<'static> {
    saker_fields::Value::str(s)
}
