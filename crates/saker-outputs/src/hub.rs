//! The outputs hub: one bounded queue and one task per sink, on a small
//! runtime of its own, so the synchronous event loop only ever `try_send`s.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use saker_config::Config;
use saker_rules::{Alert, Priority};
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::task::JoinHandle;

use crate::format::Formatter;
use crate::metrics::Metrics;
use crate::ratelimit::{summary_line, RateLimiter};
use crate::sinks::{self, SinkCtx};
use crate::web::{serve_web, WebOptions};
use crate::OutputsError;

struct Sink {
    name: &'static str,
    min: Option<Priority>,
    tx: mpsc::Sender<Arc<Alert>>,
    depth: Gauge<i64, std::sync::atomic::AtomicI64>,
    drops: Counter,
    warned: AtomicBool,
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
pub fn default_hostname(cfg: &Config) -> String {
    if let Some(h) = cfg.hostname.as_ref().filter(|h| !h.is_empty()) {
        return h.clone();
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
    pub fn start(cfg: &Config, metrics: Arc<Metrics>) -> Result<Outputs, OutputsError> {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("saker-outputs")
            .enable_all()
            .build()
            .map_err(|e| OutputsError::Setup {
                output: "runtime",
                message: e.to_string(),
            })?;
        let fmt = Formatter::from_config(cfg);
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
        let mut add = |name: &'static str, min: Option<Priority>| -> SinkCtx {
            let (tx, rx) = mpsc::channel(cap);
            let l = vec![("output".to_string(), name.to_string())];
            let depth = metrics.output_queue_depth.get_or_create(&l).clone();
            let drops = metrics.output_drops.get_or_create(&l).clone();
            hub.sinks.push(Sink {
                name,
                min,
                tx,
                depth: depth.clone(),
                drops: drops.clone(),
                warned: AtomicBool::new(false),
            });
            SinkCtx {
                name,
                rx,
                fmt,
                depth,
                sent: metrics.output_sent.get_or_create(&l).clone(),
                failures: metrics.output_failures.get_or_create(&l).clone(),
                drops,
                retries: metrics.output_retries.get_or_create(&l).clone(),
                metrics: metrics.clone(),
                output_timeout: timeout,
            }
        };
        let mut tasks = Vec::new();
        if cfg.stdout_output.enabled {
            let ctx = add("stdout", cfg.stdout_output.min_priority);
            tasks.push(rt.spawn(sinks::stdout::run(
                ctx,
                tokio::io::stdout(),
                cfg.buffered_outputs,
            )));
        }
        if cfg.file_output.enabled {
            let ctx = add("file", cfg.file_output.min_priority);
            tasks.push(rt.spawn(sinks::file::run(
                ctx,
                cfg.file_output.clone(),
                cfg.buffered_outputs,
                reopen,
            )));
        }
        if cfg.syslog_output.enabled {
            let ctx = add("syslog", cfg.syslog_output.min_priority);
            tasks.push(rt.spawn(sinks::syslog::run(ctx, cfg.syslog_output.clone())));
        }
        if cfg.program_output.enabled {
            let ctx = add("program", cfg.program_output.min_priority);
            tasks.push(rt.spawn(sinks::program::run(ctx, cfg.program_output.clone())));
        }
        if cfg.http_output.enabled {
            let client = {
                let _g = rt.enter();
                sinks::http::client(&cfg.http_output)?
            };
            let ctx = add("http", cfg.http_output.min_priority);
            tasks.push(rt.spawn(sinks::http::run(ctx, cfg.http_output.clone(), client)));
        }
        let cw = &cfg.cloudwatch_output;
        if cw.enabled || cw.metrics.enabled {
            let client = rt.block_on(sinks::cloudwatch::make_client(cw));
            let stream = if cw.log_stream.is_empty() {
                default_hostname(cfg)
            } else {
                cw.log_stream.clone()
            };
            if cw.enabled {
                let w = sinks::cloudwatch::Writer::new(client.clone(), cw, stream.clone(), false);
                let ctx = add("cloudwatch", cw.min_priority);
                tasks.push(rt.spawn(sinks::cloudwatch::run(ctx, cw.clone(), w)));
            }
            if cw.metrics.enabled {
                let mstream = if cw.metrics.log_stream.is_empty() {
                    format!("{stream}-metrics")
                } else {
                    cw.metrics.log_stream.clone()
                };
                let w = sinks::cloudwatch::Writer::new(client, cw, mstream, true);
                let ctx = add("cloudwatch_metrics", None);
                tasks.push(rt.spawn(sinks::cloudwatch::run_metrics(ctx, cw.clone(), w)));
            }
        }
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
        self.sinks.iter().map(|s| s.name).collect()
    }

    /// Hands one alert to every output whose `min_priority` it passes. Never
    /// blocks: a full queue drops the alert for that output and counts it.
    pub fn send(&self, alert: Arc<Alert>) {
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
            s.depth.inc();
            match s.tx.try_send(alert.clone()) {
                Ok(()) => {}
                Err(e) => {
                    s.depth.dec();
                    s.drops.inc();
                    self.metrics.falco_outputs_queue_drops.inc();
                    if !s.warned.swap(true, Ordering::Relaxed) {
                        let why = match e {
                            TrySendError::Full(_) => "queue full",
                            TrySendError::Closed(_) => "output stopped",
                        };
                        tracing::error!(
                            output = s.name,
                            "dropping alerts ({why}); further drops are only counted"
                        );
                    }
                }
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

    /// Closes the queues and waits up to `deadline` for every output to
    /// deliver what it holds. Returns true if all finished in time.
    pub fn shutdown(mut self, deadline: Duration) -> bool {
        self.sinks.clear();
        let Some(rt) = self.rt.take() else {
            return true;
        };
        let tasks = std::mem::take(&mut self.tasks);
        let done = rt.block_on(async {
            tokio::time::timeout(deadline, async {
                for t in tasks {
                    let _ = t.await;
                }
            })
            .await
            .is_ok()
        });
        rt.shutdown_timeout(Duration::from_millis(100));
        done
    }
}

impl Drop for Outputs {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
