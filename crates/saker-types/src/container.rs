//! Container metadata: filled by a runtime fetcher (saker-container) or by container
//! events in captures, read by the state engine's container.* / k8s.* fields.

/// One container mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mount {
    pub source: String,
    pub dest: String,
    pub mode: String,
    pub rdwr: bool,
    pub propagation: String,
}

/// What is known about one container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerMeta {
    pub full_id: String,
    /// `docker`, `containerd`, `cri-o`, `podman`, ...
    pub runtime: String,
    pub name: String,
    pub image: String,
    pub image_id: String,
    pub image_repository: String,
    pub image_tag: String,
    pub image_digest: String,
    pub privileged: Option<bool>,
    pub mounts: Vec<Mount>,
    pub labels: Vec<(String, String)>,
    /// ns since the epoch; 0 when unknown.
    pub start_ts: u64,
    pub ip: String,
    pub cni_json: String,
    pub host_pid: Option<bool>,
    pub host_network: Option<bool>,
    pub host_ipc: Option<bool>,
    pub healthcheck: String,
    pub liveness_probe: String,
    pub readiness_probe: String,
    pub pod_name: String,
    pub pod_namespace: String,
    pub pod_uid: String,
    pub pod_sandbox_id: String,
    pub pod_labels: Vec<(String, String)>,
    pub pod_ip: String,
    pub pod_cni_json: String,
}

impl ContainerMeta {
    pub fn label(&self, k: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(lk, _)| lk == k)
            .map(|(_, v)| v.as_str())
    }

    /// `source:dest:mode:rdwr:propagation` of one mount.
    pub fn mount_text(m: &Mount) -> String {
        format!(
            "{}:{}:{}:{}:{}",
            m.source, m.dest, m.mode, m.rdwr, m.propagation
        )
    }

    /// Finds a mount by index or by glob on its source path.
    pub fn find_mount(&self, idx: Option<u32>, key: Option<&str>) -> Option<&Mount> {
        if let Some(i) = idx {
            return self.mounts.get(i as usize);
        }
        let k = key?;
        self.mounts
            .iter()
            .find(|m| glob(k.as_bytes(), m.source.as_bytes()))
    }
}

/// `*`/`?` glob match (as container.mount.*[key] accepts).
pub fn glob(p: &[u8], s: &[u8]) -> bool {
    let (mut pi, mut si, mut star, mut mark) = (0, 0, None, 0);
    while si < s.len() {
        if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
            pi += 1;
            si += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            star = Some(pi);
            pi += 1;
            mark = si;
        } else if let Some(st) = star {
            pi = st + 1;
            mark += 1;
            si = mark;
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == b'*' {
        pi += 1;
    }
    pi == p.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_and_mount_lookup() {
        assert!(glob(b"/proc*", b"/proc/sys"));
        assert!(glob(b"/var/run/docker.sock", b"/var/run/docker.sock"));
        assert!(!glob(b"/proc*", b"/sys"));
        let m = ContainerMeta {
            mounts: vec![Mount {
                source: "/var/run/docker.sock".into(),
                dest: "/var/run/docker.sock".into(),
                mode: "".into(),
                rdwr: true,
                propagation: "rprivate".into(),
            }],
            ..Default::default()
        };
        assert_eq!(
            m.find_mount(None, Some("/var/run/docker.sock"))
                .unwrap()
                .dest,
            "/var/run/docker.sock"
        );
        assert!(m.find_mount(Some(1), None).is_none());
        assert_eq!(
            ContainerMeta::mount_text(&m.mounts[0]),
            "/var/run/docker.sock:/var/run/docker.sock::true:rprivate"
        );
    }
}
