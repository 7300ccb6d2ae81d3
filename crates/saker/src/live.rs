//! Live detection as a pipeline stage: the probe's events go through detection (and the
//! capture-on-alert recorder); between batches the stage drains the audit input, answers
//! container lookups, releases held alerts, reopens files, reloads and ticks the metrics.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use saker_config::Config;
use saker_event::Event;
use saker_outputs::{Metrics, Outputs};
use saker_probe::{ProbeConfig, ProbeControl};

use crate::audit::{AuditInputs, AuditStream};
use crate::pipeline::{Detect, Detector, Flow, Source, Stage, POLL_WAIT};
use crate::setup::{load_config, probe_config, Inputs, Signals};
use crate::stats::Ticker;

pub struct Live<'a> {
    pub detect: Detect,
    pub outputs: &'a Outputs,
    pub metrics: &'a Metrics,
    pub containers: saker_container::Watcher,
    /// The k8s_audit input, if configured: its own thread and channel, drained between batches.
    pub audit: Option<(AuditInputs, AuditStream)>,
    pub ticker: Ticker,
    pub signals: &'a Signals,
    pub inputs: &'a Inputs,
    /// The probe's selection at start (a reload keeps it).
    pub pc: ProbeConfig,
    /// Counters and prefilter of the probe, wherever it is polled (this thread or the
    /// decode thread of `engine.workers: 2`).
    pub probe: ProbeControl,
    pub cfg: Config,
    /// `engine.modern_ebpf.drop_failed_exit`, read per event.
    pub drop_failed: bool,
    pub exit_code: i32,
}

/// The same stage whether the probe is polled here or on the decode thread: between batches it
/// only needs the probe's [`ProbeControl`], never the source.
impl<S: Source<Event = Event>> Stage<S> for Live<'_> {
    /// Held alerts wake the loop when their wait is over.
    fn wait(&self) -> Duration {
        self.detect
            .det
            .hold
            .as_ref()
            .and_then(|h| h.next_due())
            .map_or(POLL_WAIT, |d| {
                d.saturating_duration_since(Instant::now()).min(POLL_WAIT)
            })
    }

    #[inline]
    fn event(&mut self, ev: &Event) {
        if self.drop_failed && ev.res().is_some_and(|r| r < 0) && ev.type_name() != "procexit" {
            return;
        }
        let outputs = self.outputs;
        self.detect.on_event(ev, &mut |a| outputs.send(Arc::new(a)));
        request_container(&mut self.containers, &mut self.detect.det, ev);
    }

    fn after_batch(&mut self, _src: &mut S, n: usize) -> anyhow::Result<Flow> {
        let outputs = self.outputs;
        let emit = &mut |a| outputs.send(Arc::new(a));
        if let Some((a, stream)) = self.audit.as_mut() {
            let det = &mut self.detect.det;
            crate::pipeline::Source::poll(a, Duration::ZERO, |ev| stream.on_event(det, ev, emit))?;
        }
        self.ticker.poll_done(n as u64, outputs);
        sync_containers(&mut self.containers, &mut self.detect.det);
        self.detect.det.release_held(false, emit);
        if self.signals.reopen.swap(false, Ordering::Relaxed) {
            outputs.reopen_files();
        }
        if self.signals.reload.swap(false, Ordering::Relaxed) {
            let old = std::mem::take(&mut self.cfg);
            self.cfg = reload(
                self.inputs,
                old,
                &mut self.detect.det,
                self.metrics,
                &self.pc,
                &self.probe,
            );
            self.drop_failed = self.cfg.engine.modern_ebpf.drop_failed_exit;
            self.ticker.reconfigure(&self.cfg);
        }
        if self
            .ticker
            .tick(&self.probe, &self.detect.det, self.metrics, outputs)
        {
            tracing::error!("Exiting.");
            self.exit_code = 1;
            return Ok(Flow::Stop);
        }
        Ok(Flow::Continue)
    }
}

impl Live<'_> {
    /// After the loop: stops the audit input, closes the capture, releases every held alert,
    /// flushes the metrics.
    pub fn finish(&mut self) {
        let outputs = self.outputs;
        let emit = &mut |a| outputs.send(Arc::new(a));
        if let Some((a, mut stream)) = self.audit.take() {
            let det = &mut self.detect.det;
            a.stop(|ev| stream.on_event(det, ev, emit));
        }
        self.detect.finish();
        self.detect.det.release_held(true, emit);
        self.ticker
            .flush(&self.probe, &self.detect.det, self.metrics, outputs, true);
    }
}

