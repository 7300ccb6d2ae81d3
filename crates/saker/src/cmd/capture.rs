//! `saker capture`: record live events into a scap file for `saker replay`. The probe feeds a
//! recording stage through the pipeline's loop.

use std::path::Path;

use anyhow::Context;
use saker_capture::{FileSink, Writer};
use saker_event::Event;
use saker_probe::{Probe, ProbeConfig};

use crate::pipeline::{Flow, Stage, Until};
use crate::setup::{self, Inputs, Signals};

pub fn run(file: &Path, duration: Option<f64>, opts: &Inputs) -> anyhow::Result<i32> {
    saker_probe::check_environment().map_err(|e| anyhow::anyhow!("{e}"))?;
    // Record what the configured rules need (plus the state set), so a replay
    // of the file sees what live detection saw; with no rules at all, everything.
    let cfg = setup::load_config(opts)?;
    let pc = if opts.rules.is_empty() && opts.config.is_none() {
        let mut pc = ProbeConfig::for_event_types(saker_probe::SYSCALLS.iter().map(|d| d.name));
        pc.attach = setup::attach_mode(&cfg)?;
        pc
    } else {
        // A capture records what the rules select, unfiltered: it is replayed later,
        // possibly with other rules.
        let mut pc = setup::probe_config(&crate::rules::load(&cfg, opts)?.ruleset, &cfg)?;
        pc.prefilter = None;
        pc
    };
    // Container metadata is recorded as container events, as live detection would know it.
    let containers = saker_container::Watcher::start(setup::watcher_config(&cfg))
        .context("starting the container metadata thread")?;
    let signals = Signals::install()?;
    let mut probe = Probe::load(&pc).context("loading the eBPF probe")?;
    let snapshot = saker_probe::procfs::scan(&setup::host_root());
    let w = saker_capture::Writer::create(file, &snapshot)
        .with_context(|| format!("cannot write {}", file.display()))?;
    eprintln!("saker: started: capturing to {}", file.display());
    let mut rec = Record {
        w,
        containers,
        n: 0,
        err: None,
    };
    crate::pipeline::drive(&mut probe, &mut rec, &Until::new(&signals.stop, duration))?;
    if let Some(e) = rec.err.take() {
        return Err(e.into());
    }
    rec.w.finish()?;
    let ps = probe.stats().unwrap_or_default();
    eprintln!(
        "saker: captured {} events ({} dropped) to {}",
        rec.n,
        ps.drops(),
        file.display()
    );
    Ok(0)
}

/// The recording stage: every event into the file, and the metadata of the containers that
/// start, as container events.
struct Record {
    w: Writer<FileSink>,
    containers: saker_container::Watcher,
    n: u64,
    /// The first write error; it ends the capture after the batch.
    err: Option<saker_capture::CaptureError>,
}

impl Stage<Probe> for Record {
    fn event(&mut self, ev: &Event) {
        if self.err.is_none() {
            match self.w.write_event(ev) {
                Ok(()) => self.n += 1,
                Err(e) => self.err = Some(e),
            }
        }
        request_container(&mut self.containers, ev);
    }

    fn after_batch(&mut self, _probe: &mut Probe, _n: usize) -> anyhow::Result<Flow> {
        while let Some((id, meta)) = self.containers.try_recv() {
            if let Err(e) = self.w.write_event(&container_event(&id, &meta)) {
                self.err = Some(e);
            }
        }
        match self.err.take() {
            Some(e) => Err(e.into()),
            None => Ok(Flow::Continue),
        }
    }
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
    let entries: saker_state::NulList = cg.split(|&b| b == 0).filter(|e| !e.is_empty()).collect();
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
