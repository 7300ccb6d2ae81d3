//! Two sources in one `saker run`: the live probe's syscall alerts and the k8s_audit webhook's
//! alerts on the same stdout, each with its `source`. Needs root and the probe (live test).

mod common;

use std::ffi::OsStr;
use std::time::Duration;

use common::*;

#[test]
#[ignore = "needs root"]
fn syscall_and_audit_alerts_on_one_stdout() {
    require_live("syscall_and_audit_alerts_on_one_stdout");
    let _g = probe_lock();
    let tok = token("twosrc");
    let dir = Scratch::new(&tok);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let rules = dir.file("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: Two sources syscall\n  desc: d\n  condition: evt.type in (open, openat, openat2) and fd.name contains {tok}\n  output: file=%fd.name\n  priority: WARNING\n\
             - rule: Two sources audit\n  desc: d\n  condition: ka.auditid = {tok}\n  output: id=%ka.auditid user=%ka.user.name\n  priority: WARNING\n  source: k8s_audit\n"
        ),
    )
    .unwrap();
    let cfg = dir.file("saker.yaml");
    std::fs::write(
        &cfg,
        format!("plugins:\n  - name: k8saudit\n    open_params: \"http://127.0.0.1:{port}/k8s-audit\"\n  - name: json\nload_plugins: [k8saudit, json]\nwebserver:\n  enabled: false\n"),
    )
    .unwrap();
    let s = Session::start(&[
        OsStr::new("run"),
        OsStr::new("-c"),
        cfg.as_os_str(),
        OsStr::new("-o"),
        OsStr::new("json_output=true"),
        OsStr::new("-r"),
        rules.as_os_str(),
    ]);
    // A syscall the probe sees, and an audit event through the webhook.
    let target = dir.file(&format!("{tok}.txt"));
    std::fs::write(&target, "x").unwrap();
    let _ = std::fs::read(&target).unwrap();
    let event = format!(
        r#"{{"kind":"EventList","items":[{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"{tok}","stage":"ResponseComplete","verb":"get","user":{{"username":"alice"}},"stageTimestamp":"2024-05-01T10:00:00Z"}}]}}"#
    );
    let code = curl_post_json(&format!("http://127.0.0.1:{port}/k8s-audit"), &event);
    assert_eq!(code, "200");
    s.wait_alerts(
        "a syscall and an audit alert",
        Duration::from_secs(30),
        |a| {
            a.iter().any(|x| x.rule == "Two sources syscall")
                && a.iter().any(|x| x.rule == "Two sources audit")
        },
    );
    let fin = s.stop();
    assert!(fin.status.success(), "{}", fin.stderr_text());
    let alerts = fin.alerts();
    let sys = alerts
        .iter()
        .find(|a| a.rule == "Two sources syscall")
        .unwrap();
    assert_eq!(sys.raw["source"], "syscall");
    assert!(sys.field("fd.name").unwrap().contains(&tok));
    let audit: Vec<_> = alerts
        .iter()
        .filter(|a| a.rule == "Two sources audit")
        .collect();
    assert_eq!(audit.len(), 1, "one audit event, one alert");
    assert_eq!(audit[0].raw["source"], "k8s_audit");
    assert_eq!(audit[0].field("ka.user.name").as_deref(), Some("alice"));
    assert_eq!(audit[0].raw["time"], "2024-05-01T10:00:00.000000000Z");
}
