//! `saker replay`: run rules over a capture file, or print the events that
//! match a filter (like `sysdig -r FILE -p FORMAT FILTER`). The file feeds the pipeline's loop.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use saker_event::Event;
use saker_rules::format::OutputFormat;
use saker_rules::ruleset::AlertOptions;
use saker_rules::Alert;
use saker_state::State;

use crate::pipeline::{capture_state, Detect, Detector, Flow, Source, Stage, Until};
use crate::setup::Inputs;
use crate::threaded::{FileInput, Position};

/// sysdig's default line format.
const DEFAULT_FORMAT: &str =
    "%evt.num %evt.time %evt.cpu %proc.name (%thread.tid) %evt.dir %evt.type %evt.args";

pub struct ReplayArgs<'a> {
    pub rules: &'a Inputs,
    pub file: &'a Path,
    pub filter: Option<&'a str>,
    pub format: Option<&'a str>,
    pub progress: bool,
    /// Apply the in-kernel prefilter's decisions (see `prefilter_twin`).
    pub prefilter: bool,
    /// Print why each alert's rule fired (stderr).
    pub explain: bool,
    /// Stop after this many seconds (`-M` with `-e`).
    pub duration: Option<f64>,
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
    let cfg = crate::setup::load_config(a.rules)?;
    let fmt_text = a.format.unwrap_or(DEFAULT_FORMAT);
    let needed = match saker_rules::load::lang::event_types(&expr) {
        saker_rules::load::lang::EventTypes::Names(n) if !reads_deltatime([filter, fmt_text]) => {
            Some(n)
        }
        _ => None,
    };
    let (mut src, snap) = FileInput::open(a.file, needed, crate::threaded::split(&cfg))?;
    let out = std::io::stdout();
    let mut stage = Print {
        state: capture_state(&snap),
        compiled,
        fmt,
        out: std::io::BufWriter::new(out.lock()),
        line: String::new(),
        closed: false,
    };
    src.drive(&mut stage, &until(a.duration))?;
    stage.out.flush().ok();
    Ok(0)
}

/// `--filter`: prints the events the filter matches.
struct Print<W: Write> {
    state: State,
    compiled: saker_rules::eval::Filter,
    fmt: OutputFormat,
    out: W,
    line: String,
    /// The reader went away (e.g. `| head`): stop quietly.
    closed: bool,
}

/// A replay's end besides the file's: `-M`.
fn until(duration: Option<f64>) -> Until {
    Until {
        stop: None,
        deadline: duration
            .map(|s| std::time::Instant::now() + std::time::Duration::from_secs_f64(s)),
    }
}

impl<W: Write, S: Source<Event = Event>> Stage<S> for Print<W> {
    fn event(&mut self, ev: &Event) {
        if self.closed {
            return;
        }
        {
            let ctx = self.state.process(ev);
            if !is_internal(ev) && self.compiled.eval(&ctx) {
                self.line.clear();
                self.fmt.render(&ctx, &mut self.line);
                self.line.push('\n');
                if self.out.write_all(self.line.as_bytes()).is_err() {
                    self.closed = true;
                }
            }
        }
        self.state.finish();
    }

    fn after_batch(&mut self, _src: &mut S, _n: usize) -> anyhow::Result<Flow> {
        Ok(if self.closed {
            Flow::Stop
        } else {
            Flow::Continue
        })
    }
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

/// How long a replay waits for room in a full output queue before it drops an alert: a file
/// can wait for its outputs (a live source cannot). An output that made no room in this time
/// is not waited for again until it takes an alert, so a dead one holds the replay once.
pub const OUTPUT_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// `evt.deltatime*` is the time since the previous event of the file: with it, no event
/// may be passed over (see [`crate::pipeline::FileSource::skip_unneeded`]).
fn reads_deltatime<'a>(texts: impl IntoIterator<Item = &'a str>) -> bool {
    texts.into_iter().any(|t| t.contains("evt.deltatime"))
}

/// Internal meta events (procinfo, container, ...) update state but are not
/// shown, as sysdig hides them without `-D`.
fn is_internal(ev: &Event) -> bool {
    // Container metadata events are consumed by the container engine, as libsinsp does.
    saker_event::table::info(ev.etype)
        .is_some_and(|i| i.category & saker_event::table::EC_INTERNAL != 0 || i.name == "container")
}

