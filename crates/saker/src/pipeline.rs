//! The one event loop. A [`Source`] (the live probe, a capture file, an audit input, fixture
//! events) feeds a [`Stage`] (live detection, replay, capture recording, audit detection) through
//! [`drive`]. Detection itself is the [`Detector`]: an event goes through the state engine, then
//! the rules indexed for its type; matches become alerts. [`Detect`] adds the consumers of its
//! result (the capture-on-alert recorder).
//!
//! The loop is generic over the source and the stage: no indirect call per event (issue 22's
//! fast paths stay as they were).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use saker_event::Event;
use saker_rules::ruleset::{AlertOptions, RuleIdx, Ruleset};
use saker_rules::Alert;
use saker_state::State;

use crate::flight::Flight;

/// Longest wait for events in one poll (signals, reloads and the stats tick are checked after).
pub const POLL_WAIT: Duration = Duration::from_millis(100);

/// How long the final pass over the probe's rings waits for a record (one pass takes all
/// they hold).
pub const PROBE_DRAIN: Duration = Duration::from_millis(50);

/// Whether the loop goes on after a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Stop,
}

/// Where events come from.
pub trait Source {
    type Event;
    /// Hands the events available now to `f`, waiting up to `wait` for the first. Returns how
    /// many it handed, or `None` once the input has ended.
    fn poll<F: FnMut(&Self::Event)>(
        &mut self,
        wait: Duration,
        f: F,
    ) -> anyhow::Result<Option<usize>>;

    /// At a stop: what the source still holds (the kernel's rings).
    fn drain<F: FnMut(&Self::Event)>(&mut self, _f: F) -> anyhow::Result<()> {
        Ok(())
    }
}

/// What the loop feeds: each event, then the work between two batches.
pub trait Stage<S: Source> {
    fn event(&mut self, ev: &S::Event);

    /// After each batch of `n` events (outputs, metrics, reloads); `Stop` ends the loop.
    fn after_batch(&mut self, _src: &mut S, _n: usize) -> anyhow::Result<Flow> {
        Ok(Flow::Continue)
    }

    /// How long the next poll may wait for events.
    fn wait(&self) -> Duration {
        POLL_WAIT
    }
}

/// What else ends the loop: a signal flag, a deadline (`--duration`).
#[derive(Default)]
pub struct Until {
    pub stop: Option<Arc<AtomicBool>>,
    pub deadline: Option<Instant>,
}

impl Until {
    pub fn new(stop: &Arc<AtomicBool>, duration: Option<f64>) -> Until {
        Until {
            stop: Some(stop.clone()),
            deadline: duration.map(|s| Instant::now() + Duration::from_secs_f64(s)),
        }
    }

    fn reached(&self) -> bool {
        self.stop
            .as_ref()
            .is_some_and(|s| s.load(Ordering::Relaxed))
            || self.deadline.is_some_and(|d| Instant::now() >= d)
    }
}

/// The event loop of every command: polls `src` into `stage` until the input ends, the stage
/// stops, or `until` is reached; then drains what the source still holds.
pub fn drive<S: Source, T: Stage<S>>(
    src: &mut S,
    stage: &mut T,
    until: &Until,
) -> anyhow::Result<()> {
    while !until.reached() {
        let Some(n) = src.poll(stage.wait(), |ev| stage.event(ev))? else {
            break;
        };
        if stage.after_batch(src, n)? == Flow::Stop {
            break;
        }
    }
    src.drain(|ev| stage.event(ev))
}

/// The live probe: batches as the rings deliver them; at the stop, what the kernel already
/// produced.
impl Source for saker_probe::Probe {
    type Event = Event;

    #[inline]
    fn poll<F: FnMut(&Event)>(&mut self, wait: Duration, f: F) -> anyhow::Result<Option<usize>> {
        Ok(Some(saker_probe::Probe::poll(self, wait, f)?))
    }

