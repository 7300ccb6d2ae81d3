//! `ka.*`/`jevt.*` values on real-shaped audit events, rendered as Falco's text output shows
//! them (`<NA>` for missing, `(a,b)` for lists).

use saker_k8saudit::{parse_payload, AuditEvent, DEFAULT_MAX_EVENT_SIZE};
use saker_rules::format::OutputFormat;

fn event(text: &str) -> AuditEvent {
    let mut p = parse_payload(text.as_bytes(), DEFAULT_MAX_EVENT_SIZE);
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    p.events.remove(0)
}

fn get(ev: &AuditEvent, field: &str) -> String {
    let fmt = saker_rules::compile::with_source("k8s_audit", || {
        OutputFormat::parse(&format!("%{field}"))
    })
    .unwrap_or_else(|e| panic!("{field}: {e:?}"));
    fmt.render_string(&ev.view("host1", 0))
}

const POD: &str = include_str!("events/create_privileged_pod.json");
const EXEC: &str = include_str!("events/exec_pod.json");

#[test]
fn pod_create_fields() {
    let ev = event(POD);
    let cases = [
        ("ka.verb", "create"),
        ("ka.target.resource", "pods"),
        ("ka.target.namespace", "default"),
        ("ka.target.name", "<NA>"),
        ("ka.target.subresource", "<NA>"),
        ("ka.resp.name", "web-5cdcc99dbf-rgw6z"),
        ("ka.target.pod.name", "web-5cdcc99dbf-rgw6z"),
        ("ka.response.code", "201"),
        ("ka.auth.decision", "allow"),
        (
            "ka.user.name",
            "system:serviceaccount:kube-system:replicaset-controller",
        ),
        (
            "ka.user.groups",
            "(system:serviceaccounts,system:serviceaccounts:kube-system,system:authenticated)",
        ),
        (
            "ka.req.pod.containers.image",
            "(nginx:1.25,reg.example.com:5000/db/mysql@sha256:0123)",
        ),
        (
            "ka.req.pod.containers.image.repository",
            "(nginx,reg.example.com)",
        ),
        (
            "ka.req.pod.containers.image[1]",
            "(reg.example.com:5000/db/mysql@sha256:0123)",
        ),
        ("ka.req.pod.containers.image[2]", "<NA>"),
        ("ka.req.pod.containers.name", "(nginx,mysql)"),
        ("ka.req.pod.containers.privileged", "(false,true)"),
        ("ka.req.pod.containers.privileged[1]", "(true)"),
        ("ka.req.pod.containers.run_as_user", "(0)"),
        ("ka.req.pod.containers.eff_run_as_user", "(1000,0)"),
        ("ka.req.pod.containers.eff_run_as_group", "(0,0)"),
        ("ka.req.pod.containers.args", "(--verbose --port=3306)"),
        ("ka.req.pod.containers.command", "<NA>"),
        (
            "ka.req.pod.containers.add_capabilities",
            "([\"NET_ADMIN\",\"SYS_TIME\"])",
        ),
        ("ka.req.pod.containers.host_port", "(80,13306)"),
        ("ka.req.pod.initContainers.image", "(busybox:1.36)"),
        ("ka.req.pod.initContainers.command", "(sh -c true)"),
        ("ka.req.pod.ephemeralContainers.image", "<NA>"),
        ("ka.req.container.image", "nginx:1.25"),
        ("ka.req.container.image.repository", "nginx"),
        ("ka.req.container.privileged", "true"),
        ("ka.req.pod.volumes.hostpath", "(/etc)"),
        (
            "ka.req.pod.volumes.volume_type",
            "(configMap,hostPath,flexVolume)",
        ),
        ("ka.req.pod.volumes.volume_type[2]", "(flexVolume)"),
        ("ka.req.pod.volumes.flexvolume_driver", "(example.com/lvm)"),
        ("ka.req.volume.hostpath[/etc*]", "true"),
        ("ka.req.volume.hostpath[/proc*]", "false"),
        ("ka.req.volume.hostpath[/et]", "false"),
        ("ka.req.pod.run_as_user", "1000"),
        ("ka.req.pod.fs_group", "2000"),
        ("ka.req.pod.supplemental_groups", "(3000,3001)"),
        ("ka.req.pod.host_network", "<NA>"),
        ("ka.sourceips", "(172.31.10.5)"),
        ("jevt.value[/stage]", "ResponseComplete"),
        ("jevt.value[stage]", "ResponseComplete"),
        (
            "jevt.value[/annotations/authorization.k8s.io~1decision]",
            "allow",
        ),
        (
            "jevt.value[/requestObject/spec/containers/1/securityContext/capabilities/add/0]",
            "NET_ADMIN",
        ),
        (
            "jevt.value[/responseStatus]",
            "{\"code\":201,\"metadata\":{}}",
        ),
        ("jevt.value[/nope]", "<NA>"),
        ("jevt.rawtime", "1714557600123456789"),
        ("json.rawtime", "1714557600123456789"),
        ("evt.source", "k8s_audit"),
        ("evt.pluginname", "k8saudit"),
        ("evt.hostname", "host1"),
        ("evt.rawtime.ns", "123456789"),
    ];
    for (f, want) in cases {
        assert_eq!(get(&ev, f), want, "{f}");
    }
    // The payload keeps the original key order; jevt.obj indents it.
    assert!(get(&ev, "evt.plugininfo")
        .starts_with("{\"kind\":\"Event\",\"apiVersion\":\"audit.k8s.io/v1\",\"level\""));
    assert!(get(&ev, "jevt.obj")
        .starts_with("{\n  \"kind\": \"Event\",\n  \"apiVersion\": \"audit.k8s.io/v1\",\n"));
}

