//! The CRI and native containerd clients against a real containerd with its CRI plugin: the
//! test starts a private containerd (own root, state and socket in a scratch directory, CNI
//! left unconfigured), imports a busybox image that sleeps as the pod sandbox image, and runs
//! a pod on the host network (no CNI needed) with a plain and a privileged container through
//! the CRI runtime service, as the kubelet would. The metadata watcher must then report both
//! containers with their pod, once through CRI and once through the native API.
//! `restrict_oom_score_adj`: root lacks CAP_SYS_RESOURCE here (machine notes), so the sandbox's
//! usual negative OOM score cannot be set.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerConfig, ContainerMetadata, CreateContainerRequest, ImageSpec, LinuxContainerConfig,
    LinuxContainerSecurityContext, LinuxPodSandboxConfig, LinuxSandboxSecurityContext,
    NamespaceOption, PodSandboxConfig, PodSandboxMetadata, RemovePodSandboxRequest,
    RunPodSandboxRequest, StartContainerRequest, StopPodSandboxRequest,
};
use saker_container::{ContainerMeta, Watcher, WatcherConfig};
use tonic::transport::Channel;

const IMAGE: &str = "localhost/saker-cri-pause:1";
/// `NamespaceMode::NODE` / `POD`.
const NODE: i32 = 2;
const POD: i32 = 0;

fn skip() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !root {
        return Some("not running as root".into());
    }
    let have = |bin: &str| {
        Command::new(bin)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if !(have("containerd") && have("ctr") && have("podman")) && std::env::var_os("CI").is_none() {
        return Some("containerd, ctr or podman is not installed".into());
    }
    None
}

fn ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An OCI archive of a busybox image whose default command sleeps (the pod sandbox image).
fn image_archive(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for sub in ["bin", "etc", "tmp"] {
        std::fs::create_dir_all(root.join(sub)).expect("rootfs dirs");
    }
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("busybox-static is installed");
    for a in ["sh", "sleep", "cat"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).expect("applet link");
    }
    let tar = dir.join("rootfs.tar");
    let out = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .output()
        .expect("tar");
    ok(&out, "tar");
    let out = Command::new("podman")
        .args(["import", "--change", "CMD [\"/bin/sleep\",\"100000\"]"])
        .arg(&tar)
        .arg(IMAGE)
        .output()
        .expect("podman import");
    ok(&out, "podman import");
    let archive = dir.join("image.tar");
    let out = Command::new("podman")
        .args(["save", "--format", "oci-archive", "-o"])
        .arg(&archive)
        .arg(IMAGE)
        .output()
        .expect("podman save");
    ok(&out, "podman save");
    archive
}

/// containerd with the CRI plugin, killed on drop (after the pod is removed).
struct Containerd(Child);