fn run_rules(a: &ReplayArgs) -> anyhow::Result<i32> {
    let cfg = crate::setup::load_config(a.rules)?;
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
    // A capture-on-alert file keeps every event of the window, as the input had them.
    // Outputs include `append_output`'s text; its extra fields are read here.
    let extra_fields = cfg
        .append_output
        .iter()
        .flat_map(|a| &a.extra_fields)
        .map(|f| match f {
            saker_config::ExtraField::Field(name) => name.as_str(),
            saker_config::ExtraField::Format { format, .. } => format.as_str(),
        });
    let needed = rules.ruleset.needed_event_types().filter(|_| {
        !cfg.capture.enabled
            && !reads_deltatime(
                rules
                    .ruleset
                    .rules()
                    .flat_map(|(_, r)| [r.condition.as_str(), r.output.as_str()])
                    .chain(extra_fields),
            )
    });
    let (mut src, snap) = FileInput::open(a.file, needed, crate::threaded::split(&cfg))?;
    let twin = a.prefilter.then(|| {
        crate::prefilter_twin::Twin::new(saker_rules::prefilter::Plan::for_ruleset(&rules.ruleset))
    });
    let hostname = snap
        .hostname
        .clone()
        .unwrap_or_else(|| crate::outputs_cfg::hostname(&cfg));
    let det = Detector::new(
        capture_state(&snap),
        Arc::new(rules.ruleset),
        hostname,
        AlertOptions {
            time_format_iso_8601: cfg.time_format_iso_8601,
        },
    );
    let flight = crate::flight::Flight::new(&cfg.capture, Box::new(move || snap.clone()));
    // Alerts go to the outputs in bursts: one per alert woke the output thread for each
    // (a third of the CPU of a replay with thousands of alerts). Below the queue capacity;
    // with --explain each goes out at once, next to its explanation.
    let burst_len = if a.explain { 1 } else { 512 };
    let mut stage = Replay {
        detect: Detect::new(det, flight),
        twin,
        injected: Vec::new(),
        burst: Vec::with_capacity(burst_len),
        burst_len,
        explain: a.explain,
        outputs: &outputs,
        pb: progress_bar(a.file, a.progress),
        n: 0,
        started: std::time::Instant::now(),
    };
    src.drive(&mut stage, &until(a.duration))?;
    stage.flush();
    if let Some(pb) = stage.pb.take() {
        pb.finish_and_clear();
    }
    stage.detect.finish();
    let filtered = stage.twin.as_ref().map(|t| t.filtered);
    let summary = stage.detect.det.stats.summary();
    drop(stage);
    let report = outputs.shutdown(cfg.outputs.shutdown_timeout);
    if let Some(n) = filtered {
        eprintln!("Prefilter: {n} events dropped");
    }
    eprint!("{summary}");
    eprint!("{report}");
    Ok(0)
}

/// Rules over a capture: the prefilter's twin (`--prefilter`), detection, alerts in bursts.
struct Replay<'a> {
    detect: Detect,
    twin: Option<crate::prefilter_twin::Twin>,
    /// Events the twin injects before the current one.
    injected: Vec<Event>,
    burst: Vec<Alert>,
    burst_len: usize,
    explain: bool,
    outputs: &'a saker_outputs::Outputs,
    pb: Option<indicatif::ProgressBar>,
    n: u64,
    started: std::time::Instant,
}

impl Replay<'_> {
    fn flush(&mut self) {
        self.burst
            .drain(..)
            .for_each(|a| self.outputs.send_within(Arc::new(a), OUTPUT_WAIT));
    }
}

impl<S: Source<Event = Event> + Position> Stage<S> for Replay<'_> {
    #[inline]
    fn event(&mut self, ev: &Event) {
        if let Some(t) = self.twin.as_mut() {
            let injected = &mut self.injected;
            let keep = t.filter(ev, &self.detect.det.state, &mut |e| {
                injected.push(e.clone())
            });
            for e in self.injected.drain(..) {
                let burst = &mut self.burst;
                self.detect.on_event(&e, &mut |alert| burst.push(alert));
            }
            if !keep {
                return;
            }
        }
        let mut fired = Vec::new();
        let (burst, explain) = (&mut self.burst, self.explain);
        self.detect.on_event(ev, &mut |alert| {
            if explain {
                fired.push(alert.rule.clone());
            }
            burst.push(alert)
        });
        if self.burst.len() >= self.burst_len {
            self.flush();
        }
        for rule in fired {
            explain_alert(&self.detect.det, ev, &rule);
        }
        self.n += 1;
    }

    fn after_batch(&mut self, src: &mut S, _n: usize) -> anyhow::Result<Flow> {
        if let Some(pb) = &self.pb {
            pb.set_position(src.position());
            let secs = self.started.elapsed().as_secs_f64().max(1e-9);
            pb.set_message(format!("{:.0} events/s", self.n as f64 / secs));
        }
        Ok(Flow::Continue)
    }
}
