//! Live container metadata from containerd's native API: each test starts a private containerd
//! (own root, state and socket below a scratch directory), imports the test image into it and
//! runs containers with `ctr`. `saker run` is pointed at the socket's directory through
//! `container_engines.containerd` in a config file, and the alerts for a shell and for a
//! write below /etc inside the containers must carry container.* and k8s.* fields.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{Alert, Saker, Scratch};
use saker_testkit::containerd::{Containerd, Mode, Pod};
use saker_testkit::podman;

const SHELL_RULE: &str = "Saker test shell in containerd container";
const ETC_RULE: &str = "Saker test write below etc in containerd container";
const IMAGE_REPO: &str = "localhost/saker-rstest";

fn rules(tok: &str) -> String {
    let out = "(id=%container.id name=%container.name repo=%container.image.repository \
               priv=%container.privileged type=%container.type pod=%k8s.pod.name ns=%k8s.ns.name \
               cmd=%proc.cmdline file=%fd.name)";
    format!(
        r#"- rule: {SHELL_RULE}
  desc: a shell spawned in one of this test's containers
  condition: evt.type in (execve, execveat) and evt.dir=< and container.id != host and proc.name = sh and proc.cmdline contains "{tok}"
  output: "shell in container {out}"
  priority: WARNING
- rule: {ETC_RULE}
  desc: a file below /etc opened for writing in one of this test's containers
  condition: evt.type in (open, openat, openat2, creat) and evt.dir=< and evt.is_open_write=true and container.id != host and fd.name startswith /etc/ and fd.name contains "{tok}"
  output: "write below etc in container {out}"
  priority: ERROR
"#
    )
}

/// The test image as an OCI archive, for `ctr images import`.
fn image_archive(scratch: &Scratch) -> PathBuf {
    let archive = scratch.file("image.tar");
    podman::save_oci(common::image(), &archive);
    archive
}

/// A `ctr run -d` container, its task killed and the container removed on drop.
struct CtrContainer {
    address: PathBuf,
    ns: String,
    id: String,
}

impl CtrContainer {
    fn run(d: &Containerd, ns: &str, id: &str, extra: &[&str]) -> CtrContainer {
        let image = common::image();
        let out = d
            .ctr(ns)
            .args(["run", "-d"])
            .args(extra)
            .args([image, id, "sleep", "300"])
            .stdin(Stdio::null())
            .output()
            .expect("ctr run");
        common::ok(&out, "ctr run");
        CtrContainer {
            address: d.sock(),
            ns: ns.into(),
            id: id.into(),
        }
    }

    /// `ctr run --rm`: a short-lived container whose only process is `sh -c SCRIPT`; it is
    /// gone when this returns.
    fn run_once(d: &Containerd, ns: &str, id: &str, extra: &[&str], script: &str) -> CtrContainer {
        let out = d
            .ctr(ns)
            .args(["run", "--rm"])
            .args(extra)
            .args([common::image(), id, "sh", "-c", script])
            .stdin(Stdio::null())
            .output()
            .expect("ctr run --rm");
        common::ok(&out, "ctr run --rm");
        CtrContainer {
            address: d.sock(),
            ns: ns.into(),
            id: id.into(),
        }
    }

    fn ctr(&self) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.address)
            .args(["-n", &self.ns]);
        cmd
    }

    /// A shell reading /etc/passwd, then a shell writing a file below /etc.
    fn act(&self, tok: &str) {
        act_in(&self.address, &self.ns, &self.id, tok);
    }
}

/// Runs `sh -c SCRIPT` in container `id` (any container of the daemon, CRI ones too).
fn exec_in(address: &Path, ns: &str, id: &str, tag: &str, script: &str) {
    let out = Command::new("ctr")
        .arg("--address")
        .arg(address)
        .args([
            "-n",
            ns,
            "task",
            "exec",
            "--exec-id",
            tag,
            id,
            "sh",
            "-c",
            script,
        ])
        .stdin(Stdio::null())
        .output()
        .expect("ctr task exec");
    common::ok(&out, "ctr task exec");
}

/// A shell reading /etc/passwd, then a shell writing a file below /etc.
fn act_in(address: &Path, ns: &str, id: &str, tok: &str) {
    exec_in(
        address,
        ns,
        id,
        "shell",
        &format!("cat /etc/passwd # {tok}"),
    );
    exec_in(
        address,
        ns,
        id,
        "write",
        &format!("echo x > /etc/{tok}-written"),
    );
}

impl Drop for CtrContainer {
    fn drop(&mut self) {
        let _ = self.ctr().args(["task", "delete", "-f", &self.id]).output();
        let _ = self.ctr().args(["containers", "rm", &self.id]).output();
    }
}

/// Saker's config: the containerd engine on the socket's directory, so a restarted daemon's
/// new socket file is found again.
fn saker_config(scratch: &Scratch, containerd_dir: &Path) -> PathBuf {
    let path = scratch.file("saker.yaml");
    let text = format!(
        "container_engines:\n  containerd:\n    enabled: true\n    sockets: [\"{}\"]\n  cri:\n    enabled: false\n",
        containerd_dir.display()
    );
    std::fs::write(&path, text).expect("saker config");
    path
}

