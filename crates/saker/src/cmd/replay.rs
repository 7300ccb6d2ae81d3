//! `saker replay`: run rules over a capture file, or print the events that
//! match a filter (like `sysdig -r FILE -p FORMAT FILTER`).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use saker_capture::Reader;
use saker_event::Event;
use saker_rules::format::OutputFormat;
use saker_rules::ruleset::AlertOptions;
use saker_state::State;

use crate::cli::RulesOpts;
use crate::pipeline::Detector;

/// sysdig's default line format.
const DEFAULT_FORMAT: &str =
    "%evt.num %evt.time %evt.cpu %proc.name (%thread.tid) %evt.dir %evt.type %evt.args";

pub struct ReplayArgs<'a> {
    pub rules: &'a RulesOpts,
    pub file: &'a Path,
    pub filter: Option<&'a str>,
    pub format: Option<&'a str>,
    pub progress: bool,
    /// Apply the in-kernel prefilter's decisions (see `prefilter_twin`).
    pub prefilter: bool,
    /// Print why each alert's rule fired (stderr).
    pub explain: bool,
}

fn open(file: &Path) -> anyhow::Result<(Reader, State)> {
    let reader = Reader::open(file).with_context(|| format!("cannot read {}", file.display()))?;
    let mut state = State::new(saker_state::Config::default());
    state.seed(reader.snapshot());
    Ok((reader, state))
}

fn progress_bar(file: &Path, enabled: bool) -> Option<indicatif::ProgressBar> {
    if !enabled || !std::io::stderr().is_terminal() {
        return None;
    }
    let len = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    let pb = indicatif::ProgressBar::new(len);
    pb.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {bytes}/{total_bytes} {msg}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    Some(pb)
}

pub fn run(a: ReplayArgs) -> anyhow::Result<i32> {
    match a.filter {
        Some(f) => run_filter(&a, f),
        None => run_rules(&a),
    }
}

fn run_filter(a: &ReplayArgs, filter: &str) -> anyhow::Result<i32> {
    if saker_k8saudit::reader::is_audit_input(a.file).unwrap_or(false) {
        anyhow::bail!("--filter is not supported for audit inputs; use rules (-r) instead");
    }
    let expr = saker_rules::parse::parse_condition(filter).map_err(|e| anyhow!("filter: {e}"))?;
    let (compiled, _warnings) =
        saker_rules::compile::compile(&expr).map_err(|e| anyhow!("filter: {e}"))?;
    let fmt = OutputFormat::parse(a.format.unwrap_or(DEFAULT_FORMAT))
        .map_err(|e| anyhow!("format: {e}"))?;
    let (mut reader, mut state) = open(a.file)?;
    let out = std::io::stdout();
    let mut out = std::io::BufWriter::new(out.lock());
    let mut ev = Event::default();
    let mut line = String::new();
    while reader.next_event(&mut ev)? {
        {
            let ctx = state.process(&ev);
            if !is_internal(&ev) && compiled.eval(&ctx) {
                line.clear();
                fmt.render(&ctx, &mut line);
                line.push('\n');
                if out.write_all(line.as_bytes()).is_err() {
                    return Ok(0); // closed pipe (e.g. `| head`)
                }
            }
        }
        state.finish();
    }
    out.flush().ok();
    Ok(0)
}

/// `--explain`: the condition tree of `rule` on the event that fired it.
fn explain_alert(det: &Detector, ev: &Event, rule: &str) {
    let rs = det.ruleset();
    let Some(idx) = rs.find(rule) else { return };
    // The state after the event (deferred fd/thread removals applied; rules saw it before).
    let ctx = det.state.view(ev);
    if let Some(x) = rs.explain(idx, &ctx) {
        let mut out = format!(
            "explain '{rule}' at event #{} ({}):\n",
            ev.num,
            ev.type_name()
        );
        for line in x.lines() {
            out.push_str("  ");
            out.push_str(line);
            out.push('\n');
        }
        eprint!("{out}");
    }
}

