//! The Kubernetes CRI runtime service (`runtime.v1.RuntimeService`, served by containerd's CRI
//! plugin and by CRI-O): `ListContainers` for ids, then `ContainerStatus(verbose)` and the
//! `PodSandboxStatus` of its pod for one container's metadata.

use std::collections::HashMap;
use std::path::Path;

use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use k8s_cri::v1::{
    ContainerStatus, ContainerStatusRequest, ListContainersRequest, PodSandboxStatus,
    PodSandboxStatusRequest, VersionRequest,
};
use saker_types::{ContainerMeta, Mount};
use serde_json::Value as J;
use tonic::transport::Channel;

use crate::containerd::spec_facts;
use crate::docker::split_image;
use crate::grpc::{tag, CallResult, Grpc, GrpcError};

/// `NamespaceMode::NODE`: the pod shares the host's namespace.
const NS_NODE: i32 = 2;

async fn ids(ch: Channel) -> CallResult<Vec<String>> {
    let r = RuntimeServiceClient::new(ch)
        .list_containers(ListContainersRequest { filter: None })
        .await;
    Ok(tag("ListContainers", r)?
        .containers
        .into_iter()
        .map(|c| c.id)
        .collect())
}

async fn status(ch: Channel, id: String) -> CallResult<Option<ContainerMeta>> {
    let mut client = RuntimeServiceClient::new(ch);
    let version = tag(
        "Version",
        client
            .version(VersionRequest {
                version: "v1".into(),
            })
            .await,
    )?;
    let r = client
        .container_status(ContainerStatusRequest {
            container_id: id,
            verbose: true,
        })
        .await;
    let resp = match r {
        Ok(r) => r.into_inner(),
        Err(s) if s.code() == tonic::Code::NotFound => return Ok(None),
        Err(s) => return Err(("ContainerStatus", s)),
    };
    let Some(st) = resp.status else {
        return Ok(None);
    };
    let sandbox_id = resp
        .info
        .get("info")
        .and_then(|i| serde_json::from_str::<J>(i).ok())
        .and_then(|j| j.get("sandboxID").and_then(J::as_str).map(str::to_string))
        .unwrap_or_default();
    let sandbox = if sandbox_id.is_empty() {
        None
    } else {
        let r = client
            .pod_sandbox_status(PodSandboxStatusRequest {
                pod_sandbox_id: sandbox_id,
                verbose: false,
            })
            .await;
        match r {
            Ok(r) => r.into_inner().status,
            Err(s) if s.code() == tonic::Code::NotFound => None,
            Err(s) => return Err(("PodSandboxStatus", s)),
        }
    };
    Ok(Some(meta_from_status(
        &version.runtime_name,
        &st,
        &resp.info,
        sandbox.as_ref(),
    )))
}

/// Ids of the runtime's containers.
pub fn list_ids(g: &mut Grpc, sock: &Path) -> Result<Vec<String>, GrpcError> {
    g.call(sock, ids)
}

/// One container's metadata, with its pod's.
pub fn inspect(g: &mut Grpc, sock: &Path, id: &str) -> Result<Option<ContainerMeta>, GrpcError> {
    let id = id.to_string();
    g.call(sock, move |ch| status(ch, id))
}

fn sorted(m: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = m.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    v.sort();
    v
}

/// `container.type` for the runtime name a CRI server reports.
fn runtime_type(name: &str) -> String {
    match name {
        "cri-o" | "crio" => "cri-o".into(),
        "" => "cri".into(),
        n => n.to_string(),
    }
}

