//! Container metadata for live detection.
//!
//! A [`Watcher`] runs the runtime queries on its own thread so that the event loop never
//! waits on a socket: the loop calls [`Watcher::request`] for container ids it sees (cheap,
//! deduplicated) and drains [`Watcher::try_recv`] into `State::set_container_meta`.
//! The engines are reached through the Docker-compatible HTTP API over unix sockets (docker,
//! and podman's `podman system service`). Socket paths are resolved again on every attempt, so
//! a runtime that restarts (or whose socket appears later) is picked up without a restart.

pub mod docker;
pub mod http;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

pub use saker_state::ContainerMeta;

/// Environment variable with a `:`-separated list of sockets or socket directories; when set
/// it replaces the default list.
pub const SOCKETS_ENV: &str = "SAKER_CONTAINER_SOCKETS";

/// Socket file names looked up inside a configured directory.
const SOCKET_NAMES: [&str; 2] = ["podman.sock", "docker.sock"];

#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// Docker-compatible API sockets, or directories holding `podman.sock` / `docker.sock`.
    pub docker_sockets: Vec<PathBuf>,
    /// Inspect attempts per requested id before giving up (short-lived containers may not be
    /// registered yet when their first process runs).
    pub attempts: u32,
    /// Delay before the second attempt; doubled after each failure.
    pub first_backoff: Duration,
    /// Bound on one HTTP exchange.
    pub timeout: Duration,
    /// How often running containers are listed and the new ones inspected.
    pub rescan: Duration,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        WatcherConfig {
            docker_sockets: vec![
                "/run/podman/podman.sock".into(),
                "/var/run/docker.sock".into(),
            ],
            attempts: 6,
            first_backoff: Duration::from_millis(100),
            timeout: Duration::from_secs(2),
            rescan: Duration::from_secs(10),
        }
    }
}

impl WatcherConfig {
    /// The defaults, with the socket list taken from `SAKER_CONTAINER_SOCKETS` when set.
    pub fn from_env() -> Self {
        let mut cfg = WatcherConfig::default();
        if let Some(v) = std::env::var_os(SOCKETS_ENV) {
            cfg.docker_sockets = std::env::split_paths(&v)
                .filter(|p| !p.as_os_str().is_empty())
                .collect();
        }
        cfg
    }
}

/// The socket files that exist now for the configured paths.
pub fn resolve_sockets(configured: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in configured {
        if p.is_dir() {
            out.extend(
                SOCKET_NAMES
                    .iter()
                    .map(|n| p.join(n))
                    .filter(|s| s.exists()),
            );
        } else if p.exists() {
            out.push(p.clone());
        }
    }
    out.dedup();
    out
}

/// Engine name reported as `container.type` for a socket.
fn runtime_of(sock: &Path) -> &'static str {
    if sock.to_string_lossy().contains("podman") {
        "podman"
    } else {
        "docker"
    }
}

/// Handle to the metadata thread. Dropping it stops the thread.
pub struct Watcher {
    tx: Sender<String>,
    rx: Receiver<(String, ContainerMeta)>,
    requested: HashSet<Vec<u8>>,
}

impl Watcher {
    /// Starts the metadata thread; it lists the running containers right away.
    pub fn start(cfg: WatcherConfig) -> std::io::Result<Watcher> {
        let (tx, req_rx) = mpsc::channel::<String>();
        let (res_tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("saker-containers".into())
            .spawn(move || Worker::new(cfg, res_tx).run(req_rx))?;
        Ok(Watcher {
            tx,
            rx,
            requested: HashSet::new(),
        })
    }

    /// Asks for the metadata of a container (full or short id). Never blocks; an id already
    /// requested or answered is ignored.
    pub fn request(&mut self, id: impl AsRef<[u8]>) {
        let id = id.as_ref();
        if id.is_empty() || self.requested.contains(id) {
            return;
        }
        self.requested.insert(id.to_vec());
        // A send error means the thread is gone; there is nothing better to do than go on.
        let _ = self.tx.send(String::from_utf8_lossy(id).into_owned());
    }

    /// One answer, if any: (full id, metadata).
    pub fn try_recv(&mut self) -> Option<(String, ContainerMeta)> {
        let (id, meta) = self.rx.try_recv().ok()?;
        self.requested.insert(id.as_bytes().to_vec());
        Some((id, meta))
    }
}

struct Pending {
    id: String,
    attempt: u32,
    due: Instant,
}

struct Worker {
    cfg: WatcherConfig,
    out: Sender<(String, ContainerMeta)>,
    /// Full ids already sent.
    sent: HashSet<String>,
    pending: Vec<Pending>,
    next_scan: Instant,
}

impl Worker {
    fn new(cfg: WatcherConfig, out: Sender<(String, ContainerMeta)>) -> Worker {
        Worker {
            cfg,
            out,
            sent: HashSet::new(),
            pending: Vec::new(),
            next_scan: Instant::now(),
        }
    }

    fn run(mut self, req: Receiver<String>) {
        loop {
            let now = Instant::now();
            if now >= self.next_scan {
                self.scan();
                self.next_scan = Instant::now() + self.cfg.rescan;
            }
            self.retry_due();
            let wake = self
                .pending
                .iter()
                .map(|p| p.due)
                .chain([self.next_scan])
                .min()
                .unwrap_or(self.next_scan);
            match req.recv_timeout(wake.saturating_duration_since(Instant::now())) {
                Ok(id) => self.pending.push(Pending {
                    id,
                    attempt: 0,
                    due: Instant::now(),
                }),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return,
            }
        }
    }

    /// Lists containers (created ones too, so a container's first process
    /// already has metadata) on every socket and sends the ones not sent yet.
    fn scan(&mut self) {
        for sock in resolve_sockets(&self.cfg.docker_sockets) {
            let Ok(r) = http::get(&sock, "/containers/json?all=true", self.cfg.timeout) else {
                continue;
            };
            if r.status != 200 {
                continue;
            }
            for id in docker::ids_from_list(&r.body) {
                if !self.sent.contains(&id) {
                    self.inspect_on(&sock, &id);
                }
            }
        }
    }

    /// Inspects `id` on one socket; true when found and sent.
    fn inspect_on(&mut self, sock: &Path, id: &str) -> bool {
        // Ids are hex; anything else would not be a valid path segment.
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
        let uri = format!("/containers/{id}/json");
        let Ok(r) = http::get(sock, &uri, self.cfg.timeout) else {
            return false;
        };
        if r.status != 200 {
            return false;
        }
        let Some(meta) = docker::meta_from_inspect(&r.body, runtime_of(sock)) else {
            return false;
        };
        let full = meta.full_id.clone();
        self.sent.insert(full.clone());
        let _ = self.out.send((full, meta));
        true
    }

    fn retry_due(&mut self) {
        let now = Instant::now();
        let mut keep = Vec::with_capacity(self.pending.len());
        for mut p in std::mem::take(&mut self.pending) {
            if p.due > now {
                keep.push(p);
                continue;
            }
            if self.sent.contains(&p.id) {
                continue;
            }
            let socks = resolve_sockets(&self.cfg.docker_sockets);
            if socks.iter().any(|s| self.inspect_on(s, &p.id)) {
                continue;
            }
            p.attempt += 1;
            if p.attempt < self.cfg.attempts {
                p.due = now + self.cfg.first_backoff * 2u32.pow(p.attempt - 1);
                keep.push(p);
            }
        }
        keep.extend(std::mem::take(&mut self.pending));
        self.pending = keep;
    }
}