    fn drain<F: FnMut(&Event)>(&mut self, f: F) -> anyhow::Result<()> {
        saker_probe::Probe::poll(self, PROBE_DRAIN, f)?;
        Ok(())
    }
}

/// Events read from a capture file per batch (the replay progress bar moves once per batch).
const FILE_BATCH: usize = 4096;

/// A scap capture file.
pub struct FileSource {
    pub reader: saker_capture::Reader,
    ev: Event,
    ended: bool,
}

impl FileSource {
    pub fn open(file: &Path) -> anyhow::Result<FileSource> {
        let reader = saker_capture::Reader::open(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        Ok(FileSource {
            reader,
            ev: Event::default(),
            ended: false,
        })
    }

    /// Passes over the syscall events that neither `needed` (the event type names the rules or
    /// the filter select; `None` = every type) nor the state engine reads, as the live probe
    /// never selects them: most of a capture is mmap, futex, poll and the like. They keep their
    /// `evt.num`. So do the kernel's per-thread reports that no state parser reads (procinfo,
    /// scheduler switches, page faults, signal deliveries): sysdig captures write a procinfo
    /// event per thread per second. Other non-syscall events (procexit, container, user,
    /// plugin and meta events) always pass.
    pub fn skip_unneeded(&mut self, needed: Option<&std::collections::BTreeSet<String>>) {
        use saker_event::table;
        let Some(needed) = needed else {
            self.reader.set_skip(None);
            return;
        };
        let skip = (0..table::EVENT_MAX)
            .map(|id| {
                table::info(id).is_some_and(|i| {
                    // 0/1: the generic syscall events, named by a parameter.
                    id > 1
                        && (i.category & table::EC_SYSCALL != 0 || UNREAD_REPORTS.contains(&i.name))
                        && !needed.contains(i.name)
                        && !saker_state::PARSED_EVENTS.contains(&i.name)
                })
            })
            .collect();
        self.reader.set_skip(Some(skip));
    }
}

/// Non-syscall event types that change no state: skippable when no rule names them.
const UNREAD_REPORTS: &[&str] = &["procinfo", "switch", "page_fault", "signaldeliver"];

/// State seeded from a capture file's process/fd/user tables.
pub fn capture_state(snap: &saker_event::Snapshot) -> State {
    let mut state = State::new(saker_state::Config::default());
    state.seed(snap);
    state
}

impl Source for FileSource {
    type Event = Event;

    #[inline]
    fn poll<F: FnMut(&Event)>(
        &mut self,
        _wait: Duration,
        mut f: F,
    ) -> anyhow::Result<Option<usize>> {
        if self.ended {
            return Ok(None);
        }
        let mut n = 0;
        while n < FILE_BATCH {
            if !self.reader.next_event(&mut self.ev)? {
                self.ended = true;
                break;
            }
            f(&self.ev);
            n += 1;
        }
        Ok(Some(n))
    }
}

/// Events already in memory (the fixtures of `saker test`), delivered as one batch.
pub struct Slice<'a, T>(Option<&'a [T]>);

impl<'a, T> Slice<'a, T> {
    pub fn new(items: &'a [T]) -> Self {
        Slice(Some(items))
    }
}

impl<T> Source for Slice<'_, T> {
    type Event = T;

    fn poll<F: FnMut(&T)>(&mut self, _wait: Duration, f: F) -> anyhow::Result<Option<usize>> {
        Ok(self.0.take().map(|items| {
            items.iter().for_each(f);
            items.len()
        }))
    }
}

/// Detection and the consumers of its result: the capture-on-alert recorder sees every event
/// after the rules ran on it, with the rules it matched.
pub struct Detect {
    pub det: Detector,
    pub flight: Option<Flight>,
}

impl Detect {
    pub fn new(det: Detector, flight: Option<Flight>) -> Detect {
        Detect { det, flight }
    }

