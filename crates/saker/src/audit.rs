//! The `k8s_audit` source in the binary: `saker replay FILE.json`, and the audit inputs of
//! `saker run` (webhook, EKS CloudWatch Logs), which run on their own threads and hand events
//! to the event loop over a channel.

use std::sync::Arc;

use saker_k8saudit::AuditEvent;
use saker_rules::Alert;

use crate::cmd::replay::ReplayArgs;
use crate::pipeline::Detector;

/// Numbers audit events and runs the `k8s_audit` rules over them.
#[derive(Default)]
pub struct AuditStream {
    num: u64,
    first_ns: Option<u64>,
    matches: Vec<usize>,
}

impl AuditStream {
    /// Evaluates one audit event; syscall rules never see it.
    pub fn on_event(
        &mut self,
        det: &mut Detector,
        mut ev: AuditEvent,
        emit: &mut dyn FnMut(Alert),
    ) {
        self.num += 1;
        ev.num = self.num;
        let first = *self.first_ns.get_or_insert(ev.time_ns);
        det.stats.events += 1;
        self.matches.clear();
        let view = ev.view(&det.hostname, first);
        det.ruleset
            .matches_source(saker_k8saudit::SOURCE, &view, &mut self.matches);
        for &m in &self.matches {
            let a = det
                .ruleset
                .alert(m, &view, ev.time_ns, &det.hostname, &det.alert_opts);
            det.stats.alerts += 1;
            *det.stats.alerts_by_rule.entry(a.rule.clone()).or_default() += 1;
            emit(a);
        }
    }
}

/// Logs a dropped payload or event as the k8saudit plugin does (`[k8saudit] <message>`).
pub fn log_drop(msg: &str) {
    tracing::warn!("[k8saudit] {msg}");
}

/// `saker replay FILE` when FILE (or a directory) holds audit events: evaluates the
/// `k8s_audit` rules only, prints the summary, exits 0 at the end of the input.
pub fn replay(cfg: saker_config::Config, a: &ReplayArgs) -> anyhow::Result<i32> {
    if a.filter.is_some() {
        anyhow::bail!("--filter is not supported for audit inputs; use rules (-r) instead");
    }
    let rules = crate::rules::load(&cfg, a.rules)?;
    let metrics = Arc::new(saker_outputs::Metrics::new());
    let outputs = crate::outputs_cfg::start(&cfg, metrics)?;
    let max = crate::audit::max_event_size(&cfg)?;
    let mut det = Detector::new(
        saker_state::State::new(saker_state::Config::default()),
        Arc::new(rules.ruleset),
        crate::outputs_cfg::hostname(&cfg),
        saker_rules::ruleset::AlertOptions {
            time_format_iso_8601: cfg.time_format_iso_8601,
        },
    );
    let mut stream = AuditStream::default();
    let res = saker_k8saudit::reader::read_path(
        a.file,
        max,
        &mut |ev| stream.on_event(&mut det, ev, &mut |al| outputs.send(Arc::new(al))),
        &mut |e| log_drop(&e),
    );
    let report = outputs.shutdown(cfg.outputs.shutdown_timeout);
    res.map_err(|e| anyhow::anyhow!("reading {}: {e}", a.file.display()))?;
    eprint!("{}", det.stats.summary());
    eprint!("{report}");
    Ok(0)
}

/// `maxEventSize` of the configured k8saudit plugin's `init_config` (default 262144).
pub fn max_event_size(cfg: &saker_config::Config) -> anyhow::Result<usize> {
    Ok(crate::audit_config::AuditConfig::from_config(cfg)?.max_event_size)
}

/// The running audit input of `saker run`: its thread(s) feed a bounded channel that the
/// event loop drains between probe polls (or waits on, when no syscall source runs).
pub struct AuditInputs {
    rx: std::sync::mpsc::Receiver<Vec<AuditEvent>>,
    webhook: Option<saker_k8saudit::webhook::Webhook>,
    eks: Option<saker_k8saudit::eks::EksPoller>,
    reader: Option<std::thread::JoinHandle<()>>,
    stream: AuditStream,
    /// The input ended (a file read to its end).
    pub ended: bool,
}

impl AuditInputs {
    /// Starts the configured input (`plugins` entry `k8saudit` or `k8saudit-eks`); `None`
    /// when there is none.
    pub fn start(cfg: &saker_config::Config) -> anyhow::Result<Option<AuditInputs>> {
        use crate::audit_config::{AuditConfig, Input};
        let ac = AuditConfig::from_config(cfg)?;
        for k in &ac.inert_keys {
            tracing::warn!("{k} has no effect in Saker (extraction is always synchronous)");
        }
        let Some(input) = ac.input.clone() else {
            return Ok(None);
        };
        let (tx, rx) = match &input {
            // The poller's queue holds `buffer_size` payloads, as upstream's.
            Input::Eks(e) => std::sync::mpsc::sync_channel(e.buffer_size),
            _ => saker_k8saudit::webhook::channel(),
        };
        let mut me = AuditInputs {
            rx,
            webhook: None,
            eks: None,
            reader: None,
            stream: AuditStream::default(),
            ended: false,
        };
        match input {
            Input::File(path) => {
                let max = ac.max_event_size;
                tracing::info!("k8s_audit: reading {}", path.display());
                me.reader = Some(
                    std::thread::Builder::new()
                        .name("saker-audit-file".into())
                        .spawn(move || {
                            let mut batch = Vec::new();
                            let res = saker_k8saudit::reader::read_path(
                                &path,
                                max,
                                &mut |ev| {
                                    batch.push(ev);
                                    if batch.len() >= 256 {
                                        let _ = tx.send(std::mem::take(&mut batch));
                                    }
                                },
                                &mut |e| log_drop(&e),
                            );
                            if !batch.is_empty() {
                                let _ = tx.send(batch);
                            }
                            if let Err(e) = res {
                                tracing::error!("k8s_audit: reading {}: {e}", path.display());
                            }
                        })?,
                );
            }
            Input::Webhook { addr, path, tls } => {
                let w = saker_k8saudit::webhook::Webhook::start(
                    saker_k8saudit::webhook::WebhookConfig {
                        addr,
                        path: path.clone(),
                        tls_pem: tls.then(|| ac.ssl_certificate.clone()),
                        max_body: ac.webhook_max_batch_size,
                        max_event_size: ac.max_event_size,
                    },
                    tx,
                )
                .map_err(|e| anyhow::anyhow!(e))?;
                tracing::info!(
                    "k8s_audit: webhook on {}://{}{path}",
                    if tls { "https" } else { "http" },
                    w.addr()
                );
                me.webhook = Some(w);
            }
            Input::Eks(e) => {
                me.eks = Some(
                    saker_k8saudit::eks::EksPoller::start(e, tx).map_err(|e| anyhow::anyhow!(e))?,
                );
            }
        }
        Ok(Some(me))
    }