/// Builds metadata from a verbose `ContainerStatus` answer and the pod's sandbox status.
pub fn meta_from_status(
    runtime_name: &str,
    st: &ContainerStatus,
    info: &HashMap<String, String>,
    sandbox: Option<&PodSandboxStatus>,
) -> ContainerMeta {
    let verbose: J = info
        .get("info")
        .and_then(|i| serde_json::from_str(i).ok())
        .unwrap_or(J::Null);
    // The status image is an id when the runtime knows no tag; the annotations then name it.
    let status_image = st.image.as_ref().map_or("", |i| i.image.as_str());
    let image = [
        status_image,
        st.annotations
            .get("io.kubernetes.cri.image-name")
            .map_or("", String::as_str),
        st.annotations
            .get("io.kubernetes.cri-o.ImageName")
            .map_or("", String::as_str),
    ]
    .into_iter()
    .find(|i| !i.is_empty() && !i.starts_with("sha256:"))
    .unwrap_or(status_image)
    .to_string();
    let (image_repository, image_tag, mut image_digest) = split_image(&image);
    if image_digest.is_empty() {
        if let Some((_, d)) = st.image_ref.split_once('@') {
            image_digest = d.to_string();
        }
    }
    let image_id = [st.image_id.as_str(), st.image_ref.as_str(), status_image]
        .into_iter()
        .find(|i| i.starts_with("sha256:"))
        .map_or(String::new(), |i| {
            i.trim_start_matches("sha256:").to_string()
        });
    let spec = verbose
        .get("runtimeSpec")
        .and_then(|s| serde_json::to_vec(s).ok())
        .map(|s| spec_facts(&s))
        .unwrap_or_default();
    let privileged = [
        "/config/linux/security_context/privileged",
        "/runtimeSpec/linux/security_context/privileged",
        "/privileged",
    ]
    .iter()
    .find_map(|p| verbose.pointer(p).and_then(J::as_bool))
    .or(spec.privileged);
    let mounts = st
        .mounts
        .iter()
        .map(|m| Mount {
            source: m.host_path.clone(),
            dest: m.container_path.clone(),
            mode: String::new(),
            rdwr: !m.readonly,
            propagation: match m.propagation {
                1 => "rslave",
                2 => "rshared",
                _ => "rprivate",
            }
            .into(),
        })
        .collect();
    let mut labels = sorted(&st.labels);
    let md = sandbox.and_then(|s| s.metadata.as_ref());
    let sandbox_id = sandbox.map_or("", |s| s.id.as_str());
    // As Falco's container plugin does: the pod's identity goes into the container labels.
    for (k, v) in [
        ("io.kubernetes.pod.name", md.map_or("", |m| m.name.as_str())),
        (
            "io.kubernetes.pod.namespace",
            md.map_or("", |m| m.namespace.as_str()),
        ),
        ("io.kubernetes.pod.uid", md.map_or("", |m| m.uid.as_str())),
        ("io.kubernetes.sandbox.id", sandbox_id),
    ] {
        if !v.is_empty() && !labels.iter().any(|(lk, _)| lk == k) {
            labels.push((k.to_string(), v.to_string()));
        }
    }
    labels.sort();
    let label = |k: &str| {
        labels
            .iter()
            .find(|(lk, _)| lk == k)
            .map_or(String::new(), |(_, v)| v.clone())
    };
    let ns_opts = sandbox
        .and_then(|s| s.linux.as_ref())
        .and_then(|l| l.namespaces.as_ref())
        .and_then(|n| n.options.as_ref());
    let host_ns = |f: fn(&k8s_cri::v1::NamespaceOption) -> i32| ns_opts.map(|o| f(o) == NS_NODE);
    let container_name = st
        .metadata
        .as_ref()
        .map_or(String::new(), |m| m.name.clone());
    let (liveness_probe, readiness_probe) = sandbox
        .and_then(|s| s.annotations.get(crate::probes::LAST_APPLIED))
        .map(|j| crate::probes::exec_probes(j, &container_name))
        .unwrap_or_default();
    let pod_ip = sandbox
        .and_then(|s| s.network.as_ref())
        .map_or(String::new(), |n| n.ip.clone());
    ContainerMeta {
        full_id: st.id.clone(),
        runtime: runtime_type(runtime_name),
        name: container_name,
        liveness_probe,
        readiness_probe,
        image_id,
        image,
        image_repository,
        image_tag,
        image_digest,
        privileged,
        mounts,
        start_ts: u64::try_from(st.created_at).unwrap_or(0),
        ip: pod_ip.clone(),
        host_pid: host_ns(|o| o.pid).or(spec.host_pid),
        host_network: host_ns(|o| o.network).or(spec.host_network),
        host_ipc: host_ns(|o| o.ipc).or(spec.host_ipc),
        pod_name: label("io.kubernetes.pod.name"),
        pod_namespace: label("io.kubernetes.pod.namespace"),
        pod_uid: label("io.kubernetes.pod.uid"),
        pod_sandbox_id: sandbox_id[..sandbox_id.len().min(12)].to_string(),
        // The pod's own labels, without the ones the kubelet adds to every sandbox.
        pod_labels: sandbox
            .map(|s| {
                sorted(&s.labels)
                    .into_iter()
                    .filter(|(k, _)| !k.starts_with("io.kubernetes."))
                    .collect()
            })
            .unwrap_or_default(),
        pod_ip,
        labels,
        ..ContainerMeta::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_cri::v1::{
        ContainerMetadata, ImageSpec, LinuxPodSandboxStatus, Namespace, NamespaceOption,
        PodSandboxMetadata, PodSandboxNetworkStatus,
    };

    #[test]
    fn status_and_sandbox_map_to_meta() {
        let id = "ab".repeat(32);
        let sid = "cd".repeat(32);
        let st = ContainerStatus {
            id: id.clone(),
            metadata: Some(ContainerMetadata {
                name: "nginx".into(),
                attempt: 0,
            }),
            image: Some(ImageSpec {
                image: "sha256:0123".into(),
                ..ImageSpec::default()
            }),
            image_ref: "docker.io/library/nginx@sha256:feed".into(),
            created_at: 1_700_000_000_000_000_007,
            annotations: [(
                "io.kubernetes.cri.image-name".to_string(),
                "docker.io/library/nginx:1.25".to_string(),
            )]
            .into(),
            mounts: vec![k8s_cri::v1::Mount {
                container_path: "/data".into(),
                host_path: "/srv".into(),
                readonly: true,
                propagation: 1,
                ..k8s_cri::v1::Mount::default()
            }],
            ..ContainerStatus::default()
        };
        let info: HashMap<String, String> = [(
            "info".to_string(),
            format!(r#"{{"sandboxID":"{sid}","config":{{"linux":{{"security_context":{{"privileged":true}}}}}}}}"#),
        )]
        .into();
        let sb = PodSandboxStatus {
            id: sid.clone(),
            metadata: Some(PodSandboxMetadata {
                name: "web-0".into(),
                uid: "u-1".into(),
                namespace: "prod".into(),
                attempt: 0,
            }),
            network: Some(PodSandboxNetworkStatus {
                ip: "10.1.2.3".into(),
                ..PodSandboxNetworkStatus::default()
            }),
            linux: Some(LinuxPodSandboxStatus {
                namespaces: Some(Namespace {
                    options: Some(NamespaceOption {
                        network: NS_NODE,
                        ..NamespaceOption::default()
                    }),
                }),
            }),
            annotations: [(
                crate::probes::LAST_APPLIED.to_string(),
                r#"{"spec":{"containers":[{"name":"nginx","livenessProbe":{"exec":{"command":["cat","/ok"]}}}]}}"#
                    .to_string(),
            )]
            .into(),
            labels: [
                ("app".to_string(), "web".to_string()),
                ("io.kubernetes.pod.uid".to_string(), "u-1".to_string()),
            ]
            .into(),
            ..PodSandboxStatus::default()
        };
        let m = meta_from_status("containerd", &st, &info, Some(&sb));
        assert_eq!(m.full_id, id);
        assert_eq!(m.name, "nginx");
        assert_eq!(m.runtime, "containerd");
        assert_eq!(m.image, "docker.io/library/nginx:1.25");
        assert_eq!(
            (
                m.image_repository.as_str(),
                m.image_tag.as_str(),
                m.image_digest.as_str()
            ),
            ("docker.io/library/nginx", "1.25", "sha256:feed")
        );
        assert_eq!(m.image_id, "0123");
        assert_eq!(m.privileged, Some(true));
        assert_eq!(m.start_ts, 1_700_000_000_000_000_007);
        assert_eq!(
            ContainerMeta::mount_text(&m.mounts[0]),
            "/srv:/data::false:rslave"
        );
        assert_eq!(
            (m.pod_name.as_str(), m.pod_namespace.as_str()),
            ("web-0", "prod")
        );
        assert_eq!(m.pod_uid, "u-1");
        assert_eq!(m.pod_sandbox_id, "cdcdcdcdcdcd");
        assert_eq!(m.label("io.kubernetes.sandbox.id"), Some(sid.as_str()));
        assert_eq!(m.pod_labels, vec![("app".to_string(), "web".to_string())]);
        assert_eq!((m.host_network, m.host_pid), (Some(true), Some(false)));
        assert_eq!(m.pod_ip, "10.1.2.3");
        assert_eq!(
            (m.liveness_probe.as_str(), m.readiness_probe.as_str()),
            ("cat /ok", "")
        );
        // CRI-O names itself; a bare status without sandbox still maps.
        let bare = meta_from_status("cri-o", &st, &HashMap::new(), None);
        assert_eq!(bare.runtime, "cri-o");
        assert_eq!(bare.privileged, None);
        assert!(bare.pod_name.is_empty());
    }
}
