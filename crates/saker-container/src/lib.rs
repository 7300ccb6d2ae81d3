//! Container metadata for live detection.
//!
//! A [`Watcher`] runs the runtime queries on its own thread so that the event loop never
//! waits on a socket: the loop calls [`Watcher::request`] for container ids it sees (cheap,
//! deduplicated) and drains [`Watcher::try_recv`] into `State::set_container_meta`.
//! The engines are reached over unix sockets: the Docker-compatible HTTP API (docker, and
//! podman's `podman system service`), the CRI runtime service (containerd, CRI-O) and
//! containerd's native API, the last two over gRPC from a small runtime inside the thread.
//! Socket paths are resolved again on every attempt, so a runtime that restarts (or whose
//! socket appears later) is picked up without a restart.

pub mod containerd;
pub mod containerd_events;
pub mod cri;
pub mod docker;
pub mod events;
pub mod grpc;
pub mod http;
pub mod probes;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

/// The generated gRPC clients, for callers (and live tests) that drive a runtime themselves
/// through [`grpc::Grpc::call`].
pub use containerd_client;
pub use k8s_cri;
pub use saker_types::ContainerMeta;

/// Environment variable with a `:`-separated list of sockets or socket directories; when set
/// it replaces the default list.
pub const SOCKETS_ENV: &str = "SAKER_CONTAINER_SOCKETS";

/// Like [`SOCKETS_ENV`], for containerd's native API.
pub const CONTAINERD_SOCKETS_ENV: &str = "SAKER_CONTAINERD_SOCKETS";
/// Like [`SOCKETS_ENV`], for the CRI runtime service.
pub const CRI_SOCKETS_ENV: &str = "SAKER_CRI_SOCKETS";

/// Socket file names looked up inside a configured directory, per API.
const SOCKET_NAMES: [&str; 2] = ["podman.sock", "docker.sock"];
const GRPC_SOCKET_NAMES: [&str; 2] = ["containerd.sock", "crio.sock"];

#[derive(Debug, Clone)]
pub struct WatcherConfig {
    /// Docker-compatible API sockets, or directories holding `podman.sock` / `docker.sock`.
    pub docker_sockets: Vec<PathBuf>,
    /// containerd native API sockets, or directories holding `containerd.sock`.
    pub containerd_sockets: Vec<PathBuf>,
    /// CRI runtime service sockets, or directories holding `containerd.sock` / `crio.sock`.
    pub cri_sockets: Vec<PathBuf>,
    /// Inspect attempts per requested id before giving up (short-lived containers may not be
    /// registered yet when their first process runs).
    pub attempts: u32,
    /// Delay before the second attempt; doubled after each failure.
    pub first_backoff: Duration,
    /// Bound on one HTTP exchange.
    pub timeout: Duration,
    /// How often running containers are listed and the new ones inspected.
    pub rescan: Duration,
    /// How long an id that no runtime knew is not asked about again (a runtime whose socket
    /// appears later, or a container registered late, is still found after this).
    pub unknown_retry: Duration,
}

impl Default for WatcherConfig {
    fn default() -> Self {
        WatcherConfig {
            docker_sockets: vec![
                "/run/podman/podman.sock".into(),
                "/var/run/docker.sock".into(),
            ],
            containerd_sockets: vec![
                "/run/containerd/containerd.sock".into(),
                "/run/host-containerd/containerd.sock".into(),
            ],
            cri_sockets: vec![
                "/run/containerd/containerd.sock".into(),
                "/run/crio/crio.sock".into(),
                "/run/k3s/containerd/containerd.sock".into(),
            ],
            attempts: 6,
            first_backoff: Duration::from_millis(100),
            timeout: Duration::from_secs(2),
            rescan: Duration::from_secs(10),
            unknown_retry: Duration::from_secs(30),
        }
    }
}

impl WatcherConfig {
    /// The defaults, with the socket lists taken from the environment where set.
    pub fn from_env() -> Self {
        let mut cfg = WatcherConfig::default();
        cfg.apply_env();
        cfg
    }