    /// Evaluates what has arrived, without waiting.
    pub fn drain(&mut self, det: &mut Detector, emit: &mut dyn FnMut(Alert)) {
        use std::sync::mpsc::TryRecvError;
        loop {
            match self.rx.try_recv() {
                Ok(batch) => batch
                    .into_iter()
                    .for_each(|ev| self.stream.on_event(det, ev, emit)),
                Err(TryRecvError::Empty) => return,
                Err(TryRecvError::Disconnected) => {
                    self.ended = true;
                    return;
                }
            }
        }
    }

    /// Waits up to `timeout` for events, then evaluates everything that arrived.
    pub fn wait(
        &mut self,
        timeout: std::time::Duration,
        det: &mut Detector,
        emit: &mut dyn FnMut(Alert),
    ) {
        use std::sync::mpsc::RecvTimeoutError;
        match self.rx.recv_timeout(timeout) {
            Ok(batch) => batch
                .into_iter()
                .for_each(|ev| self.stream.on_event(det, ev, emit)),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => self.ended = true,
        }
        self.drain(det, emit);
    }

    /// Stops the inputs (the webhook gracefully), evaluates what they had queued, and logs
    /// their counters.
    pub fn stop(mut self, det: &mut Detector, emit: &mut dyn FnMut(Alert)) {
        if let Some(w) = self.webhook.take() {
            let summary = w.counters.summary();
            drop(w);
            tracing::info!("{summary}");
        }
        if let Some(e) = self.eks.take() {
            e.stop();
        }
        self.drain(det, emit);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.drain(det, emit);
    }
}

/// `saker run` without the syscall source (`--disable-source syscall`, `engine.kind:
/// nodriver`): only the audit input runs, e.g. the chart's single-replica EKS Deployment.
pub fn run_audit_only(
    opts: &crate::cli::RulesOpts,
    cfg: saker_config::Config,
    duration: Option<f64>,
) -> anyhow::Result<i32> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let loaded = crate::rules::load(&cfg, opts)?;
    let metrics = Arc::new(saker_outputs::Metrics::new());
    let outputs = crate::outputs_cfg::start(&cfg, metrics.clone())?;
    let health = Arc::new(AtomicBool::new(false));
    let _web = if cfg.webserver.enabled {
        let addr = crate::outputs_cfg::web_addr(&cfg)?;
        let wo = crate::outputs_cfg::web_options(&cfg);
        Some(saker_outputs::web::WebServer::start(
            addr,
            metrics.clone(),
            health.clone(),
            wo,
        )?)
    } else {
        None
    };
    let signals = crate::cmd::run::Signals::install()?;
    let n_rules = loaded.ruleset.enabled_in(saker_k8saudit::SOURCE).len();
    let mut det = Detector::new(
        saker_state::State::new(saker_state::Config::default()),
        Arc::new(loaded.ruleset),
        crate::outputs_cfg::hostname(&cfg),
        saker_rules::ruleset::AlertOptions {
            time_format_iso_8601: cfg.time_format_iso_8601,
        },
    );
    let Some(mut inputs) = AuditInputs::start(&cfg)? else {
        anyhow::bail!("the syscall source is disabled and no k8s_audit input is configured (plugins: k8saudit or k8saudit-eks): nothing to detect");
    };
    health.store(true, Ordering::Relaxed);
    tracing::info!("started: {n_rules} k8s_audit rules, syscall source disabled");
    let deadline = duration.map(|s| Instant::now() + Duration::from_secs_f64(s));
    let send = |a: Alert| outputs.send(Arc::new(a));
    let mut emit = send;
    while !signals.stop.load(Ordering::Relaxed)
        && deadline.is_none_or(|d| Instant::now() < d)
        && !inputs.ended
    {
        inputs.wait(Duration::from_millis(100), &mut det, &mut emit);
        if signals.reopen.swap(false, Ordering::Relaxed) {
            outputs.reopen_files();
        }
    }
    inputs.stop(&mut det, &mut emit);
    health.store(false, Ordering::Relaxed);
    let report = outputs.shutdown(cfg.outputs.shutdown_timeout);
    eprint!("{}", det.stats.summary());
    eprint!("{report}");
    Ok(0)
}