    #[inline]
    pub fn on_event(&mut self, ev: &Event, emit: &mut dyn FnMut(Alert)) {
        self.det.on_event(ev, emit);
        if let Some(f) = self.flight.as_mut() {
            f.on_event(ev, &self.det);
        }
    }

    /// Closes the open capture (end of the run).
    pub fn finish(&mut self) {
        if let Some(f) = self.flight.as_mut() {
            f.close();
        }
    }
}

/// Per-run counters, printed at the end and mirrored into metrics.
#[derive(Debug, Default, Clone)]
pub struct RunStats {
    pub events: u64,
    pub alerts: u64,
    pub alerts_by_rule: BTreeMap<String, u64>,
    /// Events per type id, flushed into metrics in batches (a label lookup per event would cost more than the rules).
    pub by_type: Vec<u64>,
    /// Sampled evaluation time per rule index (one event in [`COST_SAMPLE`]).
    pub rule_cost_ns: Vec<u64>,
}

/// Per-rule cost accounting samples one event in this many.
pub const COST_SAMPLE: u64 = 64;

/// What one rule costs: estimated evaluation CPU time and the events its
/// event types (after the in-kernel prefilter) admitted.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleCost {
    pub rule: String,
    pub eval_seconds: f64,
    pub events_admitted: u64,
}

impl RunStats {
    /// Per enabled rule, most expensive first.
    pub fn rule_costs(&self, rs: &Ruleset) -> Vec<RuleCost> {
        let total: u64 = self.by_type.iter().sum();
        let mut v: Vec<RuleCost> = rs
            .enabled()
            .iter()
            .map(|&i| RuleCost {
                rule: rs.info(i).name.clone(),
                eval_seconds: self.rule_cost_ns.get(i).copied().unwrap_or(0) as f64
                    * COST_SAMPLE as f64
                    / 1e9,
                events_admitted: match rs.rule_event_ids(i) {
                    None => total,
                    Some(ids) => ids
                        .iter()
                        .filter_map(|&id| self.by_type.get(id as usize))
                        .sum(),
                },
            })
            .collect();
        v.sort_by(|a, b| b.eval_seconds.total_cmp(&a.eval_seconds));
        v
    }

    /// The `--stats` table printed at exit.
    pub fn cost_table(&self, rs: &Ruleset) -> String {
        let mut s = String::from(
            "Rule costs (evaluation CPU estimated from 1 event in 64; events its syscalls admitted):\n",
        );
        for c in self.rule_costs(rs) {
            s.push_str(&format!(
                "  {:>10.6} s  {:>12} events  {}\n",
                c.eval_seconds, c.events_admitted, c.rule
            ));
        }
        s
    }
}

impl RunStats {
    pub fn summary(&self) -> String {
        let mut s = format!(
            "Events detected: {}\nRule counts by severity / rule:\n",
            self.events
        );
        s.push_str(&format!("   Alerts: {}\n", self.alerts));
        for (r, n) in &self.alerts_by_rule {
            s.push_str(&format!("   {r}: {n}\n"));
        }
        s
    }
}

pub struct Detector {
    pub state: State,
    pub(crate) ruleset: Arc<Ruleset>,
    matches: Vec<RuleIdx>,
    pub(crate) alert_opts: AlertOptions,
    pub(crate) hostname: String,
    pub stats: RunStats,
    /// Live only: alerts of containers whose metadata is pending wait for it (see `hold`).
    pub hold: Option<crate::hold::Hold>,
}

impl Detector {
    pub fn new(
        state: State,
        ruleset: Arc<Ruleset>,
        hostname: String,
        alert_opts: AlertOptions,
    ) -> Self {
        Detector {
            state,
            ruleset,
            matches: Vec::with_capacity(8),
            alert_opts,
            hostname,
            stats: RunStats {
                by_type: vec![0; 1024],
                ..Default::default()
            },
            hold: None,
        }
    }

