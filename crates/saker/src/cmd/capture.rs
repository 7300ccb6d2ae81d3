//! `saker capture`: record live events into a scap file for `saker replay`.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use saker_probe::{Probe, ProbeConfig};

use crate::cli::RulesOpts;
use crate::cmd::run::{load_config, probe_config, Signals};

pub fn run(file: &Path, duration: Option<f64>, opts: &RulesOpts) -> anyhow::Result<i32> {
    saker_probe::check_environment().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Record what the configured rules need (plus the state set), so a replay
    // of the file sees what live detection saw; with no rules at all, everything.
    let pc = if opts.rules.is_empty() && opts.config.is_none() {
        ProbeConfig::for_event_types(saker_probe::SYSCALLS.iter().map(|d| d.name))
    } else {
        let cfg = load_config(opts)?;
        probe_config(&crate::rules::load(&cfg, opts)?.ruleset, &cfg)
    };
    let signals = Signals::install()?;
    let mut probe = Probe::load(&pc).context("loading the eBPF probe")?;
    let snapshot = saker_probe::procfs::scan(&super::run::host_root());
    let mut w = saker_capture::Writer::create(file, &snapshot)
        .with_context(|| format!("cannot write {}", file.display()))?;
    eprintln!("saker: started: capturing to {}", file.display());
    let deadline = duration.map(|s| Instant::now() + Duration::from_secs_f64(s));
    let mut n = 0u64;
    let mut err = None;
    while !signals.stop.load(Ordering::Relaxed) && deadline.is_none_or(|d| Instant::now() < d) {
        probe.poll(Duration::from_millis(100), |ev| {
            if err.is_none() {
                match w.write_event(ev) {
                    Ok(()) => n += 1,
                    Err(e) => err = Some(e),
                }
            }
        })?;
        if let Some(e) = err.take() {
            return Err(e.into());
        }
    }
    probe.poll(Duration::from_millis(50), |ev| {
        if w.write_event(ev).is_ok() {
            n += 1;
        }
    })?;
    w.finish()?;
    let ps = probe.stats().unwrap_or_default();
    eprintln!(
        "saker: captured {n} events ({} dropped) to {}",
        ps.drops(),
        file.display()
    );
    Ok(0)
}
