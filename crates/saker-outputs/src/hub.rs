//! The outputs hub: one bounded queue and one task per sink, on a small
//! runtime of its own, so the synchronous event loop only ever `try_send`s.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use saker_rules::{Alert, Priority};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;

use crate::format::{Formatter, JsonOptions};
use crate::metrics::Metrics;
use crate::ratelimit::{summary_line, RateLimiter, RateLimits};
use crate::report::{OutputReport, Reason, ShutdownReport};
use crate::sinks::cloudwatch::CloudwatchOptions;
use crate::sinks::file::FileOptions;
use crate::sinks::http::HttpOptions;
use crate::sinks::program::ProgramOptions;
use crate::sinks::stdout::StdoutOptions;
use crate::sinks::syslog::SyslogOptions;
use crate::sinks::{self, Input, OutputState, Retry, SinkCtx};
use crate::spool::{AppendError, Spool};
use crate::web::{serve_web, WebOptions};
use crate::OutputsError;

/// How often a kind of output trouble is logged at most (with the count since the last line).
pub const LOG_EVERY: Duration = Duration::from_secs(10);

enum Queue {
    Mem(mpsc::Sender<Arc<Alert>>),
    Disk(Arc<Spool>),
}

struct Sink {
    min: Option<Priority>,
    queue: Option<Queue>,
    state: Arc<OutputState>,
    capacity: usize,
}

/// `outputs_queue` (falco.yaml): the per-output queue.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueOptions {
    /// Alerts queued per output before new ones are dropped (0: 10000).
    pub capacity: usize,
    /// Where the network outputs (http, cloudwatch) keep their queue on disk; empty: in memory.
    pub spool_dir: String,
    /// The most bytes each output's spool may hold.
    pub spool_max_bytes: u64,
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            capacity: 10_000,
            spool_dir: String::new(),
            spool_max_bytes: 256 << 20,
        }
    }
}

/// Everything the hub and its sinks need; fields are named after the falco.yaml keys they
/// come from (the binary maps its parsed config into this in one place).
#[derive(Debug, Clone, PartialEq)]
pub struct OutputsOptions {
    pub json_output: bool,
    /// The `json_include_*_property` keys.
    pub json_include: JsonOptions,
    pub buffered_outputs: bool,
    /// Overrides `FALCO_HOSTNAME`/the kernel's hostname (see [`default_hostname`]).
    pub hostname: Option<String>,
    /// Milliseconds a sink may take for one alert.
    pub output_timeout: u64,
    pub outputs_queue: QueueOptions,
    /// Rate limits (`outputs.*`).
    pub outputs: RateLimits,
    pub stdout_output: StdoutOptions,
    pub file_output: FileOptions,
    pub syslog_output: SyslogOptions,
    pub program_output: ProgramOptions,
    pub http_output: HttpOptions,
    pub cloudwatch_output: CloudwatchOptions,
}

impl Default for OutputsOptions {
    fn default() -> Self {
        OutputsOptions {
            json_output: false,
            json_include: JsonOptions::default(),
            buffered_outputs: false,
            hostname: None,
            output_timeout: 2000,
            outputs_queue: QueueOptions::default(),
            outputs: RateLimits::default(),
            stdout_output: StdoutOptions::default(),
            file_output: FileOptions::default(),
            syslog_output: SyslogOptions::default(),
            program_output: ProgramOptions::default(),
            http_output: HttpOptions::default(),
            cloudwatch_output: CloudwatchOptions::default(),
        }
    }
}

/// Fans alerts out to the configured outputs.
pub struct Outputs {
    rt: Option<tokio::runtime::Runtime>,
    sinks: Vec<Sink>,
    tasks: Vec<JoinHandle<()>>,
    metrics: Arc<Metrics>,
    limiter: Option<Arc<Mutex<RateLimiter>>>,
    reopen: Arc<AtomicBool>,
}

