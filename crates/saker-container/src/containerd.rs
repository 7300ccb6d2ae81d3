//! containerd's native API: namespaces are listed, then the containers of each (`k8s.io` for
//! Kubernetes, `default` and others for `ctr`/nerdctl). A container record carries its image
//! name, labels (the CRI plugin writes `io.kubernetes.*` there), creation time and its OCI
//! spec as JSON, from which privileged, host namespaces and bind mounts are read.

use std::collections::HashMap;
use std::path::Path;

use containerd_client::services::v1::containers_client::ContainersClient;
use containerd_client::services::v1::namespaces_client::NamespacesClient;
use containerd_client::services::v1::{
    Container, GetContainerRequest, ListContainersRequest, ListNamespacesRequest,
};
use saker_types::{ContainerMeta, Mount};
use serde_json::Value as J;
use tonic::transport::Channel;

use crate::docker::split_image;
use crate::grpc::{tag, CallResult, Grpc, GrpcError};

/// Label the CRI plugin sets to tell pod sandboxes (`sandbox`) from app containers.
const KIND_LABEL: &str = "io.cri-containerd.kind";
const POD_UID_LABEL: &str = "io.kubernetes.pod.uid";

fn request<T>(msg: T, ns: &str) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    if let Ok(v) = ns.parse() {
        req.metadata_mut().insert("containerd-namespace", v);
    }
    req
}

async fn namespaces(ch: Channel) -> CallResult<Vec<String>> {
    let r = NamespacesClient::new(ch)
        .list(ListNamespacesRequest::default())
        .await;
    Ok(tag("namespaces.List", r)?
        .namespaces
        .into_iter()
        .map(|n| n.name)
        .collect())
}

async fn list_ns(ch: Channel, ns: String) -> CallResult<Vec<Container>> {
    let r = ContainersClient::new(ch)
        .list(request(ListContainersRequest { filters: vec![] }, &ns))
        .await;
    Ok(tag("containers.List", r)?.containers)
}

async fn list_all(ch: Channel) -> CallResult<Vec<ContainerMeta>> {
    let mut out = Vec::new();
    for ns in namespaces(ch.clone()).await? {
        let cs = list_ns(ch.clone(), ns).await?;
        let sandboxes: HashMap<&str, &Container> = cs
            .iter()
            .filter(|c| label(c, KIND_LABEL) == "sandbox")
            .filter_map(|c| c.labels.get(POD_UID_LABEL).map(|u| (u.as_str(), c)))
            .collect();
        for c in &cs {
            let sb = c
                .labels
                .get(POD_UID_LABEL)
                .and_then(|u| sandboxes.get(u.as_str()).copied());
            out.push(meta_from_container(c, sb));
        }
    }
    Ok(out)
}

async fn get(ch: Channel, id: String) -> CallResult<Option<ContainerMeta>> {
    for ns in namespaces(ch.clone()).await? {
        let r = ContainersClient::new(ch.clone())
            .get(request(GetContainerRequest { id: id.clone() }, &ns))
            .await;
        let c = match r {
            Ok(r) => r.into_inner().container,
            Err(s) if s.code() == tonic::Code::NotFound => continue,
            Err(s) => return Err(("containers.Get", s)),
        };
        let Some(c) = c else { continue };
        // A Kubernetes container's pod labels live on its sandbox, in the same namespace.
        let sandbox = match c.labels.get(POD_UID_LABEL) {
            Some(uid) if label(&c, KIND_LABEL) != "sandbox" => list_ns(ch.clone(), ns)
                .await?
                .into_iter()
                .find(|s| label(s, KIND_LABEL) == "sandbox" && label(s, POD_UID_LABEL) == uid),
            _ => None,
        };
        return Ok(Some(meta_from_container(&c, sandbox.as_ref())));
    }
    Ok(None)
}

/// Every container in every namespace.
pub fn list(g: &mut Grpc, sock: &Path) -> Result<Vec<ContainerMeta>, GrpcError> {
    g.call(sock, list_all)
}

/// One container by full id, searched in every namespace.
pub fn inspect(g: &mut Grpc, sock: &Path, id: &str) -> Result<Option<ContainerMeta>, GrpcError> {
    let id = id.to_string();
    g.call(sock, move |ch| get(ch, id))
}

fn label<'a>(c: &'a Container, k: &str) -> &'a str {
    c.labels.get(k).map_or("", String::as_str)
}

fn sorted(m: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort();
    v
}

