//! containerd's event stream (`/containers/create`), so a container is inspected when it is
//! created, before its task starts: a short-lived `ctr run --rm` container may be gone by the
//! time its first process would have asked for it.
//!
//! One thread per configured socket path, each with its own small runtime (the stream waits
//! for as long as the daemon runs); it reconnects with a capped backoff, so a restarted daemon
//! is followed again.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::Duration;

use containerd_client::events::ContainerCreate;
use containerd_client::services::v1::events_client::EventsClient;
use containerd_client::services::v1::SubscribeRequest;
use prost::Message;

use crate::resolve_grpc_sockets;

const TOPIC_FILTER: &str = "topic==\"/containers/create\"";

/// Spawns one follower per socket path (a file or a directory, resolved on every reconnect).
/// Ids of created containers go to `ids`; a follower ends when `ids` is closed.
pub fn follow(paths: &[PathBuf], ids: Sender<String>) {
    for p in paths {
        let p = p.clone();
        let ids = ids.clone();
        let _ = std::thread::Builder::new()
            .name("saker-ctrd-events".into())
            .spawn(move || follow_one(&p, &ids));
    }
}

/// How a subscription ended.
enum End {
    /// The receiver is gone: stop following.
    Closed,
    /// The daemon went away or refused: try again later.
    Lost,
}

fn follow_one(configured: &Path, ids: &Sender<String>) {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    else {
        return;
    };
    let max = Duration::from_secs(5);
    let mut backoff = Duration::from_millis(200);
    loop {
        for sock in resolve_grpc_sockets(&[configured.to_path_buf()]) {
            match rt.block_on(subscribe(&sock, ids, &mut backoff)) {
                End::Closed => return,
                End::Lost => {}
            }
        }
        std::thread::sleep(backoff);
        backoff = (backoff * 2).min(max);
    }
}

async fn subscribe(sock: &Path, ids: &Sender<String>, backoff: &mut Duration) -> End {
    let Ok(ch) = containerd_client::connect(sock).await else {
        return End::Lost;
    };
    let req = SubscribeRequest {
        filters: vec![TOPIC_FILTER.into()],
    };
    let Ok(resp) = EventsClient::new(ch).subscribe(req).await else {
        return End::Lost;
    };
    *backoff = Duration::from_millis(200);
    let mut stream = resp.into_inner();
    while let Ok(Some(env)) = stream.message().await {
        let Some(id) = env.event.and_then(|any| created_id(&any.value)) else {
            continue;
        };
        if ids.send(id).is_err() {
            return End::Closed;
        }
    }
    End::Lost
}

/// The container id of a `/containers/create` event payload.
pub fn created_id(payload: &[u8]) -> Option<String> {
    let ev = ContainerCreate::decode(payload).ok()?;
    (!ev.id.is_empty()).then_some(ev.id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_payload_gives_the_id() {
        let ev = ContainerCreate {
            id: "web-1".into(),
            image: "docker.io/library/nginx:1".into(),
            runtime: None,
        };
        assert_eq!(created_id(&ev.encode_to_vec()).as_deref(), Some("web-1"));
        assert_eq!(
            created_id(&ContainerCreate::default().encode_to_vec()),
            None
        );
        assert_eq!(created_id(&[0xff, 0xff]), None);
    }
}