fn alert_for<'a>(alerts: &'a [Alert], rule: &str, id: &str) -> &'a Alert {
    alerts
        .iter()
        .find(|a| a.rule == rule && a.field("container.id").as_deref() == Some(&id[..12]))
        .unwrap_or_else(|| {
            let ours: Vec<_> = alerts
                .iter()
                .filter(|a| a.rule == SHELL_RULE || a.rule == ETC_RULE)
                .map(|a| &a.output)
                .collect();
            panic!("no '{rule}' alert for container {id}; alerts of the test: {ours:#?}")
        })
}

/// Both alerts of a container carry its metadata. A pod's container is named by its
/// `io.kubernetes.container.name` label (`<pod>-app` here), a plain ctr container by its id.
fn check(alerts: &[Alert], c: &CtrContainer, privileged: bool, pod: Option<(&str, &str)>) {
    for rule in [SHELL_RULE, ETC_RULE] {
        let a = alert_for(alerts, rule, &c.id);
        let f = |k: &str| a.field(k).unwrap_or_default();
        assert_eq!(f("container.id"), c.id[..12], "{rule}: container.id");
        let name = pod.map_or(c.id.clone(), |(p, _)| format!("{p}-app"));
        assert_eq!(f("container.name"), name, "{rule}: container.name");
        assert_eq!(f("container.image.repository"), IMAGE_REPO, "{rule}");
        assert_eq!(
            f("container.privileged"),
            privileged.to_string(),
            "{rule}: container.privileged of {}",
            c.id
        );
        assert_eq!(f("container.type"), "containerd", "{rule}");
        let (pod_name, pod_ns) = pod.unwrap_or(("", ""));
        assert_eq!(f("k8s.pod.name"), pod_name, "{rule}: k8s.pod.name");
        assert_eq!(f("k8s.ns.name"), pod_ns, "{rule}: k8s.ns.name");
    }
}

/// Fails without root; skips when containerd is absent, except in CI and `make test`.
fn skip(test: &str) -> bool {
    common::require_live(test);
    common::skip_without_tools(test, &["containerd", "ctr", "podman"])
}

/// A container id: unique in its first 12 characters (container.id) within a test.
fn ctr_id(kind: &str, tok: &str) -> String {
    let id = format!("{kind}-{tok}");
    id[..id.len().min(64)].to_string()
}

fn pod_labels(pod: &str, ns: &str) -> Vec<String> {
    vec![
        "--label".into(),
        format!("io.kubernetes.pod.name={pod}"),
        "--label".into(),
        format!("io.kubernetes.pod.namespace={ns}"),
        "--label".into(),
        format!("io.kubernetes.pod.uid=uid-{pod}"),
        "--label".into(),
        format!("io.kubernetes.container.name={pod}-app"),
    ]
}

#[test]
#[ignore = "needs root"]
fn alerts_carry_containerd_metadata() {
    if skip("alerts_carry_containerd_metadata") {
        return;
    }
    let _guard = common::probe_lock();
    let tok = common::token("ctrd");
    let scratch = Scratch::new(&tok);
    let rules_file = scratch.file("rules.yaml");
    std::fs::write(&rules_file, rules(&tok)).expect("write rules");
    let archive = image_archive(&scratch);
    let cd_dir = scratch.file("containerd");
    let daemon = Containerd::start(&cd_dir, Mode::Native);
    for ns in ["default", "k8s.io"] {
        daemon.import_image(ns, &archive);
    }
    let config = saker_config(&scratch, &cd_dir);

    // In the Kubernetes namespace with pod labels, as the CRI plugin labels containers.
    let pod_args = pod_labels("mypod", "myns");
    let pod_args: Vec<&str> = pod_args.iter().map(String::as_str).collect();
    let plain = CtrContainer::run(&daemon, "k8s.io", &ctr_id("plain", &tok), &pod_args);
    let privileged = CtrContainer::run(
        &daemon,
        "default",
        &ctr_id("privd", &tok),
        &["--privileged"],
    );

    let saker = Saker::start(&[
        "-c".as_ref(),
        config.as_os_str(),
        "-r".as_ref(),
        rules_file.as_os_str(),
    ]);
    // Started while Saker runs: found through a request on its first exec.
    let late_args = pod_labels("latepod", "otherns");
    let late_args: Vec<&str> = late_args.iter().map(String::as_str).collect();
    let late = CtrContainer::run(&daemon, "k8s.io", &ctr_id("late", &tok), &late_args);
    std::thread::sleep(Duration::from_millis(1500));
    for c in [&plain, &privileged, &late] {
        c.act(&tok);
    }
    // Short-lived: its shell writes below /etc and exits at once, and the container is
    // removed; the create event has it inspected before its task starts.
    let brief_args = pod_labels("briefpod", "myns");
    let brief_args: Vec<&str> = brief_args.iter().map(String::as_str).collect();
    let brief = CtrContainer::run_once(
        &daemon,
        "k8s.io",
        &ctr_id("brief", &tok),
        &brief_args,
        &format!("echo x > /etc/{tok}-written; cat /etc/passwd # {tok}"),
    );
    let alerts = saker.stop();

    check(&alerts, &brief, false, Some(("briefpod", "myns")));
    check(&alerts, &plain, false, Some(("mypod", "myns")));
    check(&alerts, &privileged, true, None);
    check(&alerts, &late, false, Some(("latepod", "otherns")));
    drop((plain, privileged, late, brief));
    drop(daemon);
}