/// Hostname for alerts: `hostname` from the config, else `FALCO_HOSTNAME`,
/// else the kernel's hostname.
pub fn default_hostname(configured: Option<&str>) -> String {
    if let Some(h) = configured.filter(|h| !h.is_empty()) {
        return h.to_string();
    }
    if let Ok(h) = std::env::var("FALCO_HOSTNAME") {
        if !h.is_empty() {
            return h;
        }
    }
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

impl Outputs {
    /// Starts every enabled output. Must be called outside any tokio runtime.
    pub fn start(cfg: &OutputsOptions, metrics: Arc<Metrics>) -> Result<Outputs, OutputsError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("saker-outputs")
            .enable_all()
            .build()
            .map_err(|e| OutputsError::Setup {
                output: "runtime",
                message: e.to_string(),
            })?;
        let fmt = Formatter {
            json: cfg.json_output,
            opts: cfg.json_include,
        };
        let cap = if cfg.outputs_queue.capacity == 0 {
            10_000
        } else {
            cfg.outputs_queue.capacity
        };
        let mut hub = Outputs {
            rt: None,
            sinks: Vec::new(),
            tasks: Vec::new(),
            metrics: metrics.clone(),
            limiter: None,
            reopen: Arc::new(AtomicBool::new(false)),
        };
        let reopen = hub.reopen.clone();
        let timeout = Duration::from_millis(cfg.output_timeout);
        let spool_dir = &cfg.outputs_queue.spool_dir;
        let mut add = |name: &'static str,
                       min: Option<Priority>,
                       retry: Retry,
                       spooled: bool|
         -> Result<SinkCtx, OutputsError> {
            let spool = if spooled && !spool_dir.is_empty() {
                let dir = Path::new(spool_dir).join(name);
                let (sp, rec) =
                    Spool::open(&dir, cfg.outputs_queue.spool_max_bytes).map_err(|e| {
                        OutputsError::Setup {
                            output: name,
                            message: format!("outputs_queue.spool_dir {}: {e}", dir.display()),
                        }
                    })?;
                if rec.records > 0 {
                    tracing::warn!(
                        "{name} output: {} alerts ({} bytes) left in the spool {} by a previous run; delivering them first",
                        rec.records,
                        rec.bytes,
                        dir.display()
                    );
                }
                Some((sp, rec))
            } else {
                None
            };
            let state = Arc::new(OutputState::new(
                name,
                &metrics,
                spool.as_ref().map(|s| s.0.clone()),
                LOG_EVERY,
            ));
            let (queue, input) = match spool {
                Some((sp, rec)) => {
                    let reader = sp.reader().map_err(|e| OutputsError::Setup {
                        output: name,
                        message: format!("outputs_queue.spool_dir {}: {e}", sp.dir().display()),
                    })?;
                    state.accepted.store(rec.records, Ordering::Relaxed);
                    state.depth.set(rec.records as i64);
                    state.update_spool_gauge();
                    (Queue::Disk(sp), Input::Disk(reader))
                }
                None => {
                    let (tx, rx) = mpsc::channel(cap);
                    (Queue::Mem(tx), Input::Mem(rx))
                }
            };
            hub.sinks.push(Sink {
                min,
                queue: Some(queue),
                state: state.clone(),
                capacity: cap,
            });
            Ok(SinkCtx {
                name,
                input,
                fmt,
                out: state,
                retry,
                output_timeout: timeout,
            })
        };
        let local = Retry {
            retries: 0,
            backoff_ms: 0,
        };
        let mut tasks = Vec::new();
        if cfg.stdout_output.enabled {
            let ctx = add("stdout", cfg.stdout_output.min_priority, local, false)?;
            tasks.push(rt.spawn(sinks::stdout::run(
                ctx,
                sinks::stdout::RawStdout::new(),
                cfg.buffered_outputs,
            )));
        }
        if cfg.file_output.enabled {
            let ctx = add("file", cfg.file_output.min_priority, local, false)?;
            tasks.push(rt.spawn(sinks::file::run(
                ctx,
                cfg.file_output.clone(),
                cfg.buffered_outputs,
                reopen,
            )));
        }
        if cfg.syslog_output.enabled {
            let ctx = add("syslog", cfg.syslog_output.min_priority, local, false)?;
            tasks.push(rt.spawn(sinks::syslog::run(ctx, cfg.syslog_output.clone())));
        }
        if cfg.program_output.enabled {
            let ctx = add("program", cfg.program_output.min_priority, local, false)?;
            tasks.push(rt.spawn(sinks::program::run(ctx, cfg.program_output.clone())));
        }
        if cfg.http_output.enabled {
            let client = {
                let _g = rt.enter();
                sinks::http::client(&cfg.http_output)?
            };
            let retry = Retry {
                retries: cfg.http_output.retries,
                backoff_ms: cfg.http_output.backoff_ms,
            };
            let ctx = add("http", cfg.http_output.min_priority, retry, true)?;
            tasks.push(rt.spawn(sinks::http::run(ctx, cfg.http_output.clone(), client)));
        }
        let cw = &cfg.cloudwatch_output;
        let cw_retry = Retry {
            retries: cw.retries,
            backoff_ms: cw.backoff_ms,
        };
        if cw.enabled || cw.metrics.enabled {
            let client = rt.block_on(sinks::cloudwatch::make_client(cw));
            let stream = if cw.log_stream.is_empty() {
                default_hostname(cfg.hostname.as_deref())
            } else {
                cw.log_stream.clone()
            };
            if cw.enabled {
                let w = sinks::cloudwatch::Writer::new(client.clone(), cw, stream.clone(), false);
                let ctx = add("cloudwatch", cw.min_priority, cw_retry, true)?;
                tasks.push(rt.spawn(sinks::cloudwatch::run(ctx, cw.clone(), w)));
            }
            if cw.metrics.enabled {
                let mstream = if cw.metrics.log_stream.is_empty() {
                    format!("{stream}-metrics")
                } else {
                    cw.metrics.log_stream.clone()
                };
                let w = sinks::cloudwatch::Writer::new(client, cw, mstream, true);
                let ctx = add("cloudwatch_metrics", None, cw_retry, false)?;
                tasks.push(rt.spawn(sinks::cloudwatch::run_metrics(ctx, cw.clone(), w)));
            }
        }
        // Counts of output trouble not yet logged go out every LOG_EVERY.
        let states: Vec<Arc<OutputState>> = hub.sinks.iter().map(|s| s.state.clone()).collect();
        rt.spawn(async move {
            let mut tick = tokio::time::interval(LOG_EVERY);
            tick.tick().await;
            loop {
                tick.tick().await;
                for s in &states {
                    s.log.flush();
                }
            }
        });
        let limiter = RateLimiter::new(&cfg.outputs);
        if !limiter.is_unlimited() {
            let limiter = Arc::new(Mutex::new(limiter));
            let every = cfg.outputs.summary_interval_s.max(1);
            let l2 = limiter.clone();
            // The summary task is detached: it holds no queue and has nothing to flush.
            rt.spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(every));
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let counts = l2
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .take_suppressed();
                    if let Some(line) = summary_line(&counts, every) {
                        tracing::warn!("{line}");
                    }
                }
            });
            hub.limiter = Some(limiter);
        }
        hub.tasks = tasks;
        hub.rt = Some(rt);
        Ok(hub)
    }

    /// Names of the running outputs, in start order.
    pub fn output_names(&self) -> Vec<&'static str> {
        self.sinks.iter().map(|s| s.state.name).collect()
    }

    /// Hands one alert to every output whose `min_priority` it passes. Never
    /// blocks: a full queue drops the alert for that output and counts it.
    pub fn send(&self, alert: Arc<Alert>) {
        self.send_within(alert, Duration::ZERO)
    }

    /// [`Hub::send`] for a source that can wait (a capture file being replayed): a full
    /// in-memory queue is given up to `wait` to make room before the alert is dropped, so
    /// a replay goes at the outputs' pace instead of losing alerts. An output that made no
    /// room within `wait` is not waited for again until its queue takes an alert, so a dead
    /// output costs one wait, not one per alert.
    pub fn send_within(&self, alert: Arc<Alert>, wait: Duration) {
        self.metrics.record_alert(&alert);
        if let Some(l) = &self.limiter {
            let ok = l
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .allow(&alert.rule, Instant::now());
            if !ok {
                self.metrics
                    .alerts_suppressed
                    .get_or_create(&vec![("rule".to_string(), alert.rule.clone())])
                    .inc();
                return;
            }
        }
        for s in &self.sinks {
            if s.min.is_some_and(|m| !alert.priority.passes(m)) {
                continue;
            }
            let st = &s.state;
            match &s.queue {
                Some(Queue::Mem(tx)) => {
                    st.depth.inc();
                    let mut res = tx.try_send(alert.clone());
                    if matches!(res, Err(TrySendError::Full(_)))
                        && !wait.is_zero()
                        && !st.stalled.load(Ordering::Relaxed)
                    {
                        let until = Instant::now() + wait;
                        while let Err(TrySendError::Full(a)) = res {
                            if Instant::now() >= until {
                                st.stalled.store(true, Ordering::Relaxed);
                                res = Err(TrySendError::Full(a));
                                break;
                            }
                            std::thread::sleep(Duration::from_micros(200));
                            res = tx.try_send(a);
                        }
                    }
                    match res {
                        Ok(()) => {
                            st.accepted.fetch_add(1, Ordering::Relaxed);
                            if wait > Duration::ZERO && st.stalled.load(Ordering::Relaxed) {
                                st.stalled.store(false, Ordering::Relaxed);
                            }
                        }
                        Err(e) => {
                            st.depth.dec();
                            let reason = match e {
                                TrySendError::Full(_) => Reason::QueueFull,
                                TrySendError::Closed(_) => Reason::Shutdown,
                            };
                            let detail = format!("{} alerts waiting", s.capacity);
                            st.dropped(1, reason, &detail);
                        }
                    }
                }
                Some(Queue::Disk(sp)) => match sp.append(&alert) {
                    Ok(()) => {
                        st.accepted.fetch_add(1, Ordering::Relaxed);
                        st.depth.inc();
                        st.update_spool_gauge();
                    }
                    Err(AppendError::Full) => {
                        let detail = format!("{} holds {} bytes", sp.dir().display(), sp.cap());
                        st.dropped(1, Reason::SpoolFull, &detail);
                    }
                    Err(AppendError::Closed) => st.dropped(1, Reason::Shutdown, ""),
                    Err(AppendError::Io(e)) => {
                        let detail = format!("{}: {e}", sp.dir().display());
                        st.dropped(1, Reason::SpoolError, &detail);
                    }
                },
                None => st.dropped(1, Reason::Shutdown, ""),
            }
        }
    }

    /// Closes and reopens a kept-open output file before its next alert
    /// (what Falco does on SIGUSR1), for log rotation.
    pub fn reopen_files(&self) {
        self.reopen.store(true, Ordering::Relaxed);
    }

    /// Starts `/healthz` and `/metrics` on the hub's runtime; returns the bound address.
    pub fn spawn_web(
        &self,
        addr: SocketAddr,
        health: Arc<AtomicBool>,
        opts: WebOptions,
    ) -> Result<SocketAddr, OutputsError> {
        let rt = self.rt.as_ref().ok_or(OutputsError::Stopped)?;
        let listener = rt
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|e| OutputsError::Setup {
                output: "webserver",
                message: format!("bind {addr}: {e}"),
            })?;
        let bound = listener.local_addr().map_err(|e| OutputsError::Setup {
            output: "webserver",
            message: e.to_string(),
        })?;
        let metrics = self.metrics.clone();
        rt.spawn(async move {
            if let Err(e) = serve_web(listener, metrics, health, opts).await {
                tracing::error!("web server stopped: {e}");
            }
        });
        Ok(bound)
    }

    /// Closes the queues and gives every output until `deadline` to deliver
    /// what it holds. What is left then is counted as dropped (reason
    /// `shutdown`) and logged, or, for a spooled output, stays on disk for the
    /// next start. The report's `Display` is the exit summary.
    pub fn shutdown(mut self, deadline: Duration) -> ShutdownReport {
        for s in &mut self.sinks {
            if let Some(Queue::Disk(sp)) = s.queue.take() {
                sp.close();
            }
        }
        let mut report = ShutdownReport {
            outputs: Vec::new(),
            in_time: true,
        };
        if let Some(rt) = self.rt.take() {
            let tasks = std::mem::take(&mut self.tasks);
            let aborts: Vec<_> = tasks.iter().map(|t| t.abort_handle()).collect();
            report.in_time = rt.block_on(async {
                tokio::time::timeout(deadline, async {
                    for t in tasks {
                        let _ = t.await;
                    }
                })
                .await
                .is_ok()
            });
            if !report.in_time {
                for a in &aborts {
                    a.abort();
                }
                // Let the aborted tasks unwind (a blocked stdout write cannot be interrupted).
                rt.block_on(async { tokio::time::sleep(Duration::from_millis(20)).await });
            }
            rt.shutdown_timeout(Duration::from_millis(100));
        }
        for s in &self.sinks {
            let st = &s.state;
            let left = st.outstanding();
            let mut spooled = 0;
            if left > 0 {
                if st.spool.is_some() {
                    spooled = left;
                    tracing::warn!(
                        "{} output: {left} alerts not delivered within outputs.shutdown_timeout ({:.1} s) stay in the spool for the next start",
                        st.name,
                        deadline.as_secs_f64()
                    );
                } else {
                    st.finished.fetch_add(left, Ordering::Relaxed);
                    let why = format!(
                        "outputs.shutdown_timeout is {:.1} s",
                        deadline.as_secs_f64()
                    );
                    st.dropped(left, Reason::Shutdown, &why);
                }
            }
            st.log.flush();
            report.outputs.push(OutputReport {
                name: st.name,
                delivered: st.sent.get(),
                dropped: st.log.totals(),
                spooled,
            });
        }
        self.sinks.clear();
        report
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
