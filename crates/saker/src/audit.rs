//! The `k8s_audit` source in the binary: `saker replay FILE.json`, and the audit inputs of
//! `saker run` (webhook, EKS CloudWatch Logs), which run on their own threads and hand events
//! to the event loop over a channel.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use saker_k8saudit::AuditEvent;
use saker_rules::Alert;

use crate::cmd::replay::ReplayArgs;
use crate::pipeline::{Detector, Flow, Source, Stage, Until};

/// Runs the `k8s_audit` rules over audit events (numbered by their source).
#[derive(Default)]
pub struct AuditStream {
    first_ns: Option<u64>,
    matches: Vec<usize>,
}

impl AuditStream {
    /// Evaluates one audit event; syscall rules never see it.
    pub fn on_event(&mut self, det: &mut Detector, ev: &AuditEvent, emit: &mut dyn FnMut(Alert)) {
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
    let mut src = AuditFile {
        path: a.file.to_path_buf(),
        max: max_event_size(&cfg)?,
        num: 0,
        result: None,
    };
    let mut stage = AuditStage::new(audit_detector(&cfg, rules.ruleset), &outputs, None);
    stage.wait = crate::cmd::replay::OUTPUT_WAIT;
    crate::pipeline::drive(&mut src, &mut stage, &Until::default())?;
    let summary = stage.det.stats.summary();
    drop(stage);
    let report = outputs.shutdown(cfg.outputs.shutdown_timeout);
    if let Some(Err(e)) = src.result {
        anyhow::bail!("reading {}: {e}", a.file.display());
    }
    eprint!("{summary}");
    eprint!("{report}");
    Ok(0)
}

/// A detector for audit events only (no syscall state).
fn audit_detector(cfg: &saker_config::Config, ruleset: saker_rules::ruleset::Ruleset) -> Detector {
    Detector::new(
        saker_state::State::new(saker_state::Config::default()),
        Arc::new(ruleset),
        crate::outputs_cfg::hostname(cfg),
        saker_rules::ruleset::AlertOptions {
            time_format_iso_8601: cfg.time_format_iso_8601,
        },
    )
}

/// An audit file or directory, read in one batch.
struct AuditFile {
    path: std::path::PathBuf,
    max: usize,
    num: u64,
    /// Set once read.
    result: Option<std::io::Result<()>>,
}

impl Source for AuditFile {
    type Event = AuditEvent;

    fn poll<F: FnMut(&AuditEvent)>(
        &mut self,
        _wait: Duration,
        mut f: F,
    ) -> anyhow::Result<Option<usize>> {
        if self.result.is_some() {
            return Ok(None);
        }
        let start = self.num;
        let num = &mut self.num;
        self.result = Some(saker_k8saudit::reader::read_path(
            &self.path,
            self.max,
            &mut |mut ev| {
                *num += 1;
                ev.num = *num;
                f(&ev)
            },
            &mut |e| log_drop(&e),
        ));
        Ok(Some((self.num - start) as usize))
    }
}

/// Audit detection as a pipeline stage (replay, and `saker run` without the syscall source).
pub struct AuditStage<'a> {
    pub det: Detector,
    stream: AuditStream,
    outputs: &'a saker_outputs::Outputs,
    /// SIGUSR1's flag: reopen output files.
    reopen: Option<Arc<AtomicBool>>,
    /// How long an alert may wait for room in a full output queue (files only).
    wait: std::time::Duration,
}

impl<'a> AuditStage<'a> {
    fn new(
        det: Detector,
        outputs: &'a saker_outputs::Outputs,
        reopen: Option<Arc<AtomicBool>>,
    ) -> Self {
        AuditStage {
            det,
            stream: AuditStream::default(),
            outputs,
            reopen,
            wait: std::time::Duration::ZERO,
        }
    }
}

