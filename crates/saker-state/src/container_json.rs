//! The inverse of [`crate::meta_from_json`]: a container event's JSON (`{"container":{…}}`, the
//! schema libsinsp and the container plugin write), so `saker capture` can record the metadata
//! live detection had and a replay of the file sees the same container fields.

use serde_json::{json, Map, Value};

use crate::ContainerMeta;

/// Container type code of a runtime name (the scap/plugin numbering).
fn runtime_code(name: &str) -> u64 {
    match name {
        "docker" => 0,
        "lxc" => 1,
        "libvirt-lxc" => 2,
        "mesos" => 3,
        "rkt" => 4,
        "cri" => 6,
        "containerd" => 7,
        "cri-o" => 8,
        "bpm" => 9,
        "static" => 10,
        "podman" => 11,
        _ => 5,
    }
}

fn pairs(l: &[(String, String)]) -> Value {
    Value::Object(
        l.iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

/// `{"container":{…}}` for `id` (the id the thread table uses: the full id).
pub fn meta_to_json(id: &str, m: &ContainerMeta) -> String {
    // Pod fields travel as the io.kubernetes.* labels they come from.
    let mut labels = m.labels.clone();
    for (k, v) in [
        ("io.kubernetes.pod.name", &m.pod_name),
        ("io.kubernetes.pod.namespace", &m.pod_namespace),
        ("io.kubernetes.pod.uid", &m.pod_uid),
    ] {
        if !v.is_empty() && !labels.iter().any(|(lk, _)| lk == k) {
            labels.push((k.to_string(), v.clone()));
        }
    }
    let mounts: Vec<Value> = m
        .mounts
        .iter()
        .map(|x| {
            json!({"Source": x.source, "Destination": x.dest, "Mode": x.mode, "RW": x.rdwr,
                   "Propagation": x.propagation})
        })
        .collect();
    let mut c = json!({
        "id": id,
        "full_id": m.full_id,
        "type": runtime_code(&m.runtime),
        "name": m.name,
        "image": m.image,
        "imageid": m.image_id,
        "imagerepo": m.image_repository,
        "imagetag": m.image_tag,
        "imagedigest": m.image_digest,
        "labels": pairs(&labels),
        "Mounts": mounts,
        "created_time": m.start_ts / 1_000_000_000,
        "ip": m.ip,
        "cni_json": m.cni_json,
        "pod_sandbox_id": m.pod_sandbox_id,
        "pod_sandbox_labels": pairs(&m.pod_labels),
    });
    let obj = c.as_object_mut().expect("a JSON object");
    for (k, v) in [
        ("privileged", m.privileged),
        ("host_pid", m.host_pid),
        ("host_network", m.host_network),
        ("host_ipc", m.host_ipc),
    ] {
        if let Some(b) = v {
            obj.insert(k.into(), Value::Bool(b));
        }
    }
    json!({ "container": c }).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{meta_from_json, Mount};

    #[test]
    fn json_round_trips_through_the_reader() {
        let m = ContainerMeta {
            full_id: "3f1e2d4c5b6a79881726354453627180a9b8c7d6e5f40312a1b2c3d4e5f60718".into(),
            runtime: "podman".into(),
            name: "web".into(),
            image: "localhost/web:2".into(),
            image_id: "sha256:ab".into(),
            image_repository: "localhost/web".into(),
            image_tag: "2".into(),
            image_digest: "sha256:cd".into(),
            privileged: Some(true),
            mounts: vec![Mount {
                source: "/var/run/docker.sock".into(),
                dest: "/var/run/docker.sock".into(),
                mode: "rw".into(),
                rdwr: true,
                propagation: "rprivate".into(),
            }],
            labels: vec![("app".into(), "web".into())],
            start_ts: 1_700_000_000_000_000_000,
            host_network: Some(false),
            pod_name: "web-0".into(),
            pod_namespace: "prod".into(),
            pod_uid: "u-1".into(),
            pod_sandbox_id: "5ea733068030aa".into(),
            pod_labels: vec![("tier".into(), "front".into())],
            ..ContainerMeta::default()
        };
        let j = meta_to_json(&m.full_id, &m);
        let (id, back) = meta_from_json(j.as_bytes()).expect("parses");
        assert_eq!(id, m.full_id);
        let mut want = m.clone();
        want.labels = vec![
            ("app".into(), "web".into()),
            ("io.kubernetes.pod.name".into(), "web-0".into()),
            ("io.kubernetes.pod.namespace".into(), "prod".into()),
            ("io.kubernetes.pod.uid".into(), "u-1".into()),
        ];
        let mut got = back;
        got.labels.sort();
        assert_eq!(got, want);
    }
}
