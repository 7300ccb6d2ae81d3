//! `saker run`: live detection. The probe feeds the live stage through the pipeline's loop,
//! which never waits on outputs; signals only flip flags that the stage checks between batches.
//! With `engine.workers: 2` the probe is read on a thread of its own (docs/workers.md).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use saker_config::Config;
use saker_outputs::Metrics;
use saker_rules::ruleset::AlertOptions;

use crate::hold::Hold;
use crate::live::Live;
use crate::pipeline::{Detect, Detector, Until};
use crate::setup::{self, Inputs, Services, Signals};
use crate::threaded::ProbeInput;

pub fn run(opts: &Inputs, cfg: Config, duration: Option<f64>, stats: bool) -> anyhow::Result<i32> {
    saker_probe::check_environment().map_err(|e| anyhow::anyhow!("{e}"))?;
    crate::caps::report();
    let loaded = crate::rules::load(&cfg, opts)?;
    let metrics = Arc::new(Metrics::new());
    metrics.record_reload(true, loaded.ruleset.enabled().len(), setup::now_ns() as i64);
    let cfg_files = saker_config::load(opts.config.as_deref(), &opts.options)
        .map(|l| (l.files, l.folders))
        .unwrap_or_default();
    crate::stats::record_files(&metrics, &loaded.files, &cfg_files.0);
    crate::stats::record_static_info(&metrics, &cfg);
    metrics.set_groups(crate::outputs_cfg::metric_groups(&cfg));
    let services = Services::start(&cfg, metrics.clone())?;
    let signals = Signals::install()?;
    let _watch = if cfg.watch_config_files {
        let mut paths = cfg_files.0.clone();
        paths.extend(cfg_files.1.iter().cloned());
        paths.extend(loaded.files.iter().cloned());
        paths.extend(loaded.folders.iter().cloned());
        Some(crate::watch::Watch::start(&paths, signals.reload.clone())?)
    } else {
        None
    };
    let wc = setup::watcher_config(&cfg);
    // Holding alerts only makes sense when some runtime can answer.
    let runtime_present = !saker_container::resolve_sockets(&wc.docker_sockets).is_empty()
        || !saker_container::resolve_grpc_sockets(&wc.containerd_sockets).is_empty()
        || !saker_container::resolve_grpc_sockets(&wc.cri_sockets).is_empty();
    let containers =
        saker_container::Watcher::start(wc).context("starting the container metadata thread")?;
    let pc = setup::probe_config(&loaded.ruleset, &cfg)?;
    let split = cfg.engine.split_live();
    let (mut input, probe) = ProbeInput::open(&pc, split).context("loading the eBPF probe")?;
    if split {
        tracing::info!(
            "reading the probe on its own thread; state and rules on this one (engine.workers=2)"
        );
    }
    let hostname = crate::outputs_cfg::hostname(&cfg);
    let n_rules = loaded.ruleset.enabled().len();
    let sources = loaded.sources.join(", ");
    let mut det = Detector::new(
        setup::seeded_state(&cfg),
        Arc::new(loaded.ruleset),
        hostname.clone(),
        AlertOptions {
            time_format_iso_8601: cfg.time_format_iso_8601,
        },
    );
    if runtime_present {
        let mut hold = Hold::new(Duration::from_millis(cfg.container_engines.hold_ms));
        hold.held_total = metrics.alerts_held.clone();
        hold.expired_total = metrics.alerts_hold_expired.clone();
        det.hold = Some(hold);
    }
    let audit = crate::audit::AuditInputs::start(&cfg)?.map(|a| (a, Default::default()));
    services.health.store(true, Ordering::Relaxed);
    tracing::info!(
        "started: {n_rules} rules from {sources}, {} programs attached ({} mode, {} object, kernel {}, prefilter {}){}",
        probe.link_count(),
        probe.attach_mode().name(),
        probe.variant().name(),
        saker_probe::kernel_release(),
        match &pc.prefilter {
            None => "off".to_string(),
            Some(p) if p.any_mask == 0xf => "passing every open".to_string(),
            Some(p) => format!("on, {} path patterns", p.paths.len()),
        },
        if probe.unavailable().is_empty() {
            String::new()
        } else {
            format!(" (not available here: {})", probe.unavailable().join(", "))
        }
    );
    let root = setup::host_root();
    let mut flight = crate::flight::Flight::new(
        &cfg.capture,
        Box::new(move || saker_probe::procfs::scan(&root)),
    );
    if let Some(f) = flight.as_mut() {
        f.bytes_gauge = Some(metrics.capture_recorder_bytes.clone());
    }
    let mut live = Live {
        detect: Detect::new(det, flight),
        outputs: &services.outputs,
        metrics: &metrics,
        containers,
        audit,
        ticker: crate::stats::Ticker::new(&cfg, hostname),
        signals: &signals,
        inputs: opts,
        pc,
        probe: probe.clone(),
        drop_failed: cfg.engine.modern_ebpf.drop_failed_exit,
        cfg,
        exit_code: 0,
    };
    input.drive(&mut live, &Until::new(&signals.stop, duration))?;
    // The counters are read through the control's own map handles: with the probe on its
    // thread, that thread has already stopped and dropped it.
    drop(input);
    live.finish();
    // The metadata thread stops at the end, as before the stage existed.
    let Live {
        detect,
        ticker,
        cfg,
        exit_code,
        containers: _containers,
        ..
    } = live;
    let det = detect.det;
    services.health.store(false, Ordering::Relaxed);
    let report = services.shutdown(cfg.outputs.shutdown_timeout);
    let ps = probe.stats().unwrap_or_default();
    tracing::info!(
        "stopped. Syscall events: {} seen, {} dropped, {} processed, {} kept in the kernel by the prefilter",
        ps.events(),
        ps.drops(),
        det.stats.events,
        ps.filtered()
    );
    if let Some(h) = det.hold.as_ref() {
        tracing::info!(
            "container hold: {} alerts waited for metadata, {} sent without it after {} ms",
            h.held_total.get(),
            h.expired_total.get(),
            cfg.container_engines.hold_ms
        );
    }
    eprint!("{}", det.stats.summary());
    if stats {
        eprint!("{}", det.stats.cost_table(det.ruleset()));
    }
    eprint!("{}", ticker.drop_summary());
    eprint!("{report}");
    Ok(exit_code)
}