/// Metadata from a container record and, for a Kubernetes container, its pod sandbox.
pub fn meta_from_container(c: &Container, sandbox: Option<&Container>) -> ContainerMeta {
    let (image_repository, image_tag, image_digest) = split_image(&c.image);
    let l = |k: &str| label(c, k).to_string();
    let name = [
        "io.kubernetes.container.name",
        "nerdctl/name",
        "io.containerd.container.name",
    ]
    .iter()
    .map(|k| label(c, k))
    .find(|v| !v.is_empty())
    .unwrap_or(&c.id)
    .to_string();
    let spec = c
        .spec
        .as_ref()
        .map(|a| spec_facts(&a.value))
        .unwrap_or_default();
    let start_ts = c.created_at.as_ref().map_or(0, |t| {
        u64::try_from(t.seconds).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.nanos).unwrap_or(0)
    });
    let sandbox_id = match sandbox {
        Some(s) => s.id.clone(),
        None if label(c, KIND_LABEL) == "sandbox" => c.id.clone(),
        None => l("io.kubernetes.sandbox.id"),
    };
    // Pod labels are the sandbox's own labels, without the runtime's bookkeeping ones.
    let pod_labels = sandbox
        .or(if label(c, KIND_LABEL) == "sandbox" {
            Some(c)
        } else {
            None
        })
        .map(|s| {
            sorted(&s.labels)
                .into_iter()
                .filter(|(k, _)| {
                    !k.starts_with("io.kubernetes.") && !k.starts_with("io.cri-containerd.")
                })
                .collect()
        })
        .unwrap_or_default();
    ContainerMeta {
        full_id: c.id.clone(),
        runtime: "containerd".into(),
        name,
        image: c.image.clone(),
        image_repository,
        image_tag,
        image_digest,
        privileged: spec.privileged,
        mounts: spec.mounts,
        labels: sorted(&c.labels),
        start_ts,
        host_pid: spec.host_pid,
        host_network: spec.host_network,
        host_ipc: spec.host_ipc,
        pod_name: l("io.kubernetes.pod.name"),
        pod_namespace: l("io.kubernetes.pod.namespace"),
        pod_uid: l(POD_UID_LABEL),
        pod_sandbox_id: sandbox_id[..sandbox_id.len().min(12)].to_string(),
        pod_labels,
        ..ContainerMeta::default()
    }
}

/// What an OCI runtime spec says about privilege, host namespaces and bind mounts.
#[derive(Debug, Default, PartialEq)]
pub struct SpecFacts {
    pub privileged: Option<bool>,
    pub host_pid: Option<bool>,
    pub host_network: Option<bool>,
    pub host_ipc: Option<bool>,
    pub mounts: Vec<Mount>,
}

/// Reads an OCI spec (JSON). A privileged container (`ctr run --privileged`, a privileged
/// pod) gets CAP_SYS_ADMIN in its bounding set and no masked paths; a default one has both
/// the reduced capability set and masked /proc entries.
pub fn spec_facts(json: &[u8]) -> SpecFacts {
    let Ok(spec) = serde_json::from_slice::<J>(json) else {
        return SpecFacts::default();
    };
    let strs = |v: Option<&J>| -> Vec<String> {
        v.and_then(J::as_array)
            .map(|a| a.iter().filter_map(J::as_str).map(str::to_string).collect())
            .unwrap_or_default()
    };
    let linux = spec.get("linux");
    let bounding = strs(
        spec.pointer("/process/capabilities/bounding")
            .or_else(|| spec.pointer("/process/capabilities/effective")),
    );
    let masked = strs(linux.and_then(|l| l.get("maskedPaths")));
    let privileged = bounding.iter().any(|c| c == "CAP_SYS_ADMIN") && masked.is_empty();
    // A namespace absent from the spec is shared with the host.
    let ns_types = linux
        .and_then(|l| l.get("namespaces"))
        .and_then(J::as_array)
        .map(|a| {
            a.iter()
                .filter(|n| n.get("path").and_then(J::as_str).unwrap_or("").is_empty())
                .filter_map(|n| n.get("type").and_then(J::as_str))
                .map(str::to_string)
                .collect::<Vec<_>>()
        });
    let host = |t: &str| ns_types.as_ref().map(|ts| !ts.iter().any(|x| x == t));
    let mounts = spec
        .get("mounts")
        .and_then(J::as_array)
        .map(|a| a.iter().filter_map(bind_mount).collect())
        .unwrap_or_default();
    SpecFacts {
        privileged: Some(privileged),
        host_pid: host("pid"),
        host_network: host("network"),
        host_ipc: host("ipc"),
        mounts,
    }
}

