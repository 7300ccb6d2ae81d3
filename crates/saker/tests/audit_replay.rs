//! `saker replay FILE.json`: Kubernetes audit events (JSON lines, an EventList, a
//! directory) replayed through the upstream k8saudit rules, detected by content.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shared(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared")
        .join(rel)
}

fn events(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../saker-k8saudit/tests/events")
        .join(name);
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap();
    v.to_string()
}

fn replay(file: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_saker"))
        .args(["replay", "--no-progress", "-o", "json_output=true"])
        .arg("-r")
        .arg(shared("falco-rules/falco_rules.yaml"))
        .arg("-r")
        .arg(shared("k8s-audit/k8s_audit_rules.yaml"))
        .args(extra)
        .arg(file)
        .output()
        .unwrap()
}

fn alerts(o: &Output) -> Vec<serde_json::Value> {
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

#[test]
fn json_lines_replay_through_the_upstream_rules() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("audit.json");
    // A privileged pod, an exec, a line that is no audit event, an event without a time.
    let text = format!(
        "{}\n{}\n\n{{\"kind\": 0}}\n{{\"kind\":\"Event\",\"auditID\":\"x\"}}\n",
        events("create_privileged_pod.json"),
        events("exec_pod.json")
    );
    std::fs::write(&f, text).unwrap();
    let o = replay(&f, &[]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    let a = alerts(&o);
    let rules: Vec<&str> = a.iter().map(|v| v["rule"].as_str().unwrap()).collect();
    // rule_matching: first — one alert per event.
    assert_eq!(rules, ["Create Privileged Pod", "Attach/Exec Pod"]);
    let p = &a[0];
    assert_eq!(p["source"], "k8s_audit");
    assert_eq!(p["priority"], "Warning");
    assert_eq!(p["time"], "2024-05-01T10:00:00.123456789Z");
    assert_eq!(p["output_fields"]["ka.resp.name"], "web-5cdcc99dbf-rgw6z");
    assert_eq!(p["output_fields"]["evt.time"], 1_714_557_600_123_456_789u64);
    assert_eq!(
        p["output_fields"]["ka.req.pod.containers.image"],
        serde_json::json!(["nginx:1.25", "reg.example.com:5000/db/mysql@sha256:0123"]),
        "list fields are JSON arrays"
    );
    assert!(p["output"]
        .as_str()
        .unwrap()
        .contains("Warning Pod started with privileged container"));
    assert!(p["output"]
        .as_str()
        .unwrap()
        .contains("images=(nginx:1.25,reg.example.com:5000/db/mysql@sha256:0123)"));
    assert!(
        err.contains("[k8saudit] data not recognized as a k8s audit event"),
        "{err}"
    );
    assert!(
        err.contains("[k8saudit] can't read stageTimestamp"),
        "{err}"
    );
    assert!(err.contains("Events detected: 2"), "{err}");
}

#[test]
fn an_event_list_and_a_directory_replay_too() {
    let dir = tempfile::tempdir().unwrap();
    let list = format!(
        "{{\n  \"kind\": \"EventList\",\n  \"apiVersion\": \"audit.k8s.io/v1\",\n  \"items\": [\n    {},\n    {}\n  ]\n}}\n",
        events("exec_pod.json"),
        events("create_privileged_pod.json")
    );
    let f = dir.path().join("list.json");
    std::fs::write(&f, &list).unwrap();
    let o = replay(&f, &["-o", "rule_matching=all"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let rules: Vec<String> = alerts(&o)
        .iter()
        .map(|v| v["rule"].as_str().unwrap().to_string())
        .collect();
    assert!(rules.contains(&"Attach/Exec Pod".to_string()), "{rules:?}");
    assert!(
        rules.contains(&"Create Sensitive Mount Pod".to_string()),
        "{rules:?}"
    );
    // A directory: every file, as one stream; syscall rules never see the events.
    let d = dir.path().join("d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("a.json"), events("exec_pod.json") + "\n").unwrap();
    std::fs::write(
        d.join("b.json"),
        events("create_privileged_pod.json") + "\n",
    )
    .unwrap();
    let o = replay(&d, &[]);
    assert!(o.status.success());
    let a = alerts(&o);
    assert_eq!(a.len(), 2);
    assert!(a.iter().all(|v| v["source"] == "k8s_audit"));
}
