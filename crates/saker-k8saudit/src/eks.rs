//! EKS: the cluster's audit log in CloudWatch Logs (group `/aws/eks/<cluster>/cluster`,
//! streams `kube-apiserver-audit-*`), polled with `FilterLogEvents` through the standard AWS
//! credential chain (environment, shared config, IRSA web identity, instance role).
//!
//! Unlike the k8saudit-eks plugin, the poller keeps a checkpoint per stream (the newest
//! timestamp and the event ids seen near it) in a file, so a restart resumes where it
//! stopped without loss or duplicates; the boundary events upstream pushes twice are
//! skipped; API errors (throttling included) are retried with backoff instead of stopping.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::Client;
use serde::{Deserialize, Serialize};

use crate::payload::parse_payload;
use crate::AuditEvent;

/// `k8saudit-eks` settings (`open_params` = cluster, `init_config` keys).
#[derive(Debug, Clone, PartialEq)]
pub struct EksConfig {
    pub cluster: String,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub polling_interval: Duration,
    /// How far back the first poll starts, and how long ids are remembered for late
    /// (out-of-order) ingestion.
    pub shift: Duration,
    /// Payloads queued between the poller and the event loop.
    pub buffer_size: usize,
    pub max_event_size: usize,
    /// Saker extension: the checkpoint file (none: no checkpoint, as upstream).
    pub checkpoint_file: Option<PathBuf>,
    /// Saker extension: ignore a stored checkpoint and start at now - shift, as upstream.
    pub start_at_now: bool,
}

impl EksConfig {
    pub fn log_group(&self) -> String {
        format!("/aws/eks/{}/cluster", self.cluster)
    }
}

/// The streams' prefix EKS writes the audit log to.
pub const STREAM_PREFIX: &str = "kube-apiserver-audit";

/// Poller counters (logs, tests).
#[derive(Debug, Default)]
pub struct EksCounters {
    pub polls: AtomicU64,
    pub events: AtomicU64,
    pub duplicates: AtomicU64,
    pub truncated: AtomicU64,
    pub api_errors: AtomicU64,
}

/// Per stream: the newest event time seen, and the ids of events within `shift` of it.
#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct StreamMark {
    pub newest_ms: i64,
    pub recent: Vec<(i64, String)>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize, PartialEq)]
pub struct Checkpoint {
    pub log_group: String,
    pub streams: BTreeMap<String, StreamMark>,
}

impl Checkpoint {
    pub fn load(path: &Path, group: &str) -> std::io::Result<Option<Checkpoint>> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        let c: Checkpoint = serde_json::from_str(&text).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        // A checkpoint of another cluster says nothing about this one.
        Ok((c.log_group == group).then_some(c))
    }

    /// Written to a temporary file then renamed, so a crash never leaves half a checkpoint.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let tmp = path.with_extension("tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::rename(&tmp, path)
    }

    /// Where the next poll starts: the oldest stream's newest time minus the window.
    fn start_ms(&self, window_ms: i64) -> Option<i64> {
        self.streams.values().map(|m| m.newest_ms - window_ms).min()
    }

    /// Records an event; false if it was already seen (a duplicate).
    fn admit(&mut self, stream: &str, ts: i64, id: &str, window_ms: i64) -> bool {
        let m = self.streams.entry(stream.to_string()).or_default();
        if m.recent.iter().any(|(t, i)| *t == ts && i == id) {
            return false;
        }
        // Older than the window: already covered by an earlier poll.
        if m.newest_ms > 0 && ts < m.newest_ms - window_ms {
            return false;
        }
        m.recent.push((ts, id.to_string()));
        if ts > m.newest_ms {
            m.newest_ms = ts;
            let floor = ts - window_ms;
            m.recent.retain(|(t, _)| *t >= floor);
        }
        true
    }
}