#[test]
fn exec_and_binding_fields() {
    let ev = event(EXEC);
    assert_eq!(get(&ev, "ka.uri.param[command]"), "bash");
    assert_eq!(get(&ev, "ka.uri.param[tty]"), "true");
    assert_eq!(get(&ev, "ka.uri.param[missing]"), "<NA>");
    assert_eq!(get(&ev, "ka.target.subresource"), "exec");
    assert_eq!(
        get(&ev, "ka.target.pod.name"),
        "<NA>",
        "a subresource request is no pod request"
    );
    assert_eq!(get(&ev, "ka.sourceips[1]"), "(10.0.0.8)");
    let binding = r#"{"kind":"Event","auditID":"b","stage":"ResponseComplete","verb":"create","stageTimestamp":"2024-05-01T10:00:00Z","objectRef":{"resource":"clusterrolebindings","name":"x"},"requestObject":{"roleRef":{"kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"minikube"},{"kind":"ServiceAccount","name":"deployer","namespace":"ci"},{"kind":"ServiceAccount","name":"nons"},{"kind":"Group","name":"ops"}]}}"#;
    let ev = event(binding);
    assert_eq!(get(&ev, "ka.req.binding.role"), "cluster-admin");
    assert_eq!(get(&ev, "ka.req.binding.subjects.user_names"), "(minikube)");
    assert_eq!(get(&ev, "ka.req.binding.subjects.group_names"), "(ops)");
    assert_eq!(
        get(&ev, "ka.req.binding.subjects.serviceaccount_names"),
        "(deployer,nons)"
    );
    assert_eq!(
        get(&ev, "ka.req.binding.subjects.serviceaccount_ns_names"),
        "(ci:deployer)"
    );
    assert!(get(&ev, "ka.req.binding.subjects").starts_with(
        "({\"apiGroup\":\"rbac.authorization.k8s.io\",\"kind\":\"User\",\"name\":\"minikube\"},"
    ));
    assert_eq!(get(&ev, "ka.req.binding.subject.has_name[x]"), "true");
    let role = r#"{"kind":"Event","auditID":"r","stage":"ResponseComplete","verb":"create","stageTimestamp":"2024-05-01T10:00:00Z","objectRef":{"resource":"clusterroles","name":"x"},"requestObject":{"rules":[{"apiGroups":[""],"resources":["pods/exec"],"verbs":["get"]},{"resources":["pods"],"verbs":["get","list"]},{"nonResourceURLs":["/metrics"],"verbs":["get"]}]}}"#;
    let ev = event(role);
    assert_eq!(get(&ev, "ka.req.role.rules.resources"), "(pods/exec,pods)");
    assert_eq!(get(&ev, "ka.req.role.rules.verbs[1]"), "(get,list)");
    assert_eq!(get(&ev, "ka.req.role.rules.nonResourceURLs"), "(/metrics)");
    assert_eq!(
        get(&ev, "ka.req.role.rules.apiGroups"),
        "()",
        "one empty-string element"
    );
    let svc = r#"{"kind":"Event","auditID":"s","stage":"ResponseComplete","verb":"create","stageTimestamp":"2024-05-01T10:00:00Z","objectRef":{"resource":"services","name":"x"},"requestObject":{"spec":{"type":"NodePort","ports":[{"nodePort":30080,"port":80,"protocol":"TCP","targetPort":80}]}}}"#;
    let ev = event(svc);
    assert_eq!(get(&ev, "ka.req.service.type"), "NodePort");
    assert_eq!(
        get(&ev, "ka.req.service.ports"),
        "([{\"nodePort\":30080,\"port\":80,\"protocol\":\"TCP\",\"targetPort\":80}])"
    );
    assert_eq!(
        get(&ev, "ka.req.service.ports[3]"),
        get(&ev, "ka.req.service.ports"),
        "the index has no effect upstream"
    );
}

