//! Live container metadata from containerd's native API: each test starts a private containerd
//! (own root, state and socket below a scratch directory), imports the test image into it and
//! runs containers with `ctr`. `saker run` is pointed at the socket's directory through
//! `container_engines.containerd` in a config file, and the alerts for a shell and for a
//! write below /etc inside the containers must carry container.* and k8s.* fields.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Alert, Saker, Scratch};

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

/// A private containerd, killed on drop. Containers must be dropped before it.
struct Containerd {
    dir: PathBuf,
    child: Option<Child>,
}

impl Containerd {
    fn sock(dir: &Path) -> PathBuf {
        dir.join("containerd.sock")
    }

    /// Starts containerd with root, state and sockets below `dir` and waits until it answers.
    fn start(dir: &Path) -> Containerd {
        std::fs::create_dir_all(dir).expect("containerd dir");
        let config = dir.join("config.toml");
        let d = dir.display();
        // The CRI plugin is not needed for the native API and would want CNI.
        let text = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
             [debug]\n  address = \"{d}/debug.sock\"\n"
        );
        // A test may have written its own config (the CRI test); a restart keeps it.
        if !config.exists() {
            std::fs::write(&config, text).expect("containerd config");
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("containerd.log"))
            .expect("containerd log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn containerd");
        let c = Containerd {
            dir: dir.to_path_buf(),
            child: Some(child),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = Command::new("ctr")
                .arg("--address")
                .arg(Containerd::sock(dir))
                .arg("version")
                .output()
                .is_ok_and(|o| o.status.success());
            if up {
                return c;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not answer within 30 s; log:\n{}",
                std::fs::read_to_string(dir.join("containerd.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn ctr(&self, ns: &str) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(Containerd::sock(&self.dir))
            .args(["-n", ns]);
        cmd
    }

    /// Imports the test image (built with podman from busybox-static) into namespace `ns`.
    fn import_image(&self, ns: &str, archive: &Path) {
        let out = self
            .ctr(ns)
            .args(["images", "import"])
            .arg(archive)
            .output()
            .expect("ctr images import");
        common::ok(&out, "ctr images import");
    }

    /// Stops the daemon and starts it again on the same socket path (a new socket file);
    /// running containers keep running under their shims meanwhile.
    fn restart(&mut self) {
        self.stop();
        std::thread::sleep(Duration::from_millis(500));
        let mut fresh = Containerd::start(&self.dir);
        self.child = fresh.child.take();
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The test image as an OCI archive, for `ctr images import`.
fn image_archive(scratch: &Scratch) -> PathBuf {
    let image = common::image();
    let archive = scratch.file("image.tar");
    let out = Command::new("podman")
        .args(["save", "--format", "oci-archive", "-o"])
        .arg(&archive)
        .arg(image)
        .output()
        .expect("podman save");
    common::ok(&out, "podman save");
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
            address: Containerd::sock(&d.dir),
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
            address: Containerd::sock(&d.dir),
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

/// Skips (with the reason) when the machine cannot run this test; CI must have containerd.
fn skip(test: &str) -> bool {
    if common::should_skip(test) {
        return true;
    }
    let have = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !(have("containerd") && have("ctr") && have("podman")) && std::env::var_os("CI").is_none() {
        eprintln!("SKIPPED {test}: containerd, ctr or podman is not installed");
        return true;
    }
    false
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
fn alerts_carry_containerd_metadata() {
    if skip("alerts_carry_containerd_metadata") {
        return;
    }
    let _guard = common::live_lock();
    let tok = common::token("ctrd");
    let scratch = Scratch::new(&tok);
    let rules_file = scratch.file("rules.yaml");
    std::fs::write(&rules_file, rules(&tok)).expect("write rules");
    let archive = image_archive(&scratch);
    let cd_dir = scratch.file("containerd");
    let daemon = Containerd::start(&cd_dir);
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
fn containerd_restart_keeps_metadata_for_new_containers() {
    if skip("containerd_restart_keeps_metadata_for_new_containers") {
        return;
    }
    let _guard = common::live_lock();
    let tok = common::token("ctrdrs");
    let scratch = Scratch::new(&tok);
    let rules_file = scratch.file("rules.yaml");
    std::fs::write(&rules_file, rules(&tok)).expect("write rules");
    let archive = image_archive(&scratch);
    let cd_dir = scratch.file("containerd");
    let mut daemon = Containerd::start(&cd_dir);
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

/// An OCI archive of a busybox image whose default command sleeps (the pod sandbox image).
fn pause_archive(scratch: &Scratch) -> PathBuf {
    let root = scratch.file("pause-rootfs");
    for sub in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).expect("rootfs dirs");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is installed");
    for a in ["sh", "sleep", "cat", "echo"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).expect("applet link");
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
    let tar = scratch.file("pause-rootfs.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .expect("tar");
    common::ok(&out, "tar");
    let out = Command::new("podman")
        .args(["import", "--change", "CMD [\"/bin/sleep\",\"100000\"]"])
        .arg(&tar)
        .arg(PAUSE_IMAGE)
        .output()
        .expect("podman import");
    common::ok(&out, "podman import");
    let archive = scratch.file("pause.tar");
    let out = Command::new("podman")
        .args(["save", "--format", "oci-archive", "-o"])
        .arg(&archive)
        .arg(PAUSE_IMAGE)
        .output()
        .expect("podman save");
    common::ok(&out, "podman save");
    archive
}

/// containerd's config with the CRI plugin: no CNI config (the pod uses the host network), and
/// `restrict_oom_score_adj` because root lacks CAP_SYS_RESOURCE here (no negative OOM scores).
fn write_cri_config(dir: &Path) {
    let d = dir.display();
    std::fs::create_dir_all(dir.join("cni")).expect("cni dir");
    let text = format!(
        "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
         [grpc]\n  address = \"{d}/containerd.sock\"\n\
         [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
         [debug]\n  address = \"{d}/debug.sock\"\n\
         [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"{PAUSE_IMAGE}\"\n  \
         stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n  \
         disable_apparmor = true\n  restrict_oom_score_adj = true\n\
         [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"/usr/lib/cni\"\n  \
         conf_dir = \"{d}/cni\"\n"
    );
    std::fs::write(dir.join("config.toml"), text).expect("containerd config");
}

mod cri_pod {
    use std::collections::HashMap;
    use std::path::Path;
    use std::time::Duration;

    use saker_container::grpc::Grpc;
    use saker_container::k8s_cri::v1 as cri;
    use saker_container::k8s_cri::v1::runtime_service_client::RuntimeServiceClient;

    use super::PAUSE_IMAGE;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn ns() -> cri::NamespaceOption {
        // Host network: no CNI needed. Pid and ipc stay the pod's.
        cri::NamespaceOption {
            network: 2,
            ..cri::NamespaceOption::default()
        }
    }

    /// Pod `web-0` in namespace `shop` with containers `app` and `admin` (privileged);
    /// returns (sandbox id, app id, admin id).
    pub fn run(sock: &Path, uid: &str) -> (String, String, String) {
        let mut g = Grpc::new(Duration::from_secs(60)).expect("grpc runtime");
        let uid = uid.to_string();
        let kubelet = move |extra: &[(&str, &str)]| {
            let mut m = map(&[
                ("io.kubernetes.pod.name", "web-0"),
                ("io.kubernetes.pod.namespace", "shop"),
                ("io.kubernetes.pod.uid", &uid),
            ]);
            m.extend(map(extra));
            m
        };
        let uid = kubelet(&[])["io.kubernetes.pod.uid"].clone();
        g.call(sock, move |ch| async move {
            let mut rs = RuntimeServiceClient::new(ch);
            let sandbox = cri::PodSandboxConfig {
                metadata: Some(cri::PodSandboxMetadata {
                    name: "web-0".into(),
                    uid: uid.clone(),
                    namespace: "shop".into(),
                    attempt: 0,
                }),
                labels: kubelet(&[("app", "web")]),
                linux: Some(cri::LinuxPodSandboxConfig {
                    cgroup_parent: format!("/kubepods/besteffort/pod{uid}"),
                    security_context: Some(cri::LinuxSandboxSecurityContext {
                        namespace_options: Some(ns()),
                        privileged: true,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                ..Default::default()
            };
            let pod = rs
                .run_pod_sandbox(cri::RunPodSandboxRequest {
                    config: Some(sandbox.clone()),
                    runtime_handler: String::new(),
                })
                .await
                .map_err(|e| ("RunPodSandbox", e))?
                .into_inner()
                .pod_sandbox_id;
            let mut ids = Vec::new();
            for (name, privileged) in [("app", false), ("admin", true)] {
                let config = cri::ContainerConfig {
                    metadata: Some(cri::ContainerMetadata {
                        name: name.into(),
                        attempt: 0,
                    }),
                    image: Some(cri::ImageSpec {
                        image: PAUSE_IMAGE.into(),
                        ..Default::default()
                    }),
                    command: vec!["/bin/sleep".into(), "300".into()],
                    labels: kubelet(&[("io.kubernetes.container.name", name)]),
                    linux: Some(cri::LinuxContainerConfig {
                        security_context: Some(cri::LinuxContainerSecurityContext {
                            privileged,
                            namespace_options: Some(ns()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                let id = rs
                    .create_container(cri::CreateContainerRequest {
                        pod_sandbox_id: pod.clone(),
                        config: Some(config),
                        sandbox_config: Some(sandbox.clone()),
                    })
                    .await
                    .map_err(|e| ("CreateContainer", e))?
                    .into_inner()
                    .container_id;
                rs.start_container(cri::StartContainerRequest {
                    container_id: id.clone(),
                })
                .await
                .map_err(|e| ("StartContainer", e))?;
                ids.push(id);
            }
            Ok((pod, ids[0].clone(), ids[1].clone()))
        })
        .unwrap_or_else(|e| panic!("running the pod over CRI: {e}"))
    }

    /// Stops and removes the pod and its containers.
    pub fn remove(sock: &Path, pod: &str) {
        let Ok(mut g) = Grpc::new(Duration::from_secs(60)) else {
            return;
        };
        let pod = pod.to_string();
        let _ = g.call(sock, move |ch| async move {
            let mut rs = RuntimeServiceClient::new(ch);
            rs.stop_pod_sandbox(cri::StopPodSandboxRequest {
                pod_sandbox_id: pod.clone(),
            })
            .await
            .map_err(|e| ("StopPodSandbox", e))?;
            rs.remove_pod_sandbox(cri::RemovePodSandboxRequest {
                pod_sandbox_id: pod,
            })
            .await
            .map_err(|e| ("RemovePodSandbox", e))?;
            Ok(())
        });
    }
}

/// Removes the pod on drop, before the daemon goes.
struct PodGuard<'a>(&'a Path, String);

impl Drop for PodGuard<'_> {
    fn drop(&mut self) {
        cri_pod::remove(self.0, &self.1);
    }
}

#[test]
fn alerts_carry_cri_pod_metadata() {
    if skip("alerts_carry_cri_pod_metadata") {
        return;
    }
    let _guard = common::live_lock();
    let tok = common::token("cri");
    let scratch = Scratch::new(&tok);
    let rules_file = scratch.file("rules.yaml");
    std::fs::write(&rules_file, rules(&tok)).expect("write rules");
    let archive = pause_archive(&scratch);
    let cd_dir = scratch.file("containerd");
    write_cri_config(&cd_dir);
    let daemon = Containerd::start(&cd_dir);
    daemon.import_image("k8s.io", &archive);
    let sock = Containerd::sock(&cd_dir);
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
    let (pod, app, admin) = cri_pod::run(&sock, &uid);
    let _pod = PodGuard(&sock, pod.clone());
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
    drop(_pod);
    drop(daemon);
}