/// A bind mount of the spec as a container mount (the runtime's own /proc, /dev, ... are
/// not bind mounts and are left out, as the Docker API leaves them out).
fn bind_mount(m: &J) -> Option<Mount> {
    let st = |k: &str| m.get(k).and_then(J::as_str).unwrap_or("").to_string();
    let opts: Vec<&str> = m
        .get("options")
        .and_then(J::as_array)
        .map(|a| a.iter().filter_map(J::as_str).collect())
        .unwrap_or_default();
    let is_bind = st("type") == "bind" || opts.iter().any(|o| *o == "bind" || *o == "rbind");
    if !is_bind {
        return None;
    }
    let propagation = opts
        .iter()
        .find(|o| {
            matches!(
                **o,
                "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
            )
        })
        .map_or(String::new(), |o| o.to_string());
    Some(Mount {
        source: st("source"),
        dest: st("destination"),
        mode: String::new(),
        rdwr: !opts.contains(&"ro"),
        propagation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT_SPEC: &str = r#"{"process":{"capabilities":{"bounding":["CAP_CHOWN","CAP_KILL"]}},
        "mounts":[{"destination":"/proc","type":"proc","source":"proc"},
                  {"destination":"/data","type":"bind","source":"/srv/data","options":["rbind","ro","rprivate"]}],
        "linux":{"maskedPaths":["/proc/kcore"],"namespaces":[{"type":"pid"},{"type":"ipc"},{"type":"mount"},
                 {"type":"network","path":"/proc/1/ns/net"}]}}"#;
    const PRIV_SPEC: &str = r#"{"process":{"capabilities":{"bounding":["CAP_CHOWN","CAP_SYS_ADMIN"]}},
        "linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"ipc"}]}}"#;

    fn container(id: &str, labels: &[(&str, &str)], spec: &str) -> Container {
        Container {
            id: id.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            image: "docker.io/library/busybox:1.36".into(),
            spec: Some(prost_types::Any {
                type_url: "types.containerd.io/opencontainers/runtime-spec/1/Spec".into(),
                value: spec.as_bytes().to_vec(),
            }),
            created_at: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 5,
            }),
            ..Container::default()
        }
    }

    #[test]
    fn spec_tells_privilege_namespaces_and_binds() {
        let d = spec_facts(DEFAULT_SPEC.as_bytes());
        assert_eq!(d.privileged, Some(false));
        assert_eq!(
            (d.host_pid, d.host_network, d.host_ipc),
            (Some(false), Some(true), Some(false))
        );
        assert_eq!(d.mounts.len(), 1);
        assert_eq!(
            ContainerMeta::mount_text(&d.mounts[0]),
            "/srv/data:/data::false:rprivate"
        );
        let p = spec_facts(PRIV_SPEC.as_bytes());
        assert_eq!(p.privileged, Some(true));
        assert_eq!(p.host_network, Some(false));
        assert_eq!(spec_facts(b"not json"), SpecFacts::default());
    }

    #[test]
    fn ctr_container_maps_to_meta() {
        let c = container("saker-ctrd-test-1", &[("app", "x")], PRIV_SPEC);
        let m = meta_from_container(&c, None);
        assert_eq!(m.full_id, "saker-ctrd-test-1");
        assert_eq!(m.name, "saker-ctrd-test-1");
        assert_eq!(m.runtime, "containerd");
        assert_eq!(
            (m.image_repository.as_str(), m.image_tag.as_str()),
            ("docker.io/library/busybox", "1.36")
        );
        assert_eq!(m.privileged, Some(true));
        assert_eq!(m.start_ts, 1_700_000_000_000_000_005);
        assert_eq!(m.label("app"), Some("x"));
        assert!(m.pod_name.is_empty() && m.pod_sandbox_id.is_empty());
    }

    #[test]
    fn kubernetes_container_takes_pod_labels_from_its_sandbox() {
        let sid = "cd".repeat(32);
        let sb = container(
            &sid,
            &[
                (KIND_LABEL, "sandbox"),
                (POD_UID_LABEL, "u-1"),
                ("io.kubernetes.pod.name", "web-0"),
                ("app", "web"),
            ],
            DEFAULT_SPEC,
        );
        let c = container(
            &"ab".repeat(32),
            &[
                (KIND_LABEL, "container"),
                (POD_UID_LABEL, "u-1"),
                ("io.kubernetes.pod.name", "web-0"),
                ("io.kubernetes.pod.namespace", "prod"),
                ("io.kubernetes.container.name", "nginx"),
            ],
            DEFAULT_SPEC,
        );
        let m = meta_from_container(&c, Some(&sb));
        assert_eq!(m.name, "nginx");
        assert_eq!(
            (
                m.pod_name.as_str(),
                m.pod_namespace.as_str(),
                m.pod_uid.as_str()
            ),
            ("web-0", "prod", "u-1")
        );
        assert_eq!(m.pod_sandbox_id, "cdcdcdcdcdcd");
        assert_eq!(m.pod_labels, vec![("app".to_string(), "web".to_string())]);
        assert_eq!(m.privileged, Some(false));
        // The sandbox itself is its own sandbox.
        let s = meta_from_container(&sb, None);
        assert_eq!(s.pod_sandbox_id, "cdcdcdcdcdcd");
        assert_eq!(s.pod_labels.len(), 1);
    }
}
