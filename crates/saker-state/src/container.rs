//! Container metadata store, filled by a metadata fetcher (docker/CRI) or by
//! container events in captures. Extraction reads it when present.

pub use saker_types::{ContainerMeta, Mount};

/// Runtime name of a scap/plugin container type code.
fn runtime_name(code: u64) -> &'static str {
    match code {
        0 => "docker",
        1 => "lxc",
        2 => "libvirt-lxc",
        3 => "mesos",
        4 => "rkt",
        6 => "cri",
        7 => "containerd",
        8 => "cri-o",
        9 => "bpm",
        10 => "static",
        11 => "podman",
        _ => "custom",
    }
}

/// Parses the JSON of a container event (`{"container": {...}}`, as written by
/// libsinsp and the container plugin). Returns the id and its metadata.
pub fn meta_from_json(json: &[u8]) -> Option<(String, ContainerMeta)> {
    use serde_json::Value as J;
    let root: J = serde_json::from_slice(json).ok()?;
    let c = root.get("container")?;
    let s = |k: &str| c.get(k).and_then(J::as_str).unwrap_or("").to_string();
    let b = |k: &str| c.get(k).and_then(J::as_bool);
    let pairs = |v: Option<&J>| -> Vec<(String, String)> {
        v.and_then(J::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let id = s("id");
    if id.is_empty() {
        return None;
    }
    let labels = pairs(c.get("labels"));
    let label = |k: &str| {
        labels
            .iter()
            .find(|(lk, _)| lk == k)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    let mounts = c
        .get("Mounts")
        .and_then(J::as_array)
        .map(|a| {
            a.iter()
                .map(|m| Mount {
                    source: m.get("Source").and_then(J::as_str).unwrap_or("").into(),
                    dest: m
                        .get("Destination")
                        .and_then(J::as_str)
                        .unwrap_or("")
                        .into(),
                    mode: m.get("Mode").and_then(J::as_str).unwrap_or("").into(),
                    rdwr: m.get("RW").and_then(J::as_bool).unwrap_or(false),
                    propagation: m
                        .get("Propagation")
                        .and_then(J::as_str)
                        .unwrap_or("")
                        .into(),
                })
                .collect()
        })
        .unwrap_or_default();
    let meta = ContainerMeta {
        full_id: if s("full_id").is_empty() {
            id.clone()
        } else {
            s("full_id")
        },
        runtime: runtime_name(c.get("type").and_then(J::as_u64).unwrap_or(5)).into(),
        name: s("name"),
        image: s("image"),
        image_id: s("imageid"),
        image_repository: s("imagerepo"),
        image_tag: s("imagetag"),
        image_digest: s("imagedigest"),
        privileged: b("privileged"),
        mounts,
        start_ts: c.get("created_time").and_then(J::as_u64).unwrap_or(0) * 1_000_000_000,
        ip: s("ip"),
        cni_json: s("cni_json"),
        host_pid: b("host_pid"),
        host_network: b("host_network"),
        host_ipc: b("host_ipc"),
        pod_name: label("io.kubernetes.pod.name"),
        pod_namespace: label("io.kubernetes.pod.namespace"),
        pod_uid: label("io.kubernetes.pod.uid"),
        pod_sandbox_id: s("pod_sandbox_id"),
        pod_labels: pairs(c.get("pod_sandbox_labels")),
        labels,
        ..ContainerMeta::default()
    };
    Some((id, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn container_json_is_parsed() {
        let j = br#"{"container":{"id":"3f1e2d4c5b6a","type":7,"name":"web","image":"nginx:1.25",
            "imagerepo":"docker.io/library/nginx","imagetag":"1.25","privileged":true,"created_time":1700000000,
            "labels":{"io.kubernetes.pod.name":"web-0","io.kubernetes.pod.namespace":"prod"},
            "Mounts":[{"Source":"/var/run/docker.sock","Destination":"/var/run/docker.sock","Mode":"","RW":true,"Propagation":"rprivate"}]}}"#;
        let (id, m) = meta_from_json(j).unwrap();
        assert_eq!(id, "3f1e2d4c5b6a");
        assert_eq!(m.runtime, "containerd");
        assert_eq!(m.image_repository, "docker.io/library/nginx");
        assert_eq!(m.privileged, Some(true));
        assert_eq!(m.pod_name, "web-0");
        assert_eq!(m.pod_namespace, "prod");
        assert_eq!(m.start_ts, 1_700_000_000_000_000_000);
        assert_eq!(m.mounts[0].dest, "/var/run/docker.sock");
        assert!(meta_from_json(b"{}").is_none());
        assert!(meta_from_json(b"not json").is_none());
    }
}
