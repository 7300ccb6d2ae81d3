//! What container runtimes answer: Docker/Podman API JSON (inspect, list,
//! events) and raw HTTP responses, containerd and CRI gRPC messages, OCI specs.
//! The first byte picks the parser.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use prost::Message;
use saker_container::containerd_client::services::v1::{GetContainerResponse, ListContainersResponse};
use saker_container::k8s_cri::v1::{ContainerStatusResponse, PodSandboxStatusResponse};
use saker_container::{containerd, containerd_events, cri, docker, events, http};

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    match sel % 9 {
        0 => {
            let _ = docker::meta_from_inspect(rest, "docker");
        }
        1 => {
            let _ = docker::ids_from_list(rest);
        }
        2 => {
            let _ = events::created_id(rest);
        }
        3 => {
            if let Ok(r) = http::parse_response(rest) {
                let _ = docker::meta_from_inspect(&r.body, "podman");
            }
        }
        4 => {
            if let Ok(r) = GetContainerResponse::decode(rest) {
                if let Some(c) = r.container {
                    let _ = containerd::meta_from_container(&c, Some(&c));
                }
            }
        }
        5 => {
            if let Ok(r) = ListContainersResponse::decode(rest) {
                for c in &r.containers {
                    let _ = containerd::meta_from_container(c, None);
                }
            }
        }
        6 => {
            let _ = containerd_events::created_id(rest);
        }
        7 => {
            // A CRI status answer; its verbose info and a sandbox built from the same bytes.
            if let Ok(r) = ContainerStatusResponse::decode(rest) {
                let sb = PodSandboxStatusResponse::decode(rest).ok();
                if let Some(st) = &r.status {
                    let info: HashMap<String, String> = r.info.clone().into_iter().collect();
                    let _ = cri::meta_from_status(
                        "containerd",
                        st,
                        &info,
                        sb.as_ref().and_then(|s| s.status.as_ref()),
                    );
                }
            }
        }
        _ => {
            let _ = containerd::spec_facts(rest);
        }
    }
});
