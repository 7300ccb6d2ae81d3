//! The detection pipeline shared by `run` and `replay`: an event goes through
//! the state engine, then the rules indexed for its type; matches become alerts.

use std::collections::BTreeMap;
use std::sync::Arc;

use saker_event::Event;
use saker_rules::ruleset::{AlertOptions, RuleIdx, Ruleset};
use saker_rules::Alert;
use saker_state::State;

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