    /// The rules the last event matched (emitted or held).
    pub fn last_matches(&self) -> &[RuleIdx] {
        &self.matches
    }

    pub fn ruleset(&self) -> &Arc<Ruleset> {
        &self.ruleset
    }

    /// Emits held alerts that are ready (all of them when `flush`).
    pub fn release_held(&mut self, flush: bool, emit: &mut dyn FnMut(Alert)) {
        if let Some(h) = self.hold.as_mut() {
            h.release(&self.state, &self.hostname, &self.alert_opts, flush, emit);
        }
    }

    /// Swaps in a new ruleset between two events (hot reload); state is kept.
    pub fn set_ruleset(&mut self, r: Arc<Ruleset>) {
        self.ruleset = r;
    }

    /// Processes one event; `emit` receives each alert.
    pub fn on_event(&mut self, ev: &Event, emit: &mut dyn FnMut(Alert)) {
        self.matches.clear();
        if ev.is_state_only() {
            // A prefilter re-announcement: it updates the fd table, no rule sees it.
            let _ = self.state.process(ev);
            self.state.finish();
            return;
        }
        self.stats.events += 1;
        if let Some(c) = self.stats.by_type.get_mut(ev.etype as usize) {
            *c += 1;
        }
        {
            let ctx = self.state.process(ev);
            // One event in COST_SAMPLE is evaluated rule by rule under a clock.
            if self.stats.events.is_multiple_of(COST_SAMPLE) {
                self.ruleset
                    .matches_timed(&ctx, &mut self.matches, &mut self.stats.rule_cost_ns);
            } else {
                self.ruleset.matches(&ctx, &mut self.matches);
            }
            for &m in &self.matches {
                if let Some(h) = self.hold.as_mut() {
                    if let Some(cid) = h.waits_for(&ctx) {
                        self.stats.alerts += 1;
                        *self
                            .stats
                            .alerts_by_rule
                            .entry(self.ruleset.info(m).name.clone())
                            .or_default() += 1;
                        h.keep(
                            cid,
                            &self.ruleset,
                            m,
                            &ctx,
                            ev.ts,
                            &self.hostname,
                            &self.alert_opts,
                        );
                        continue;
                    }
                }
                let a = self
                    .ruleset
                    .alert(m, &ctx, ev.ts, &self.hostname, &self.alert_opts);
                self.stats.alerts += 1;
                *self.stats.alerts_by_rule.entry(a.rule.clone()).or_default() += 1;
                emit(a);
            }
        }
        self.state.finish();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts the events a replay hands on, and how many the reader passed over.
    fn read_all(needed: &[&str]) -> (u64, u64, Vec<u64>) {
        let file = saker_testkit::shared_dir().join("captures/cat_write.scap");
        let mut src = FileSource::open(&file).unwrap();
        let needed: std::collections::BTreeSet<String> =
            needed.iter().map(|s| s.to_string()).collect();
        src.skip_unneeded(Some(&needed));
        let (mut n, mut opens) = (0, vec![]);
        while src
            .poll(Duration::ZERO, |ev| {
                n += 1;
                if ev.type_name() == "open" && ev.is_exit() {
                    opens.push(ev.num);
                }
            })
            .unwrap()
            .is_some()
        {}
        (n, src.reader.skipped(), opens)
    }

    /// sysdig captures carry a procinfo event per thread per second; nothing reads them
    /// unless a rule names them, and skipping them keeps every other event's number.
    #[test]
    fn unread_procinfo_events_are_passed_over_unless_a_rule_names_them() {
        let (n1, skipped1, opens1) = read_all(&["open"]);
        let (n2, skipped2, opens2) = read_all(&["open", "procinfo"]);
        assert_eq!(opens1, opens2);
        assert_eq!(opens1.len(), 4, "{opens1:?}");
        // cat_write.scap holds 260 procinfo events.
        assert_eq!(skipped1 - skipped2, 260);
        assert_eq!(n2 - n1, 260);
    }
}