#[test]
fn without_audit_id_every_ka_field_is_missing() {
    let ev = event(
        r#"{"kind":"Event","stage":"ResponseComplete","verb":"get","stageTimestamp":"2024-05-01T10:00:00Z"}"#,
    );
    assert_eq!(get(&ev, "ka.verb"), "<NA>");
    assert_eq!(get(&ev, "ka.stage"), "<NA>");
    assert_eq!(
        get(&ev, "jevt.value[/verb]"),
        "get",
        "json fields still work"
    );
}

#[test]
fn field_and_operator_errors_at_load() {
    use saker_rules::engine::Engine;
    let rule = |cond: &str, source: &str| {
        format!("- rule: r\n  desc: d\n  condition: {cond}\n  output: o\n  priority: INFO\n  source: {source}\n")
    };
    let load = |text: String| {
        let mut eng = Engine::new(Default::default());
        let r = eng.load_text("t.yaml", &text);
        r.errors.first().map(|e| e.message.clone())
    };
    assert_eq!(load(rule("ka.verb=get", "k8s_audit")), None);
    // Sources do not share their own fields.
    assert_eq!(
        load(rule("ka.verb=get", "syscall")).as_deref(),
        Some("filter_check called with nonexistent field ka.verb")
    );
    assert_eq!(
        load(rule("proc.name=bash", "k8s_audit")).as_deref(),
        Some("filter_check called with nonexistent field proc.name")
    );
    // List fields take in/intersects/exists only, with or without an index.
    assert_eq!(
        load(rule(
            "ka.req.pod.containers.image contains nginx",
            "k8s_audit"
        ))
        .as_deref(),
        Some("'contains' operator not supported for list filters")
    );
    assert_eq!(
        load(rule("ka.req.pod.containers.image[0] = nginx", "k8s_audit")).as_deref(),
        Some("'=' operator not supported for list filters")
    );
    assert!(load(rule("ka.uri.param exists", "k8s_audit"))
        .unwrap()
        .contains("requires an argument"));
    assert!(load(rule("ka.verb[x] = get", "k8s_audit"))
        .unwrap()
        .contains("nonexistent field ka.verb[x]"));
}
