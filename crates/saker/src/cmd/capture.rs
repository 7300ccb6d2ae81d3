//! `saker capture`: record live events into a scap file for `saker replay`.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use saker_event::Event;
use saker_probe::{Probe, ProbeConfig};

use crate::cli::RulesOpts;
use crate::cmd::run::{load_config, probe_config, watcher_config, Signals};

pub fn run(file: &Path, duration: Option<f64>, opts: &RulesOpts) -> anyhow::Result<i32> {
    saker_probe::check_environment().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Record what the configured rules need (plus the state set), so a replay
    // of the file sees what live detection saw; with no rules at all, everything.
    let cfg = load_config(opts)?;
    let pc = if opts.rules.is_empty() && opts.config.is_none() {
        let mut pc = ProbeConfig::for_event_types(saker_probe::SYSCALLS.iter().map(|d| d.name));
        pc.attach = super::run::attach_mode(&cfg)?;
        pc
    } else {
        // A capture records what the rules select, unfiltered: it is replayed later,
        // possibly with other rules.
        let mut pc = probe_config(&crate::rules::load(&cfg, opts)?.ruleset, &cfg)?;
        pc.prefilter = None;
        pc
    };
    // Container metadata is recorded as container events, as live detection would know it.
    let mut containers = saker_container::Watcher::start(watcher_config(&cfg))
        .context("starting the container metadata thread")?;
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
            request_container(&mut containers, ev);
        })?;
        while let Some((id, meta)) = containers.try_recv() {
            if let Err(e) = w.write_event(&container_event(&id, &meta)) {
                err = Some(e);
            }
        }
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

/// Asks for the container of a process that starts or execs (from the event's own cgroups:
/// capture keeps no thread table).
fn request_container(w: &mut saker_container::Watcher, ev: &Event) {
    if !ev.is_exit() || !matches!(ev.type_name(), "execve" | "execveat" | "clone" | "clone3") {
        return;
    }
    let Some(cg) = ev.bytes_by_name("cgroups") else {
        return;
    };
    let entries: Vec<Vec<u8>> = cg
        .split(|&b| b == 0)
        .filter(|e| !e.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let id = saker_state::paths::container_id(&entries);
    if !id.is_empty() {
        w.request(&id);
    }
}

/// A CONTAINER_JSON_2_E event (324) carrying `meta`, as libsinsp writes them (tid 0).
fn container_event(id: &str, meta: &saker_state::ContainerMeta) -> Event {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut ev = Event::new(0, now, 0, 0, 324);
    let mut json = saker_state::meta_to_json(id, meta).into_bytes();
    json.push(0);
    ev.push_param(&json);
    ev
}