impl<S: Source<Event = AuditEvent>> Stage<S> for AuditStage<'_> {
    fn event(&mut self, ev: &AuditEvent) {
        let (outputs, wait) = (self.outputs, self.wait);
        self.stream.on_event(&mut self.det, ev, &mut |a| {
            outputs.send_within(Arc::new(a), wait)
        });
    }

    fn after_batch(&mut self, _src: &mut S, _n: usize) -> anyhow::Result<Flow> {
        if self
            .reopen
            .as_ref()
            .is_some_and(|r| r.swap(false, Ordering::Relaxed))
        {
            self.outputs.reopen_files();
        }
        Ok(Flow::Continue)
    }
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
    /// The last event number given.
    num: u64,
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
            num: 0,
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

    /// Numbers and hands over one batch.
    fn deliver<F: FnMut(&AuditEvent)>(&mut self, batch: Vec<AuditEvent>, f: &mut F) -> usize {
        let n = batch.len();
        for mut ev in batch {
            self.num += 1;
            ev.num = self.num;
            f(&ev);
        }
        n
    }

    /// Hands over what has arrived, without waiting.
    fn drain_into<F: FnMut(&AuditEvent)>(&mut self, f: &mut F) -> usize {
        use std::sync::mpsc::TryRecvError;
        let mut n = 0;
        loop {
            match self.rx.try_recv() {
                Ok(batch) => n += self.deliver(batch, f),
                Err(TryRecvError::Empty) => return n,
                Err(TryRecvError::Disconnected) => {
                    self.ended = true;
                    return n;
                }
            }
        }
    }

    /// Stops the inputs (the webhook gracefully), hands over what they had queued, and logs
    /// their counters.
    pub fn stop<F: FnMut(&AuditEvent)>(mut self, mut f: F) {
        if let Some(w) = self.webhook.take() {
            let summary = w.counters.summary();
            drop(w);
            tracing::info!("{summary}");
        }
        if let Some(e) = self.eks.take() {
            e.stop();
        }
        self.drain_into(&mut f);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        self.drain_into(&mut f);
    }
}

/// Waits up to `wait` for a batch, then hands over everything that arrived; `None` once the
/// input has ended (a file read to its end).
impl Source for AuditInputs {
    type Event = AuditEvent;

    fn poll<F: FnMut(&AuditEvent)>(
        &mut self,
        wait: Duration,
        mut f: F,
    ) -> anyhow::Result<Option<usize>> {
        use std::sync::mpsc::RecvTimeoutError;
        if self.ended {
            return Ok(None);
        }
        let mut n = 0;
        if !wait.is_zero() {
            match self.rx.recv_timeout(wait) {
                Ok(batch) => n += self.deliver(batch, &mut f),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.ended = true,
            }
        }
        n += self.drain_into(&mut f);
        Ok(Some(n))
    }
}

/// `saker run` without the syscall source (`--disable-source syscall`, `engine.kind:
/// nodriver`): only the audit input runs, e.g. the chart's single-replica EKS Deployment.
pub fn run_audit_only(
    opts: &crate::setup::Inputs,
    cfg: saker_config::Config,
    duration: Option<f64>,
) -> anyhow::Result<i32> {
    let loaded = crate::rules::load(&cfg, opts)?;
    let metrics = Arc::new(saker_outputs::Metrics::new());
    let services = crate::setup::Services::start(&cfg, metrics)?;
    let signals = crate::setup::Signals::install()?;
    let n_rules = loaded.ruleset.enabled_in(saker_k8saudit::SOURCE).len();
    let det = audit_detector(&cfg, loaded.ruleset);
    let Some(mut inputs) = AuditInputs::start(&cfg)? else {
        anyhow::bail!("the syscall source is disabled and no k8s_audit input is configured (plugins: k8saudit or k8saudit-eks): nothing to detect");
    };
    services.health.store(true, Ordering::Relaxed);
    tracing::info!("started: {n_rules} k8s_audit rules, syscall source disabled");
    let outputs = &services.outputs;
    let mut stage = AuditStage::new(det, outputs, Some(signals.reopen.clone()));
    crate::pipeline::drive(
        &mut inputs,
        &mut stage,
        &Until::new(&signals.stop, duration),
    )?;
    inputs.stop(|ev| Stage::<AuditInputs>::event(&mut stage, ev));
    services.health.store(false, Ordering::Relaxed);
    let summary = stage.det.stats.summary();
    drop(stage);
    let report = services.shutdown(cfg.outputs.shutdown_timeout);
    eprint!("{summary}");
    eprint!("{report}");
    Ok(0)
}