/// Reloads config and rules; a reload that fails keeps the running rules.
/// The kernel-side selection is kept (reattaching would leave a gap in
/// events); rules that need syscalls it lacks are reported.
fn reload(
    opts: &Inputs,
    old: Config,
    det: &mut Detector,
    metrics: &Metrics,
    running: &ProbeConfig,
    probe: &ProbeControl,
) -> Config {
    let attempt = load_config(opts).and_then(|cfg| Ok((crate::rules::load(&cfg, opts)?, cfg)));
    if attempt.is_err() {
        // The failed config may have changed the log settings: keep the running ones.
        crate::logging::configure(&old);
    }
    match attempt {
        Ok((loaded, cfg)) => {
            let n = loaded.ruleset.enabled().len();
            let (have, _) = running.selected();
            let wanted = probe_config(&loaded.ruleset, &cfg).ok();
            let (want, _) = match &wanted {
                Some(w) => w.selected(),
                None => running.selected(),
            };
            // The kernel filter follows the new rules (pass-all when turned off).
            let pf = wanted
                .and_then(|w| w.prefilter)
                .unwrap_or(saker_probe::Prefilter {
                    any_mask: 0xf,
                    suppress_closes: false,
                    paths: vec![],
                });
            if let Err(e) = probe.set_prefilter(&pf) {
                tracing::warn!("prefilter not updated, passing every open: {e}");
                let _ = probe.set_prefilter(&saker_probe::Prefilter {
                    any_mask: 0xf,
                    ..Default::default()
                });
            }
            let missing: Vec<&str> = want
                .iter()
                .filter(|d| !have.contains(d))
                .map(|d| d.name)
                .collect();
            if !missing.is_empty() {
                tracing::warn!(
                    "the reloaded rules need syscalls not captured since start ({}); restart saker to capture them",
                    missing.join(", ")
                );
            }
            det.set_ruleset(Arc::new(loaded.ruleset));
            metrics.record_reload(true, n, crate::setup::now_ns() as i64);
            let cfg_files = saker_config::load(opts.config.as_deref(), &opts.options)
                .map(|l| l.files)
                .unwrap_or_default();
            crate::stats::record_files(metrics, &loaded.files, &cfg_files);
            tracing::info!("reloaded: {n} rules");
            cfg
        }
        Err(e) => {
            metrics.record_reload(
                false,
                det.ruleset().enabled().len(),
                crate::setup::now_ns() as i64,
            );
            tracing::error!("reload failed, keeping the running rules: {e:#}");
            old
        }
    }
}

/// Asks the metadata thread about the container of a process that starts or execs, and about
/// the containers whose alerts the hold just started waiting for.
fn request_container(
    w: &mut saker_container::Watcher,
    det: &mut Detector,
    ev: &saker_event::Event,
) {
    if let Some(h) = det.hold.as_mut() {
        for id in h.take_wanted() {
            // Already asked (and answered, or in flight): the answer reaches the hold anyway.
            w.request(&id);
        }
    }
    if !is_spawn_exit(ev.etype) {
        return;
    }
    if let Some(t) = det.state.thread(ev.tid) {
        if !t.container_id.is_empty()
            && det.state.container_meta(&t.container_id).is_none()
            && w.request(&t.container_id)
        {
            if let Some(h) = det.hold.as_mut() {
                h.lookup_started(&t.container_id);
            }
        }
    }
}

/// Exit events of the syscalls that start or exec a process (a table per type id: this runs
/// for every event).
fn is_spawn_exit(etype: u16) -> bool {
    static T: std::sync::OnceLock<Vec<bool>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        (0..=saker_event::table::EVENT_MAX)
            .map(|i| {
                saker_event::table::info(i).is_some_and(|inf| {
                    inf.dir == saker_event::table::Dir::Exit
                        && matches!(
                            inf.name,
                            "execve" | "execveat" | "clone" | "clone3" | "fork" | "vfork"
                        )
                })
            })
            .collect()
    })
    .get(etype as usize)
    .copied()
    .unwrap_or(false)
}

/// Takes the metadata thread's answers into state and the hold.
fn sync_containers(w: &mut saker_container::Watcher, det: &mut Detector) {
    while let Some(a) = w.try_answer() {
        match a {
            saker_container::Answer::Found(id, meta) => {
                det.state.set_container_meta(id.as_bytes(), *meta);
                if let Some(h) = det.hold.as_mut() {
                    h.known(id.as_bytes());
                }
            }
            saker_container::Answer::Unknown(id) => {
                if let Some(h) = det.hold.as_mut() {
                    h.unknown(id.as_bytes());
                }
            }
        }
    }
}
