//! A private containerd (own root, state and sockets below a scratch directory) and a pod run
//! through its CRI plugin as the kubelet runs one.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_cri::v1 as cri;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::Channel;

use crate::ok;

/// Which plugins the daemon runs.
pub enum Mode {
    /// The native API only: the CRI plugin would want CNI.
    Native,
    /// The CRI plugin with `sandbox_image` as pod sandbox, no CNI config (pods use the host
    /// network), and `restrict_oom_score_adj` because root lacks CAP_SYS_RESOURCE here.
    Cri { sandbox_image: String },
}

/// A private containerd, killed on drop. Containers must be removed before it goes.
pub struct Containerd {
    pub dir: PathBuf,
    child: Option<Child>,
}

impl Containerd {
    /// Starts containerd with everything below `dir` and waits until it answers.
    pub fn start(dir: &Path, mode: Mode) -> Containerd {
        std::fs::create_dir_all(dir).expect("containerd dir");
        let d = dir.display();
        let mut text = format!(
            "version = 2\nroot = \"{d}/root\"\nstate = \"{d}/state\"\n\
             [grpc]\n  address = \"{d}/containerd.sock\"\n\
             [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n\
             [debug]\n  address = \"{d}/debug.sock\"\n"
        );
        match mode {
            Mode::Native => {
                text = text.replacen(
                    "[grpc]",
                    "disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n[grpc]",
                    1,
                )
            }
            Mode::Cri { sandbox_image } => {
                std::fs::create_dir_all(dir.join("cni")).expect("cni dir");
                text.push_str(&format!(
                    "[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"{sandbox_image}\"\n  \
                     stream_server_address = \"127.0.0.1\"\n  stream_server_port = \"0\"\n  \
                     disable_apparmor = true\n  restrict_oom_score_adj = true\n\
                     [plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"/usr/lib/cni\"\n  \
                     conf_dir = \"{d}/cni\"\n"
                ));
            }
        }
        std::fs::write(dir.join("config.toml"), text).expect("containerd config");
        let mut c = Containerd {
            dir: dir.to_path_buf(),
            child: None,
        };
        c.spawn();
        c
    }

    fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("containerd log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(self.dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log fd"))
            .stderr(log)
            .spawn()
            .expect("spawn containerd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.ctr_raw(&["version"]).status.success() {
            assert!(
                Instant::now() < deadline,
                "containerd did not answer within 30 s; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn sock(&self) -> PathBuf {
        self.dir.join("containerd.sock")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.join("containerd.log")
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// A `ctr` command on this daemon in namespace `ns`.
    pub fn ctr(&self, ns: &str) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address").arg(self.sock()).args(["-n", ns]);
        cmd
    }

    fn ctr_raw(&self, args: &[&str]) -> Output {
        Command::new("ctr")
            .arg("--address")
            .arg(self.sock())
            .args(args)
            .output()
            .expect("ctr")
    }

    /// Imports an OCI archive into namespace `ns`.
    pub fn import_image(&self, ns: &str, archive: &Path) {
        let out = self
            .ctr(ns)
            .args(["images", "import"])
            .arg(archive)
            .output()
            .expect("ctr images import");
        ok(&out, "ctr images import");
    }

    /// Stops the daemon and starts it again on the same socket path (a new socket file);
    /// running containers keep running under their shims meanwhile.
    pub fn restart(&mut self) {
        self.stop();
        std::thread::sleep(Duration::from_millis(500));
        self.spawn();
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

fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Host network (no CNI needed); pid and ipc stay the pod's.
fn ns_options() -> cri::NamespaceOption {
    cri::NamespaceOption {
        network: cri::NamespaceMode::Node as i32,
        pid: cri::NamespaceMode::Pod as i32,
        ipc: cri::NamespaceMode::Pod as i32,
        ..cri::NamespaceOption::default()
    }
}

/// Pod `web-0` in namespace `shop` (label app=web), run through CRI like the kubelet runs it:
/// a privileged sandbox on the host network, an `app` container and a privileged `admin` one,
/// both running `image` with `sleep 300`. Removed on drop.
pub struct Pod {
    sock: PathBuf,
    pub id: String,
    pub app: String,
    pub admin: String,
    removed: bool,
}

impl Pod {
    pub fn run(d: &Containerd, uid: &str, image: &str) -> Pod {
        let sock = d.sock();
        let (id, app, admin) = block_on(&sock, |ch| run_pod(ch, uid, image)).unwrap_or_else(|e| {
            let log = d.log();
            let problems: Vec<&str> = log
                .lines()
                .filter(|l| l.contains("level=error") || l.contains("level=warn"))
                .collect();
            panic!(
                "running the pod over CRI: {e}\ncontainerd log:\n{}",
                problems.join("\n")
            )
        });
        Pod {
            sock,
            id,
            app,
            admin,
            removed: false,
        }
    }

    /// Stops and removes the pod and its containers.
    pub fn remove(mut self) {
        self.removed = true;
        let id = self.id.clone();
        block_on(&self.sock, |ch| remove_pod(ch, id)).expect("removing the pod");
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        if !self.removed {
            let id = self.id.clone();
            let _ = block_on(&self.sock, |ch| remove_pod(ch, id));
        }
    }
}

fn block_on<T, F>(sock: &Path, f: impl FnOnce(Channel) -> F) -> Result<T, String>
where
    F: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(async {
        let ch = containerd_client::connect(sock)
            .await
            .map_err(|e| format!("connect to {}: {e}", sock.display()))?;
        f(ch).await.map_err(|e| e.to_string())
    })
}

async fn run_pod(
    ch: Channel,
    uid: &str,
    image: &str,
) -> Result<(String, String, String), tonic::Status> {
    let mut rs = RuntimeServiceClient::new(ch);
    // The labels the kubelet puts on the sandbox and on every container.
    let kubelet = |extra: &[(&str, &str)]| {
        let mut m = map(&[
            ("io.kubernetes.pod.name", "web-0"),
            ("io.kubernetes.pod.namespace", "shop"),
            ("io.kubernetes.pod.uid", uid),
        ]);
        m.extend(map(extra));
        m
    };
    // What `kubectl apply` leaves on a pod: its spec, with the app's liveness probe.
    let applied = r#"{"kind":"Pod","spec":{"containers":[{"name":"app","livenessProbe":{"exec":{"command":["cat","/etc/passwd"]}}}]}}"#;
    let sandbox = cri::PodSandboxConfig {
        metadata: Some(cri::PodSandboxMetadata {
            name: "web-0".into(),
            uid: uid.into(),
            namespace: "shop".into(),
            attempt: 0,
        }),
        labels: kubelet(&[("app", "web")]),
        annotations: map(&[("kubectl.kubernetes.io/last-applied-configuration", applied)]),
        linux: Some(cri::LinuxPodSandboxConfig {
            cgroup_parent: format!("/kubepods/besteffort/pod{uid}"),
            security_context: Some(cri::LinuxSandboxSecurityContext {
                namespace_options: Some(ns_options()),
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
        .await?
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
                image: image.into(),
                ..Default::default()
            }),
            command: vec!["/bin/sleep".into(), "300".into()],
            labels: kubelet(&[("io.kubernetes.container.name", name)]),
            linux: Some(cri::LinuxContainerConfig {
                security_context: Some(cri::LinuxContainerSecurityContext {
                    privileged,
                    namespace_options: Some(ns_options()),
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
            .await?
            .into_inner()
            .container_id;
        rs.start_container(cri::StartContainerRequest {
            container_id: id.clone(),
        })
        .await?;
        ids.push(id);
    }
    Ok((pod, ids[0].clone(), ids[1].clone()))
}

async fn remove_pod(ch: Channel, id: String) -> Result<(), tonic::Status> {
    let mut rs = RuntimeServiceClient::new(ch);
    rs.stop_pod_sandbox(cri::StopPodSandboxRequest {
        pod_sandbox_id: id.clone(),
    })
    .await?;
    rs.remove_pod_sandbox(cri::RemovePodSandboxRequest { pod_sandbox_id: id })
        .await?;
    Ok(())
}