/// A running poller thread; `stop` ends it after the current step.
pub struct EksPoller {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub counters: Arc<EksCounters>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl EksPoller {
    /// Starts polling; each CloudWatch message's events go to `tx` as one payload.
    pub fn start(
        cfg: EksConfig,
        tx: std::sync::mpsc::SyncSender<Vec<AuditEvent>>,
    ) -> Result<EksPoller, String> {
        let group = cfg.log_group();
        if let Some(dir) = cfg.checkpoint_file.as_ref().and_then(|p| p.parent()) {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("k8saudit-eks checkpoint directory {}: {e}", dir.display()))?;
        }
        let ckpt = match (&cfg.checkpoint_file, cfg.start_at_now) {
            (Some(p), false) => Checkpoint::load(p, &group)
                .map_err(|e| format!("k8saudit-eks checkpoint {}: {e}", p.display()))?,
            _ => None,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(EksCounters::default());
        let (s, c) = (stop.clone(), counters.clone());
        let thread = std::thread::Builder::new()
            .name("saker-audit-eks".into())
            .spawn(move || rt.block_on(run(cfg, ckpt, tx, s, c)))
            .map_err(|e| e.to_string())?;
        Ok(EksPoller {
            stop,
            thread: Some(thread),
            counters,
        })
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for EksPoller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub async fn client(cfg: &EksConfig) -> Client {
    // The SDK retries throttling a few times itself; our loop backs off beyond that.
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
    if let Some(r) = &cfg.region {
        loader = loader.region(aws_sdk_cloudwatchlogs::config::Region::new(r.clone()));
    }
    if let Some(p) = &cfg.profile {
        loader = loader.profile_name(p);
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        tracing::warn!(
            "k8saudit-eks: no AWS region (init_config.region, AWS_REGION or AWS_DEFAULT_REGION)"
        );
    }
    Client::new(&sdk)
}

/// Sleeps up to `d`, waking early on stop; false if stopped.
async fn pause(d: Duration, stop: &AtomicBool) -> bool {
    let step = Duration::from_millis(100);
    let mut left = d;
    while !left.is_zero() {
        if stop.load(Ordering::Relaxed) {
            return false;
        }
        let s = left.min(step);
        tokio::time::sleep(s).await;
        left -= s;
    }
    !stop.load(Ordering::Relaxed)
}

async fn run(
    cfg: EksConfig,
    ckpt: Option<Checkpoint>,
    tx: std::sync::mpsc::SyncSender<Vec<AuditEvent>>,
    stop: Arc<AtomicBool>,
    counters: Arc<EksCounters>,
) {
    let group = cfg.log_group();
    let window_ms = cfg.shift.as_millis().max(1000) as i64;
    let resumed = ckpt.is_some();
    let mut ckpt = ckpt.unwrap_or(Checkpoint {
        log_group: group.clone(),
        streams: BTreeMap::new(),
    });
    // Without a checkpoint (or streams in it), start at now - shift, as upstream.
    let first_start = now_ms() - cfg.shift.as_millis() as i64;
    tracing::info!(
        "k8saudit-eks: polling {group} (streams {STREAM_PREFIX}*) every {}s, {}",
        cfg.polling_interval.as_secs(),
        if resumed {
            "resuming from the checkpoint"
        } else {
            "starting now"
        }
    );
    let client = client(&cfg).await;
    let mut backoff = Duration::from_secs(1);
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let start = ckpt.start_ms(window_ms).unwrap_or(first_start);
        match poll(
            &client, &group, start, &mut ckpt, window_ms, &cfg, &tx, &counters, &stop,
        )
        .await
        {
            Ok(()) => {
                backoff = Duration::from_secs(1);
                counters.polls.fetch_add(1, Ordering::Relaxed);
                if let Some(p) = &cfg.checkpoint_file {
                    if let Err(e) = ckpt.save(p) {
                        tracing::error!("k8saudit-eks: writing checkpoint {}: {e}", p.display());
                    }
                }
                if !pause(cfg.polling_interval, &stop).await {
                    return;
                }
            }
            Err(Fail::Closed) => return,
            Err(Fail::Api(e)) => {
                counters.api_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    "k8saudit-eks: FilterLogEvents on {group}: {e}; retrying in {}s",
                    backoff.as_secs()
                );
                // Events already sent stay recorded: keep their marks.
                if let Some(p) = &cfg.checkpoint_file {
                    let _ = ckpt.save(p);
                }
                if !pause(backoff, &stop).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}

enum Fail {
    Api(String),
    /// The event loop is gone.
    Closed,
}

#[allow(clippy::too_many_arguments)]
async fn poll(
    client: &Client,
    group: &str,
    start_ms: i64,
    ckpt: &mut Checkpoint,
    window_ms: i64,
    cfg: &EksConfig,
    tx: &std::sync::mpsc::SyncSender<Vec<AuditEvent>>,
    counters: &EksCounters,
    stop: &AtomicBool,
) -> Result<(), Fail> {
    let mut token: Option<String> = None;
    loop {
        let out = client
            .filter_log_events()
            .log_group_name(group)
            .log_stream_name_prefix(STREAM_PREFIX)
            .start_time(start_ms.max(0))
            .set_next_token(token.take())
            .send()
            .await
            .map_err(|e| {
                Fail::Api(aws_sdk_cloudwatchlogs::error::DisplayErrorContext(e).to_string())
            })?;
        for e in out.events() {
            let (Some(stream), Some(ts), Some(id), Some(msg)) = (
                e.log_stream_name(),
                e.timestamp(),
                e.event_id(),
                e.message(),
            ) else {
                continue;
            };
            // The service filters by prefix already; emulators may not, and other EKS log
            // types (authenticator, scheduler) share the group.
            if !stream.starts_with(STREAM_PREFIX) {
                continue;
            }
            if !ckpt.admit(stream, ts, id, window_ms) {
                counters.duplicates.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            if msg.trim_end().ends_with("[Truncated...]") {
                counters.truncated.fetch_add(1, Ordering::Relaxed);
                let audit_id = msg
                    .split("\"auditID\":\"")
                    .nth(1)
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("unknown");
                tracing::warn!("[k8saudit-eks] skipping a truncated event (auditID {audit_id})");
                continue;
            }
            let p = parse_payload(msg.as_bytes(), cfg.max_event_size);
            for err in &p.errors {
                tracing::warn!("[k8saudit-eks] {err}");
            }
            if !p.events.is_empty() {
                counters
                    .events
                    .fetch_add(p.events.len() as u64, Ordering::Relaxed);
                // Blocks when the loop is behind (back-pressure), as upstream's buffer.
                tx.send(p.events).map_err(|_| Fail::Closed)?;
            }
        }
        token = out.next_token().map(str::to_string);
        if token.is_none() || stop.load(Ordering::Relaxed) {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_dedupes_and_windows() {
        let mut c = Checkpoint::default();
        assert!(c.admit("s", 10_000, "a", 1000));
        assert!(!c.admit("s", 10_000, "a", 1000), "same id twice");
        assert!(c.admit("s", 10_000, "b", 1000), "same time, other id");
        assert!(
            c.admit("s", 9_500, "late", 1000),
            "late but within the window"
        );
        assert!(!c.admit("s", 8_000, "old", 1000), "older than the window");
        assert!(c.admit("s", 12_000, "c", 1000));
        assert_eq!(c.streams["s"].recent, vec![(12_000, "c".to_string())]);
        assert!(c.admit("t", 5_000, "x", 1000), "streams are independent");
        assert_eq!(c.start_ms(1000), Some(4_000));
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ck.json");
        c.log_group = "/aws/eks/a/cluster".into();
        c.save(&p).unwrap();
        assert_eq!(Checkpoint::load(&p, "/aws/eks/a/cluster").unwrap(), Some(c));
        assert_eq!(Checkpoint::load(&p, "/aws/eks/b/cluster").unwrap(), None);
        std::fs::write(&p, "{").unwrap();
        assert!(Checkpoint::load(&p, "x").is_err());
    }
}
