//! The CRI and native containerd clients against a real containerd with its CRI plugin: the
//! test starts a private containerd (own root, state and socket in a scratch directory, CNI
//! left unconfigured), imports a busybox image that sleeps as the pod sandbox image, and runs
//! a pod on the host network (no CNI needed) with a plain and a privileged container through
//! the CRI runtime service, as the kubelet would. The metadata watcher must then report both
//! containers with their pod, once through CRI and once through the native API.
//! `restrict_oom_score_adj`: root lacks CAP_SYS_RESOURCE here (machine notes), so the sandbox's
//! usual negative OOM score cannot be set.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use saker_container::{ContainerMeta, Watcher, WatcherConfig};
use saker_testkit::containerd::{Containerd, Mode, Pod};
use saker_testkit::{ok, podman, Scratch};

const IMAGE: &str = "localhost/saker-cri-pause:1";

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
#[ignore = "needs root"]
fn cri_and_native_clients_describe_a_pod() {
    let test = "cri_and_native_clients_describe_a_pod";
    saker_testkit::require_root(test);
    if saker_testkit::skip_without_tools(test, &["containerd", "ctr", "podman"]) {
        return;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let uid = format!("uid-{}-{nanos}", std::process::id());
    let scratch = Scratch::new(&format!("saker-cri-{uid}"));
    let archive = podman::sandbox_archive(&scratch.path, IMAGE);
    let cd_dir = scratch.file("containerd");
    let daemon = Containerd::start(
        &cd_dir,
        Mode::Cri {
            sandbox_image: IMAGE.into(),
        },
    );
    daemon.import_image("k8s.io", &archive);
    let sock = daemon.sock();
    let ctr = |args: &[&str]| daemon.ctr("k8s.io").args(args).output().expect("ctr");
    let pod = Pod::run(&daemon, &uid, IMAGE);

    // The container's cgroup is the kubepods layout the cgroup matcher knows.
    let ps = ctr(&["tasks", "ls"]);
    let pid = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .find(|l| l.starts_with(&pod.app))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
        .expect("task of the app container");
    let cgroups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).expect("cgroup file");
    let path = cgroups
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or_default();
    assert_eq!(
        path,
        format!("/kubepods/besteffort/pod{uid}/{}", pod.app),
        "cgroup of the app container"
    );
    let (id, runtime) =
        saker_state::paths::container_from_cgroup(path.as_bytes()).expect("a container cgroup");
    assert_eq!(id, pod.app.as_bytes());
    assert_eq!(runtime, saker_state::paths::Runtime::Cri);

    let ids = [pod.app.as_str(), pod.admin.as_str()];
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
                    saker_container::containerd::inspect(&mut g, &sock, &pod.app)
                } else {
                    saker_container::cri::inspect(&mut g, &sock, &pod.app)
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
    let pod_id = pod.id.clone();
    let (app, admin) = (pod.app.clone(), pod.admin.clone());
    pod.remove();

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
        &ctr(&[
            "containers",
            "create",
            "--label",
            "made=by-test",
            IMAGE,
            &created,
        ]),
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
    let _ = ctr(&["containers", "rm", &created]);
    eprintln!(
        "create to metadata (ctr start-up included): {} ms",
        t0.elapsed().as_millis()
    );
    let m = from_event.expect("metadata of a created container within 5 s");
    assert_eq!(m.label("made"), Some("by-test"));
    assert_eq!(m.image, IMAGE);

    for (how, got) in [("CRI", &via_cri), ("native", &via_native)] {
        assert_eq!(got.len(), 2, "{how}: metadata of both containers");
        check(&got[&app], "app", false, &pod_id, &uid);
        check(&got[&admin], "admin", true, &pod_id, &uid);
    }
    // The probe comes from the pod's annotations, which only CRI reports.
    assert_eq!(via_cri[&app].liveness_probe, "cat /etc/passwd");
    assert_eq!(via_cri[&admin].liveness_probe, "");
    // Only CRI knows the sandbox id first hand and puts it among the labels.
    assert_eq!(
        via_cri[&app].label("io.kubernetes.sandbox.id"),
        Some(pod_id.as_str())
    );
}