impl Containerd {
    fn start(dir: &Path) -> Containerd {
        let d = dir.display();
        std::fs::create_dir_all(dir.join("cni")).expect("cni dir");
        let config = dir.join("config.toml");
        let text = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
             [debug]\n  address = \"{d}/debug.sock\"\n\
             [plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"{IMAGE}\"\n  \
             stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n  \
             disable_apparmor = true\n  restrict_oom_score_adj = true\n\
             [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"/usr/lib/cni\"\n  \
             conf_dir = \"{d}/cni\"\n"
        );
        std::fs::write(&config, text).expect("containerd config");
        let log = std::fs::File::create(dir.join("containerd.log")).expect("log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn containerd");
        let c = Containerd(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ctr(dir, &["version"]).status.success() {
            assert!(Instant::now() < deadline, "containerd did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ctr(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new("ctr")
        .arg("--address")
        .arg(dir.join("containerd.sock"))
        .args(args)
        .output()
        .expect("ctr")
}

fn ns_options() -> NamespaceOption {
    NamespaceOption {
        network: NODE,
        pid: POD,
        ipc: POD,
        ..NamespaceOption::default()
    }
}

fn labels(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

struct Pod {
    id: String,
    plain: String,
    privileged: String,
}

/// Runs a pod (privileged sandbox on the host network) with an `app` and an `admin` container.
async fn run_pod(ch: Channel, uid: &str) -> Result<Pod, tonic::Status> {
    let mut rs = RuntimeServiceClient::new(ch);
    let sandbox = PodSandboxConfig {
        metadata: Some(PodSandboxMetadata {
            name: "web-0".into(),
            uid: uid.into(),
            namespace: "shop".into(),
            attempt: 0,
        }),
        // The pod's own label, and the ones the kubelet adds.
        labels: labels(&[
            ("app", "web"),
            ("io.kubernetes.pod.name", "web-0"),
            ("io.kubernetes.pod.namespace", "shop"),
            ("io.kubernetes.pod.uid", uid),
        ]),
        // What `kubectl apply` leaves on a pod: its spec, with the app's liveness probe.
        annotations: labels(&[(
            saker_container::probes::LAST_APPLIED,
            r#"{"kind":"Pod","spec":{"containers":[{"name":"app","livenessProbe":{"exec":{"command":["cat","/etc/passwd"]}}}]}}"#,
        )]),
        linux: Some(LinuxPodSandboxConfig {
            cgroup_parent: format!("/kubepods/besteffort/pod{uid}"),
            security_context: Some(LinuxSandboxSecurityContext {
                namespace_options: Some(ns_options()),
                privileged: true,
                ..LinuxSandboxSecurityContext::default()
            }),
            ..LinuxPodSandboxConfig::default()
        }),
        ..PodSandboxConfig::default()
    };
    let id = rs
        .run_pod_sandbox(RunPodSandboxRequest {
            config: Some(sandbox.clone()),
            runtime_handler: String::new(),
        })
        .await?
        .into_inner()
        .pod_sandbox_id;
    let mut ids = Vec::new();
    for (name, privileged) in [("app", false), ("admin", true)] {
        // The labels the kubelet puts on every container.
        let kubelet_labels = labels(&[
            ("io.kubernetes.container.name", name),
            ("io.kubernetes.pod.name", "web-0"),
            ("io.kubernetes.pod.namespace", "shop"),
            ("io.kubernetes.pod.uid", uid),
        ]);
        let config = ContainerConfig {
            metadata: Some(ContainerMetadata {
                name: name.into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: IMAGE.into(),
                ..ImageSpec::default()
            }),
            command: vec!["/bin/sleep".into(), "300".into()],
            labels: kubelet_labels,
            linux: Some(LinuxContainerConfig {
                security_context: Some(LinuxContainerSecurityContext {
                    privileged,
                    namespace_options: Some(ns_options()),
                    ..LinuxContainerSecurityContext::default()
                }),
                ..LinuxContainerConfig::default()
            }),
            ..ContainerConfig::default()
        };
        let cid = rs
            .create_container(CreateContainerRequest {
                pod_sandbox_id: id.clone(),
                config: Some(config),
                sandbox_config: Some(sandbox.clone()),
            })
            .await?
            .into_inner()
            .container_id;
        rs.start_container(StartContainerRequest {
            container_id: cid.clone(),
        })
        .await?;
        ids.push(cid);
    }
    Ok(Pod {
        id,
        privileged: ids.pop().unwrap_or_default(),
        plain: ids.pop().unwrap_or_default(),
    })
}

async fn remove_pod(ch: Channel, id: String) -> Result<(), tonic::Status> {
    let mut rs = RuntimeServiceClient::new(ch);
    rs.stop_pod_sandbox(StopPodSandboxRequest {
        pod_sandbox_id: id.clone(),
    })
    .await?;
    rs.remove_pod_sandbox(RemovePodSandboxRequest { pod_sandbox_id: id })
        .await?;
    Ok(())
}

/// Metadata the watcher reports for `ids` within 20 s.
fn collect(cfg: WatcherConfig, ids: &[&str]) -> HashMap<String, ContainerMeta> {
    let mut w = Watcher::start(cfg).expect("watcher");
    let mut got = HashMap::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while got.len() < ids.len() && Instant::now() < deadline {
        while let Some((id, meta)) = w.try_recv() {
            if ids.contains(&id.as_str()) {
                got.insert(id, meta);
            }
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    got
}

fn check(m: &ContainerMeta, name: &str, privileged: bool, pod_id: &str, uid: &str) {
    assert_eq!(m.name, name);
    assert_eq!(m.runtime, "containerd");
    assert_eq!(m.image, IMAGE, "image of {name}");
    assert_eq!(
        (m.image_repository.as_str(), m.image_tag.as_str()),
        ("localhost/saker-cri-pause", "1")
    );
    assert_eq!(m.privileged, Some(privileged), "privileged of {name}");
    assert_eq!(
        (
            m.pod_name.as_str(),
            m.pod_namespace.as_str(),
            m.pod_uid.as_str()
        ),
        ("web-0", "shop", uid)
    );
    assert_eq!(m.pod_sandbox_id, pod_id[..12], "sandbox id of {name}");
    assert_eq!(m.pod_labels, vec![("app".to_string(), "web".to_string())]);
    assert_eq!(m.host_network, Some(true), "host network of {name}");
    assert!(m.start_ts > 1_600_000_000_000_000_000, "start_ts of {name}");
}

#[test]
fn cri_and_native_clients_describe_a_pod() {
    if let Some(why) = skip() {
        eprintln!("SKIPPED cri_and_native_clients_describe_a_pod: {why}");
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let uid = format!("uid-{}-{nanos}", std::process::id());
    let scratch = Scratch(std::env::temp_dir().join(format!("saker-cri-{uid}")));
    let dir = scratch.0.clone();
    std::fs::create_dir_all(&dir).expect("scratch");
    let archive = image_archive(&dir);
    let cd_dir = dir.join("containerd");
    let _daemon = Containerd::start(&cd_dir);
    let archive_s = archive.to_string_lossy().into_owned();
    ok(
        &ctr(&cd_dir, &["-n", "k8s.io", "images", "import", &archive_s]),
        "ctr images import",
    );
    let sock = cd_dir.join("containerd.sock");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ch = rt
        .block_on(containerd_client::connect(&sock))
        .expect("connect");
    let pod = rt.block_on(run_pod(ch.clone(), &uid)).unwrap_or_else(|e| {
        panic!(
            "running the pod: {e}\ncontainerd log:\n{}",
            std::fs::read_to_string(cd_dir.join("containerd.log"))
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("level=error") || l.contains("level=warn"))
                .collect::<Vec<_>>()
                .join("\n")
        )
    });

    // The container's cgroup is the kubepods layout the cgroup matcher knows.
    let ps = ctr(&cd_dir, &["-n", "k8s.io", "tasks", "ls"]);
    let pid = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .find(|l| l.starts_with(&pod.plain))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        .expect("task of the app container");
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup file");
    let path = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_default();
    assert_eq!(
        path,
        format!("/kubepods/besteffort/pod{uid}/{}", pod.plain),
        "cgroup of the app container"
    );
    let (id, runtime) =
        saker_state::paths::container_from_cgroup(path.as_bytes()).expect("a container cgroup");
    assert_eq!(id, pod.plain.as_bytes());
    assert_eq!(runtime, saker_state::paths::Runtime::Cri);

    let ids = [pod.plain.as_str(), pod.privileged.as_str()];
    let via_cri = collect(
        WatcherConfig {
            docker_sockets: vec![],
            containerd_sockets: vec![],
            cri_sockets: vec![cd_dir.clone()],
            ..WatcherConfig::default()
        },
        &ids,
    );
    let via_native = collect(
        WatcherConfig {
            docker_sockets: vec![],
            containerd_sockets: vec![sock.clone()],
            cri_sockets: vec![],
            ..WatcherConfig::default()
        },
        &ids,
    );
    // One inspect per API, as the watcher does it on a request (median of 20).
    let mut g = saker_container::grpc::Grpc::new(Duration::from_secs(2)).expect("grpc");
    for (api, native) in [("CRI", false), ("native", true)] {
        let mut times: Vec<Duration> = (0..20)
            .map(|_| {
                let t = Instant::now();
                let m = if native {
                    saker_container::containerd::inspect(&mut g, &sock, &pod.plain)
                } else {
                    saker_container::cri::inspect(&mut g, &sock, &pod.plain)
                };
                assert!(
                    m.expect("inspect").is_some(),
                    "{api} inspect finds the container"
                );
                t.elapsed()
            })
            .collect();
        times.sort();
        eprintln!("{api} inspect: median {:?}, max {:?}", times[10], times[19]);
    }
    rt.block_on(remove_pod(ch, pod.id.clone()))
        .expect("removing the pod");

    // A container only created (no task, nobody asks for it) is reported from the create
    // event, long before the next rescan.
    let mut w = Watcher::start(WatcherConfig {
        docker_sockets: vec![],
        containerd_sockets: vec![cd_dir.clone()],
        cri_sockets: vec![],
        rescan: Duration::from_secs(600),
        ..WatcherConfig::default()
    })
    .expect("watcher");
    std::thread::sleep(Duration::from_millis(500));
    while w.try_recv().is_some() {}
    let created = format!("created-{uid}");
    let t0 = Instant::now();
    ok(
        &ctr(
            &cd_dir,
            &[
                "-n",
                "k8s.io",
                "containers",
                "create",
                "--label",
                "made=by-test",
                IMAGE,
                &created,
            ],
        ),
        "ctr containers create",
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut from_event = None;
    while from_event.is_none() && Instant::now() < deadline {
        while let Some((id, meta)) = w.try_recv() {
            if id == created {
                from_event = Some(meta);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = ctr(&cd_dir, &["-n", "k8s.io", "containers", "rm", &created]);
    eprintln!(
        "create to metadata (ctr start-up included): {} ms",
        t0.elapsed().as_millis()
    );
    let m = from_event.expect("metadata of a created container within 5 s");
    assert_eq!(m.label("made"), Some("by-test"));
    assert_eq!(m.image, IMAGE);

    for (how, got) in [("CRI", &via_cri), ("native", &via_native)] {
        assert_eq!(got.len(), 2, "{how}: metadata of both containers");
        check(&got[&pod.plain], "app", false, &pod.id, &uid);
        check(&got[&pod.privileged], "admin", true, &pod.id, &uid);
    }
    // The probe comes from the pod's annotations, which only CRI reports.
    assert_eq!(via_cri[&pod.plain].liveness_probe, "cat /etc/passwd");
    assert_eq!(via_cri[&pod.privileged].liveness_probe, "");
    // Only CRI knows the sandbox id first hand and puts it among the labels.
    assert_eq!(
        via_cri[&pod.plain].label("io.kubernetes.sandbox.id"),
        Some(pod.id.as_str())
    );
}