#[test]
#[ignore = "needs root"]
fn containerd_restart_keeps_metadata_for_new_containers() {
    if skip("containerd_restart_keeps_metadata_for_new_containers") {
        return;
    }
    let _guard = common::probe_lock();
    let tok = common::token("ctrdrs");
    let scratch = Scratch::new(&tok);
    let rules_file = scratch.file("rules.yaml");
    std::fs::write(&rules_file, rules(&tok)).expect("write rules");
    let archive = image_archive(&scratch);
    let cd_dir = scratch.file("containerd");
    let mut daemon = Containerd::start(&cd_dir, Mode::Native);
    daemon.import_image("k8s.io", &archive);
    let config = saker_config(&scratch, &cd_dir);

    let saker = Saker::start(&[
        "-c".as_ref(),
        config.as_os_str(),
        "-r".as_ref(),
        rules_file.as_os_str(),
    ]);
    let before_args = pod_labels("beforepod", "myns");
    let before_args: Vec<&str> = before_args.iter().map(String::as_str).collect();
    let before = CtrContainer::run(&daemon, "k8s.io", &ctr_id("before", &tok), &before_args);
    std::thread::sleep(Duration::from_millis(1500));
    before.act(&tok);

    // The runtime goes away and comes back on the same socket path (a new socket file).
    daemon.restart();
    let after_args = pod_labels("afterpod", "myns");
    let after_args: Vec<&str> = after_args.iter().map(String::as_str).collect();
    let after = CtrContainer::run(&daemon, "k8s.io", &ctr_id("after", &tok), &after_args);
    std::thread::sleep(Duration::from_millis(1500));
    after.act(&tok);
    let alerts = saker.stop();

    check(&alerts, &before, false, Some(("beforepod", "myns")));
    check(&alerts, &after, false, Some(("afterpod", "myns")));
    drop((before, after));
    drop(daemon);
}

// ---------------------------------------------------------------------------------------------
// CRI: a pod run through containerd's CRI plugin, as the kubelet runs it
// ---------------------------------------------------------------------------------------------

const PAUSE_IMAGE: &str = "localhost/saker-rstest-pause:1";

#[test]
#[ignore = "needs root"]
fn alerts_carry_cri_pod_metadata() {
    if skip("alerts_carry_cri_pod_metadata") {
        return;
    }
    let _guard = common::probe_lock();
    let tok = common::token("cri");
    let scratch = Scratch::new(&tok);
    let rules_file = scratch.file("rules.yaml");
    std::fs::write(&rules_file, rules(&tok)).expect("write rules");
    let archive = podman::sandbox_archive(&scratch.path, PAUSE_IMAGE);
    let cd_dir = scratch.file("containerd");
    let daemon = Containerd::start(
        &cd_dir,
        Mode::Cri {
            sandbox_image: PAUSE_IMAGE.into(),
        },
    );
    daemon.import_image("k8s.io", &archive);
    let sock = daemon.sock();
    // Only the CRI engine: the metadata must come from the runtime service.
    let config = scratch.file("saker.yaml");
    std::fs::write(
        &config,
        format!(
            "container_engines:\n  containerd:\n    enabled: false\n  cri:\n    enabled: true\n    sockets: [\"{}\"]\n",
            cd_dir.display()
        ),
    )
    .expect("saker config");
    let saker = Saker::start(&[
        "-c".as_ref(),
        config.as_os_str(),
        "-r".as_ref(),
        rules_file.as_os_str(),
    ]);
    let uid = format!("uid-{}", &tok[tok.len().saturating_sub(20)..]);
    let pod = Pod::run(&daemon, &uid, PAUSE_IMAGE);
    let (app, admin) = (pod.app.clone(), pod.admin.clone());
    std::thread::sleep(Duration::from_millis(1500));
    for id in [&app, &admin] {
        act_in(&sock, "k8s.io", id, &tok);
    }
    let alerts = saker.stop();

    for (id, name, privileged) in [(&app, "app", false), (&admin, "admin", true)] {
        for rule in [SHELL_RULE, ETC_RULE] {
            let a = alert_for(&alerts, rule, id);
            let f = |k: &str| a.field(k).unwrap_or_default();
            assert_eq!(f("container.name"), name, "{rule}");
            assert_eq!(
                f("container.image.repository"),
                "localhost/saker-rstest-pause"
            );
            assert_eq!(
                f("container.privileged"),
                privileged.to_string(),
                "{rule}: {name}"
            );
            assert_eq!(f("container.type"), "containerd", "{rule}");
            assert_eq!(f("k8s.pod.name"), "web-0", "{rule}");
            assert_eq!(f("k8s.ns.name"), "shop", "{rule}");
        }
    }
    drop(pod);
    drop(daemon);
}
