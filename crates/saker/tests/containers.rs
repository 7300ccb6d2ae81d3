//! Live container metadata: `saker run` asks a podman API socket (Docker-compatible) about the
//! containers it sees, and alerts carry container.* and k8s.* fields.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Alert, Container, Saker, Scratch};
use saker_testkit::podman::Service;

const RULE: &str = "Saker test shell in container";

fn rules(tok: &str) -> String {
    format!(
        r#"- rule: {RULE}
  desc: a shell spawned in one of this test's containers
  condition: evt.type in (execve, execveat) and evt.dir=< and container.id != host and proc.name = sh and proc.cmdline contains "{tok}"
  output: "shell in container (id=%container.id name=%container.name repo=%container.image.repository tag=%container.image.tag priv=%container.privileged pod=%k8s.pod.name ns=%k8s.ns.name type=%container.type health=%proc.is_container_healthcheck cmd=%proc.cmdline)"
  priority: WARNING
"#
    )
}

fn start_container(name: &str, extra: &[&str]) -> Container {
    let c = Container::create(name, extra, "sleep 120");
    let out = Command::new("podman")
        .args(["start", &c.name])
        .output()
        .expect("podman start");
    common::ok(&out, "podman start");
    c
}

fn exec_shell(c: &Container, tok: &str) {
    let out = Command::new("podman")
        .args(["exec", &c.name, "sh", "-c"])
        .arg(format!("cat /etc/hostname # {tok}"))
        .output()
        .expect("podman exec");
    common::ok(&out, "podman exec");
}

fn alert_for<'a>(alerts: &'a [Alert], name: &str) -> &'a Alert {
    alerts
        .iter()
        .find(|a| a.rule == RULE && a.field("container.name").as_deref() == Some(name))
        .unwrap_or_else(|| {
            let ours: Vec<_> = alerts.iter().filter(|a| a.rule == RULE).collect();
            panic!("no alert with container.name={name}; alerts of the rule: {ours:#?}")
        })
}

fn check(a: &Alert, c: &Container, privileged: bool, pod: &str) {
    let f = |k: &str| a.field(k).unwrap_or_default();
    assert_eq!(f("container.id"), c.id[..12], "container.id of {}", c.name);
    assert_eq!(f("container.image.repository"), "localhost/saker-rstest");
    assert_eq!(f("container.image.tag"), "2");
    assert_eq!(f("container.privileged"), privileged.to_string());
    assert_eq!(f("container.type"), "podman");
    assert_eq!(f("k8s.pod.name"), pod);
    assert_eq!(f("k8s.ns.name"), "myns");
}

#[test]
#[ignore = "needs root"]
fn alerts_carry_podman_metadata() {
    common::require_live("alerts_carry_podman_metadata");
    if common::skip_without_tools("alerts_carry_podman_metadata", &["podman"]) {
        return;
    }
    let _guard = common::probe_lock();
    let tok = common::token("ctr");
    let scratch = Scratch::new(&tok);
    let rules_file = scratch.file("rules.yaml");
    std::fs::write(&rules_file, rules(&tok)).expect("write rules");
    let _service = Service::start(&scratch.file("podman.sock"));

    let labels = |pod: &str| {
        vec![
            "--label".to_string(),
            format!("io.kubernetes.pod.name={pod}"),
            "--label".to_string(),
            "io.kubernetes.pod.namespace=myns".to_string(),
        ]
    };
    // The plain container has a healthcheck; `podman healthcheck run` execs it below.
    let mut plain_args = labels("mypod");
    plain_args.push("--health-cmd".into());
    plain_args.push(format!("cat /etc/passwd # health {tok}"));
    let plain = start_container(
        &format!("{tok}-plain"),
        &plain_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let mut priv_args = labels("privpod");
    priv_args.push("--privileged".into());
    let privileged = start_container(
        &format!("{tok}-priv"),
        &priv_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );

    // The socket is configured as a directory: the watcher looks up podman.sock in it.
    std::env::set_var("SAKER_CONTAINER_SOCKETS", &scratch.path);
    let saker = Saker::start(&["-r".as_ref(), rules_file.as_os_str()]);
    // A container started while Saker runs is resolved through a request on its first exec.
    let late_args = labels("latepod");
    let late = start_container(
        &format!("{tok}-late"),
        &late_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    for c in [&plain, &privileged, &late] {
        exec_shell(c, &tok);
    }
    let out = Command::new("podman")
        .args(["healthcheck", "run", &plain.name])
        .output()
        .expect("podman healthcheck run");
    common::ok(&out, "podman healthcheck run");
    let alerts = saker.stop();

    check(alert_for(&alerts, &plain.name), &plain, false, "mypod");
    check(
        alert_for(&alerts, &privileged.name),
        &privileged,
        true,
        "privpod",
    );
    check(alert_for(&alerts, &late.name), &late, false, "latepod");

    // Only the healthcheck's own command line is the container's healthcheck.
    let health = |a: &Alert| {
        a.field("proc.cmdline")
            .unwrap_or_default()
            .contains("health")
            && a.field("container.name").as_deref() == Some(plain.name.as_str())
    };
    let hc: Vec<_> = alerts
        .iter()
        .filter(|a| a.rule == RULE && health(a))
        .collect();
    assert!(!hc.is_empty(), "no alert for the healthcheck's shell");
    for a in hc {
        assert_eq!(
            a.field("proc.is_container_healthcheck").as_deref(),
            Some("true")
        );
    }
    let shell = alert_for(&alerts, &plain.name);
    assert!(!health(shell));
    assert_eq!(
        shell.field("proc.is_container_healthcheck").as_deref(),
        Some("false")
    );
}

#[test]
#[ignore = "needs root"]
fn podman_service_restart_keeps_metadata_for_new_containers() {
    common::require_live("podman_service_restart_keeps_metadata_for_new_containers");
    if common::skip_without_tools(
        "podman_service_restart_keeps_metadata_for_new_containers",
        &["podman"],
    ) {
        return;
    }
    let _guard = common::probe_lock();
    let tok = common::token("pmrs");
    let scratch = Scratch::new(&tok);
    let rules_file = scratch.file("rules.yaml");
    std::fs::write(&rules_file, rules(&tok)).expect("write rules");
    let sock = scratch.file("podman.sock");
    let service = Service::start(&sock);
    // Saker asks only this test's service, through its directory.
    let saker = Saker::start_with_env(
        &["-r".as_ref(), rules_file.as_os_str()],
        &[("SAKER_CONTAINER_SOCKETS", scratch.path.as_os_str())],
    );
    let args = |pod: &str| {
        vec![
            "--label".to_string(),
            format!("io.kubernetes.pod.name={pod}"),
            "--label".to_string(),
            "io.kubernetes.pod.namespace=myns".to_string(),
        ]
    };
    let before_args = args("beforepod");
    let before = start_container(
        &format!("{tok}-before"),
        &before_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    exec_shell(&before, &tok);

    // The service goes away and comes back on the same path (a new socket file).
    drop(service);
    let _ = std::fs::remove_file(&sock);
    std::thread::sleep(Duration::from_millis(500));
    let _service = Service::start(&sock);
    let after_args = args("afterpod");
    let after = start_container(
        &format!("{tok}-after"),
        &after_args.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    exec_shell(&after, &tok);
    let alerts = saker.stop();

    check(
        alert_for(&alerts, &before.name),
        &before,
        false,
        "beforepod",
    );
    check(alert_for(&alerts, &after.name), &after, false, "afterpod");
}