    /// Replaces each socket list whose variable (`SAKER_CONTAINER_SOCKETS`,
    /// `SAKER_CONTAINERD_SOCKETS`, `SAKER_CRI_SOCKETS`) is set; an empty value disables it.
    pub fn apply_env(&mut self) {
        for (var, list) in [
            (SOCKETS_ENV, &mut self.docker_sockets),
            (CONTAINERD_SOCKETS_ENV, &mut self.containerd_sockets),
            (CRI_SOCKETS_ENV, &mut self.cri_sockets),
        ] {
            if let Some(v) = std::env::var_os(var) {
                *list = std::env::split_paths(&v)
                    .filter(|p| !p.as_os_str().is_empty())
                    .collect();
            }
        }
    }
}

/// The socket files that exist now for the configured paths.
pub fn resolve_sockets(configured: &[PathBuf]) -> Vec<PathBuf> {
    resolve_named(configured, &SOCKET_NAMES)
}

/// Like [`resolve_sockets`], looking up the gRPC runtimes' socket names in directories.
pub fn resolve_grpc_sockets(configured: &[PathBuf]) -> Vec<PathBuf> {
    resolve_named(configured, &GRPC_SOCKET_NAMES)
}

fn resolve_named(configured: &[PathBuf], names: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in configured {
        if p.is_dir() {
            out.extend(names.iter().map(|n| p.join(n)).filter(|s| s.exists()));
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

/// An answer of the metadata thread.
#[derive(Debug, Clone)]
pub enum Answer {
    /// Metadata for a container (full id).
    Found(String, Box<ContainerMeta>),
    /// Every configured runtime answered that it does not know this requested id (it is
    /// still retried in the background for a while, and asked again after
    /// [`WatcherConfig::unknown_retry`]).
    Unknown(String),
}

/// Handle to the metadata thread. Dropping it stops the thread.
pub struct Watcher {
    tx: Sender<String>,
    rx: Receiver<Answer>,
    requested: HashSet<Vec<u8>>,
    /// Ids no runtime knew, with the time they may be asked about again.
    unknown: HashMap<Vec<u8>, Instant>,
    unknown_retry: Duration,
}

impl Watcher {
    /// Starts the metadata thread; it lists the running containers right away.
    pub fn start(cfg: WatcherConfig) -> std::io::Result<Watcher> {
        let (tx, req_rx) = mpsc::channel::<String>();
        let (res_tx, rx) = mpsc::channel();
        // Create events feed the same request queue, ahead of the container's first process.
        events::follow(&cfg.docker_sockets, tx.clone());
        containerd_events::follow(&cfg.containerd_sockets, tx.clone());
        let unknown_retry = cfg.unknown_retry;
        std::thread::Builder::new()
            .name("saker-containers".into())
            .spawn(move || Worker::new(cfg, res_tx).run(req_rx))?;
        Ok(Watcher {
            tx,
            rx,
            requested: HashSet::new(),
            unknown: HashMap::new(),
            unknown_retry,
        })
    }

    /// Asks for the metadata of a container (full or short id). Never blocks; an id already
    /// requested or answered is ignored, except one that no runtime knew whose retry period
    /// is over. True when a lookup was started.
    pub fn request(&mut self, id: impl AsRef<[u8]>) -> bool {
        let id = id.as_ref();
        if id.is_empty() {
            return false;
        }
        if self.requested.contains(id) {
            match self.unknown.get(id) {
                Some(&retry) if Instant::now() >= retry => {
                    self.unknown.remove(id);
                }
                _ => return false,
            }
        }
        self.requested.insert(id.to_vec());
        // A send error means the thread is gone; there is nothing better to do than go on.
        let _ = self.tx.send(String::from_utf8_lossy(id).into_owned());
        true
    }

    /// True while a lookup for `id` was started and not answered yet.
    pub fn in_flight(&self, id: &[u8]) -> bool {
        self.requested.contains(id) && !self.unknown.contains_key(id)
    }

    /// One answer, if any.
    pub fn try_answer(&mut self) -> Option<Answer> {
        let a = self.rx.try_recv().ok()?;
        match &a {
            Answer::Found(id, _) => {
                self.unknown.remove(id.as_bytes());
                self.requested.insert(id.as_bytes().to_vec());
            }
            Answer::Unknown(id) => {
                self.unknown
                    .insert(id.as_bytes().to_vec(), Instant::now() + self.unknown_retry);
            }
        }
        Some(a)
    }

    /// One metadata answer, if any: (full id, metadata); "unknown" answers are only recorded.
    pub fn try_recv(&mut self) -> Option<(String, ContainerMeta)> {
        loop {
            match self.try_answer()? {
                Answer::Found(id, meta) => return Some((id, *meta)),
                Answer::Unknown(_) => continue,
            }
        }
    }
}

struct Pending {
    id: String,
    attempt: u32,
    due: Instant,
}

struct Worker {
    cfg: WatcherConfig,
    out: Sender<Answer>,
    /// Full ids already sent.
    sent: HashSet<String>,
    pending: Vec<Pending>,
    next_scan: Instant,
    /// gRPC runtime and channels, made on first use of a containerd or CRI socket.
    grpc: Option<grpc::Grpc>,
    /// Last error reported per socket, so a failing runtime is reported once, not per attempt.
    errors: HashMap<PathBuf, String>,
}

impl Worker {
    fn new(cfg: WatcherConfig, out: Sender<Answer>) -> Worker {
        Worker {
            cfg,
            out,
            sent: HashSet::new(),
            pending: Vec::new(),
            next_scan: Instant::now(),
            grpc: None,
            errors: HashMap::new(),
        }
    }

    /// Runs one gRPC exchange with `sock`; errors are reported once per socket and change.
    fn grpc_call<T>(
        &mut self,
        sock: &Path,
        f: impl FnOnce(&mut grpc::Grpc, &Path) -> Result<T, grpc::GrpcError>,
    ) -> Option<T> {
        if self.grpc.is_none() {
            match grpc::Grpc::new(self.cfg.timeout) {
                Ok(g) => self.grpc = Some(g),
                Err(e) => {
                    self.report(sock, e.to_string());
                    return None;
                }
            }
        }
        let g = self.grpc.as_mut()?;
        match f(g, sock) {
            Ok(v) => {
                self.errors.remove(sock);
                Some(v)
            }
            Err(e) => {
                self.report(sock, e.to_string());
                None
            }
        }
    }

    fn report(&mut self, sock: &Path, err: String) {
        if self.errors.get(sock) != Some(&err) {
            eprintln!("saker: container metadata: {err}");
            self.errors.insert(sock.to_path_buf(), err);
        }
    }

    fn send(&mut self, meta: ContainerMeta) {
        if self.sent.insert(meta.full_id.clone()) {
            let _ = self
                .out
                .send(Answer::Found(meta.full_id.clone(), Box::new(meta)));
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
        // CRI before the native API: it knows the pod (sandbox id, pod labels) first hand.
        for sock in resolve_grpc_sockets(&self.cfg.cri_sockets) {
            let Some(ids) = self.grpc_call(&sock, cri::list_ids) else {
                continue;
            };
            for id in ids {
                if self.sent.contains(&id) {
                    continue;
                }
                if let Some(Some(meta)) = self.grpc_call(&sock, |g, s| cri::inspect(g, s, &id)) {
                    self.send(meta);
                }
            }
        }
        for sock in resolve_grpc_sockets(&self.cfg.containerd_sockets) {
            for meta in self.grpc_call(&sock, containerd::list).unwrap_or_default() {
                self.send(meta);
            }
        }
    }

    /// Inspects `id` on every configured runtime; true when found and sent.
    fn inspect_any(&mut self, id: &str) -> bool {
        if resolve_sockets(&self.cfg.docker_sockets)
            .iter()
            .any(|s| self.inspect_on(s, id))
        {
            return true;
        }
        for (socks, native) in [
            (resolve_grpc_sockets(&self.cfg.cri_sockets), false),
            (resolve_grpc_sockets(&self.cfg.containerd_sockets), true),
        ] {
            for sock in socks {
                let found = self.grpc_call(&sock, |g, s| {
                    if native {
                        containerd::inspect(g, s, id)
                    } else {
                        cri::inspect(g, s, id)
                    }
                });
                if let Some(Some(meta)) = found {
                    self.send(meta);
                    return true;
                }
            }
        }
        false
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
        self.send(meta);
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
            if self.inspect_any(&p.id) {
                continue;
            }
            if p.attempt == 0 {
                // The event loop holds alerts only while a lookup is in flight: tell it now,
                // and keep trying in the background (a container registered late).
                let _ = self.out.send(Answer::Unknown(p.id.clone()));
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