/// Internal meta events (procinfo, container, ...) update state but are not
/// shown, as sysdig hides them without `-D`.
fn is_internal(ev: &Event) -> bool {
    // Container metadata events are consumed by the container engine, as libsinsp does.
    saker_event::table::info(ev.etype)
        .is_some_and(|i| i.category & saker_event::table::EC_INTERNAL != 0 || i.name == "container")
}

fn run_rules(a: &ReplayArgs) -> anyhow::Result<i32> {
    let cfg = crate::cmd::run::load_config(a.rules)?;
    run_rules_with(cfg, a)
}

/// Rules over the capture with an already loaded config (Falco's `-e`, `engine.kind: replay`).
pub fn run_rules_with(cfg: saker_config::Config, a: &ReplayArgs) -> anyhow::Result<i32> {
    // Audit events (JSON) or a scap capture, told apart by content.
    if saker_k8saudit::reader::is_audit_input(a.file)
        .with_context(|| format!("cannot read {}", a.file.display()))?
    {
        return crate::audit::replay(cfg, a);
    }
    let rules = crate::rules::load(&cfg, a.rules)?;
    let metrics = Arc::new(saker_outputs::Metrics::new());
    let outputs = crate::outputs_cfg::start(&cfg, metrics)?;
    let (mut reader, state) = open(a.file)?;
    let mut twin = a.prefilter.then(|| {
        crate::prefilter_twin::Twin::new(saker_rules::prefilter::Plan::for_ruleset(&rules.ruleset))
    });
    let hostname = reader
        .snapshot()
        .hostname
        .clone()
        .unwrap_or_else(|| crate::outputs_cfg::hostname(&cfg));
    let mut det = Detector::new(
        state,
        Arc::new(rules.ruleset),
        hostname,
        AlertOptions {
            time_format_iso_8601: cfg.time_format_iso_8601,
        },
    );
    let snap = reader.snapshot().clone();
    let mut flight = crate::flight::Flight::new(&cfg.capture, Box::new(move || snap.clone()));
    let pb = progress_bar(a.file, a.progress);
    let mut ev = Event::default();
    let mut n = 0u64;
    let started = std::time::Instant::now();
    // Alerts go to the outputs in bursts: one per alert woke the output thread for each
    // (a third of the CPU of a replay with thousands of alerts). Below the queue capacity;
    // with --explain each goes out at once, next to its explanation.
    let burst_len = if a.explain { 1 } else { 512 };
    let mut burst: Vec<saker_rules::Alert> = Vec::with_capacity(burst_len);
    let mut injected: Vec<Event> = Vec::new();
    while reader.next_event(&mut ev)? {
        if let Some(t) = twin.as_mut() {
            let keep = t.filter(&ev, &det.state, &mut |e| injected.push(e.clone()));
            for e in injected.drain(..) {
                crate::flight::detect(&mut flight, &mut det, &e, &mut |alert| burst.push(alert));
            }
            if !keep {
                continue;
            }
        }
        let mut fired = Vec::new();
        crate::flight::detect(&mut flight, &mut det, &ev, &mut |alert| {
            if a.explain {
                fired.push(alert.rule.clone());
            }
            burst.push(alert)
        });
        if burst.len() >= burst_len {
            burst.drain(..).for_each(|a| outputs.send(Arc::new(a)));
        }
        for rule in fired {
            explain_alert(&det, &ev, &rule);
        }
        n += 1;
        if let Some(pb) = &pb {
            if n.is_multiple_of(4096) {
                pb.set_position(reader.offset());
                let secs = started.elapsed().as_secs_f64().max(1e-9);
                pb.set_message(format!("{:.0} events/s", n as f64 / secs));
            }
        }
    }
    burst.drain(..).for_each(|a| outputs.send(Arc::new(a)));
    if let Some(pb) = pb {
        pb.finish_and_clear();
    }
    if let Some(f) = flight.as_mut() {
        f.close();
    }
    let report = outputs.shutdown(cfg.outputs.shutdown_timeout);
    if let Some(t) = &twin {
        eprintln!("Prefilter: {} events dropped", t.filtered);
    }
    eprint!("{}", det.stats.summary());
    eprint!("{report}");
    Ok(0)
}
