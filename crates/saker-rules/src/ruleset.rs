//! The compiled, selected rules, indexed by event type (§3.11, §1.14), and alert rendering (§4.3).

use crate::engine::{RuleMatching, Selection};
use crate::load::lang::{EventTypes, Filter, Format};
use crate::program::Program;
use crate::{Alert, OutputValue, Priority};
use saker_fields::{EventView, FieldArg, FieldRef, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// Index of a rule in [`Ruleset::rules`].
pub type RuleIdx = usize;

/// A rule's metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleInfo {
    pub name: String,
    pub desc: String,
    pub priority: Priority,
    pub source: String,
    /// Sorted and deduplicated.
    pub tags: Vec<String>,
    /// The `enabled` flag from the rules files.
    pub enabled: bool,
    pub capture: bool,
    /// Milliseconds; 0 = the configured default.
    pub capture_duration: u32,
    pub exception_fields: Vec<String>,
    /// The final condition text (with exceptions, lists substituted).
    pub condition: String,
    /// The final output format (with suggested/extra fields).
    pub output: String,
}

#[derive(Clone)]
pub struct CompiledRule {
    pub info: RuleInfo,
    pub(crate) filter: Arc<Filter>,
    pub(crate) format: Arc<Format>,
    pub(crate) extra_fields: Vec<ExtraOutputField>,
    pub(crate) evttypes: EventTypes,
    /// The condition after macro expansion, for analyses such as the prefilter.
    pub(crate) ast: Arc<crate::ast::Expr>,
}

/// An `append_output.extra_fields` entry, compiled.
#[derive(Clone)]
pub(crate) struct ExtraOutputField {
    pub key: String,
    pub format: Arc<Format>,
    /// A bare field: typed JSON value; otherwise the rendered text.
    pub typed: bool,
}

impl std::fmt::Debug for CompiledRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CompiledRule")
            .field("info", &self.info)
            .finish_non_exhaustive()
    }
}

/// How alerts are rendered (§7 keys).
#[derive(Debug, Clone, Copy, Default)]
pub struct AlertOptions {
    /// Prefix with `%evt.time.iso8601` instead of `%evt.time`.
    pub time_format_iso_8601: bool,
}

/// Event type ids for an event name, from the shared event table (`None` for
/// names the table does not know: those are indexed by name).
fn ids_for_name(name: &str) -> Option<Vec<u16>> {
    let ids = crate::load::lang::ids_for_name(name);
    (!ids.is_empty()).then(|| ids.to_vec())
}

/// Evaluation lists per event type, in enable order; "all types" rules are in every list.
#[derive(Debug, Default, Clone)]
struct Index {
    /// By event type id (the table's): the candidate rules, `None` where no rule names the type.
    by_id: Vec<Option<TypeEntry>>,
    by_name: HashMap<String, Vec<RuleIdx>>,
    any: Vec<RuleIdx>,
    /// Rules of other (plugin) sources, in enable order: syscall events never see them.
    by_source: HashMap<String, Vec<RuleIdx>>,
}

/// One event type's candidate rules and, from the first event of the type, their program.
#[derive(Debug, Default, Clone)]
struct TypeEntry {
    rules: Vec<RuleIdx>,
    program: std::sync::OnceLock<Program>,
}

/// The rules an engine evaluates.
#[derive(Debug, Clone)]
pub struct Ruleset {
    rules: Vec<CompiledRule>,
    /// Enabled rules in enable order.
    order: Vec<RuleIdx>,
    index: Index,
    rule_matching: RuleMatching,
    n_macros: usize,
    n_lists: usize,
    evt_type_field: Option<FieldRef>,
    /// The uncompiled conditions, for explanations only.
    explain_src: Option<Arc<crate::explain::ExplainSource>>,
}

impl Ruleset {
    pub(crate) fn new(
        rules: Vec<CompiledRule>,
        rule_matching: RuleMatching,
        n_macros: usize,
        n_lists: usize,
    ) -> Self {
        let order = (0..rules.len())
            .filter(|&i| rules[i].info.enabled)
            .collect();
        let mut rs = Ruleset {
            rules,
            order,
            index: Index::default(),
            rule_matching,
            n_macros,
            n_lists,
            evt_type_field: saker_fields::lookup("evt.type")
                .map(|id| FieldRef::new(id, FieldArg::None)),
            explain_src: None,
        };
        rs.reindex();
        rs
    }

    /// Every loaded rule (enabled or not), in definition order.
    pub fn rules(&self) -> impl Iterator<Item = (RuleIdx, &RuleInfo)> {
        self.rules.iter().enumerate().map(|(i, r)| (i, &r.info))
    }

    pub fn info(&self, idx: RuleIdx) -> &RuleInfo {
        &self.rules[idx].info
    }

    pub fn find(&self, name: &str) -> Option<RuleIdx> {
        self.rules.iter().position(|r| r.info.name == name)
    }

    pub fn is_enabled(&self, idx: RuleIdx) -> bool {
        self.order.contains(&idx)
    }

    /// Enabled rules in evaluation order.
    pub fn enabled(&self) -> &[RuleIdx] {
        &self.order
    }

    /// Counts of (rules loaded into the ruleset, macros, lists).
    pub fn counts(&self) -> (usize, usize, usize) {
        (self.rules.len(), self.n_macros, self.n_lists)
    }

    pub fn rule_matching(&self) -> RuleMatching {
        self.rule_matching
    }

    /// Enables a rule (appended to the evaluation order) or disables it.
    pub fn set_enabled(&mut self, idx: RuleIdx, on: bool) {
        self.set_enabled_no_index(idx, on);
        self.reindex();
    }

    fn set_enabled_no_index(&mut self, idx: RuleIdx, on: bool) {
        let pos = self.order.iter().position(|&i| i == idx);
        match (on, pos) {
            (true, None) => self.order.push(idx),
            (false, Some(p)) => {
                self.order.remove(p);
            }
            _ => {}
        }
    }

    /// Applies one enable/disable selection (rule wildcard pattern or exact tag).
    pub fn apply_selection(&mut self, s: &Selection) {
        let (on, pattern, by_tag) = match s {
            Selection::EnableRule(p) => (true, p, false),
            Selection::DisableRule(p) => (false, p, false),
            Selection::EnableTag(t) => (true, t, true),
            Selection::DisableTag(t) => (false, t, true),
        };
        let hit = |r: &RuleInfo| {
            if by_tag {
                r.tags.iter().any(|x| x == pattern)
            } else {
                wildcard_match(pattern, &r.name)
            }
        };
        let hits: Vec<RuleIdx> = (0..self.rules.len())
            .filter(|&i| hit(&self.rules[i].info))
            .collect();
        for i in hits {
            self.set_enabled_no_index(i, on);
        }
        self.reindex();
    }

    fn is_syscall(&self, i: RuleIdx) -> bool {
        self.rules[i].info.source == saker_fields::source::SYSCALL
    }

    fn reindex(&mut self) {
        let mut idx = Index::default();
        let mut by_id: rustc_hash::FxHashMap<u16, Vec<RuleIdx>> = Default::default();
        for &i in &self.order {
            if !self.is_syscall(i) {
                idx.by_source
                    .entry(self.rules[i].info.source.clone())
                    .or_default()
                    .push(i);
            }
        }
        let order: Vec<RuleIdx> = self
            .order
            .iter()
            .copied()
            .filter(|&i| self.is_syscall(i))
            .collect();
        let mut names: BTreeSet<&str> = BTreeSet::new();
        for &i in &order {
            if let EventTypes::Names(n) = &self.rules[i].evttypes {
                names.extend(n.iter().map(String::as_str));
            }
        }
        for name in &names {
            match ids_for_name(name) {
                Some(ids) => ids.into_iter().for_each(|id| {
                    by_id.entry(id).or_default();
                }),
                None => {
                    idx.by_name.entry(name.to_string()).or_default();
                }
            }
        }
        for &i in &order {
            match &self.rules[i].evttypes {
                EventTypes::All => {
                    idx.any.push(i);
                    by_id.values_mut().for_each(|v| v.push(i));
                    idx.by_name.values_mut().for_each(|v| v.push(i));
                }
                EventTypes::Names(n) => {
                    for name in n {
                        match ids_for_name(name) {
                            Some(ids) => ids
                                .into_iter()
                                .for_each(|id| push_once(by_id.entry(id).or_default(), i)),
                            None => push_once(idx.by_name.entry(name.clone()).or_default(), i),
                        }
                    }
                }
            }
        }
        let size = by_id.keys().max().map_or(0, |&m| m as usize + 1);
        idx.by_id = vec![None; size];
        for (id, rules) in by_id {
            idx.by_id[id as usize] = Some(TypeEntry {
                rules,
                program: Default::default(),
            });
        }
        self.index = idx;
    }

    /// The entry of a type id some rule names.
    #[inline]
    fn entry(&self, etype: u16) -> Option<&TypeEntry> {
        self.index.by_id.get(etype as usize)?.as_ref()
    }

    /// The program of a type's candidate rules, built at the first event of the type.
    #[inline]
    fn program<'a>(&'a self, etype: u16, e: &'a TypeEntry) -> &'a Program {
        e.program.get_or_init(|| {
            Program::build(etype, e.rules.iter().map(|&i| (i, &*self.rules[i].filter)))
        })
    }

    /// The rules evaluated for events of type id `etype` whose type the event table knows.
    pub fn candidates_for_type(&self, etype: u16) -> &[RuleIdx] {
        self.entry(etype)
            .map_or(&self.index.any[..], |e| e.rules.as_slice())
    }

    /// The rules to evaluate for an event, in order.
    fn candidates(&self, ev: &dyn EventView) -> &[RuleIdx] {
        if let Some(e) = self.entry(ev.event_type()) {
            return &e.rules;
        }
        // A syscall event's evt.type is its table name, which by_name never holds (only names
        // the table lacks): skip extracting it (most events of most types have no rule). The
        // generic events (0/1) are named by a parameter.
        let et = ev.event_type();
        let named_by_table = et > 1
            && saker_event::table::info(et)
                .is_some_and(|i| i.category & saker_event::table::EC_SYSCALL != 0);
        if !self.index.by_name.is_empty() && !named_by_table {
            if let Some(f) = &self.evt_type_field {
                if let Some(Value::Str(name)) = ev.extract(f) {
                    if let Some(v) = std::str::from_utf8(&name)
                        .ok()
                        .and_then(|n| self.index.by_name.get(n))
                    {
                        return v;
                    }
                }
            }
        }
        &self.index.any
    }

    /// [`Ruleset::matches`] that also adds each evaluated rule's time to
    /// `cost_ns[rule]` (grown as needed), for sampled per-rule cost
    /// accounting. Checks shared between rules are timed in the first rule
    /// that evaluates them.
    pub fn matches_timed(
        &self,
        ev: &dyn EventView,
        out: &mut Vec<RuleIdx>,
        cost_ns: &mut Vec<u64>,
    ) {
        if cost_ns.len() < self.rules.len() {
            cost_ns.resize(self.rules.len(), 0);
        }
        let first = self.rule_matching == RuleMatching::First;
        // The same evaluation as `matches`, so the costs are the real ones.
        if let Some(e) = self.entry(ev.event_type()) {
            self.program(ev.event_type(), e).run_each(ev, |i, eval| {
                let t = std::time::Instant::now();
                let hit = eval();
                cost_ns[i] += t.elapsed().as_nanos() as u64;
                if hit {
                    out.push(i);
                }
                !(hit && first)
            });
            return;
        }
        crate::memo::with_scope(|mut memo| {
            for &i in self.candidates(ev) {
                let t = std::time::Instant::now();
                let f = &self.rules[i].filter;
                let hit = match memo.as_deref_mut() {
                    Some(m) => f.eval_memo(ev, m),
                    None => f.eval(ev),
                };
                cost_ns[i] += t.elapsed().as_nanos() as u64;
                if hit {
                    out.push(i);
                    if first {
                        return;
                    }
                }
            }
        })
    }

    /// The event type ids a rule is evaluated on (`None`: every type).
    pub fn rule_event_ids(&self, idx: RuleIdx) -> Option<Vec<u16>> {
        match &self.rules[idx].evttypes {
            EventTypes::All => None,
            EventTypes::Names(n) => {
                let mut v: Vec<u16> = n.iter().filter_map(|n| ids_for_name(n)).flatten().collect();
                v.sort_unstable();
                v.dedup();
                Some(v)
            }
        }
    }

    /// Appends the matching rules for `ev` to `out` (only the first with `rule_matching: first`).
    pub fn matches(&self, ev: &dyn EventView, out: &mut Vec<RuleIdx>) {
        let first = self.rule_matching == RuleMatching::First;
        // Types the rules name: their program. Checks repeated across the candidate rules are
        // evaluated once for this event either way.
        if let Some(e) = self.entry(ev.event_type()) {
            self.program(ev.event_type(), e).run(ev, first, out);
            return;
        }
        crate::memo::with_scope(|memo| match memo {
            Some(m) => {
                for &i in self.candidates(ev) {
                    if self.rules[i].filter.eval_memo(ev, m) {
                        out.push(i);
                        if first {
                            return;
                        }
                    }
                }
            }
            None => {
                for &i in self.candidates(ev) {
                    if self.rules[i].filter.eval(ev) {
                        out.push(i);
                        if first {
                            return;
                        }
                    }
                }
            }
        })
    }

    /// Appends the matching rules of a plugin source (`k8s_audit`) for `ev`: every enabled
    /// rule of that source is a candidate, in enable order.
    pub fn matches_source(&self, source: &str, ev: &dyn EventView, out: &mut Vec<RuleIdx>) {
        let Some(rules) = self.index.by_source.get(source) else {
            return;
        };
        crate::memo::with_scope(|mut memo| {
            for &i in rules {
                let f = &self.rules[i].filter;
                let hit = match memo.as_deref_mut() {
                    Some(m) => f.eval_memo(ev, m),
                    None => f.eval(ev),
                };
                if hit {
                    out.push(i);
                    if self.rule_matching == RuleMatching::First {
                        return;
                    }
                }
            }
        })
    }

    /// Enabled rules of `source`, in evaluation order.
    pub fn enabled_in(&self, source: &str) -> Vec<RuleIdx> {
        self.order
            .iter()
            .copied()
            .filter(|&i| self.rules[i].info.source == source)
            .collect()
    }

    /// Whether `matches` evaluates rule `idx` for this event (enabled, and the event's type is
    /// one its condition can match).
    pub fn applies_to(&self, idx: RuleIdx, ev: &dyn EventView) -> bool {
        self.candidates(ev).contains(&idx)
    }

    /// The event type names rule `idx` needs (empty when it needs every type).
    pub fn event_type_names(&self, idx: RuleIdx) -> Vec<String> {
        match &self.rules[idx].evttypes {
            EventTypes::All => Vec::new(),
            EventTypes::Names(n) => n.iter().cloned().collect(),
        }
    }

    /// Why rule `idx` does or does not match `ev` (see [`crate::explain`]); `None` when the rule
    /// is not evaluated for this event at all. A separate walk: `matches` is untouched.
    pub fn explain(&self, idx: RuleIdx, ev: &dyn EventView) -> Option<String> {
        if !self.applies_to(idx, ev) {
            return None;
        }
        let r = &self.rules[idx];
        let compiled = r.filter.eval(ev);
        Some(match &self.explain_src {
            Some(src) => src.explain(&r.info.name, ev, compiled),
            None => format!("condition {} -> {compiled}\n", r.info.condition),
        })
    }

    pub(crate) fn set_explain_source(&mut self, src: Arc<crate::explain::ExplainSource>) {
        self.explain_src = Some(src);
    }

    /// The enabled syscall-source rules: name, expanded condition, event types
    /// (`None`: every type) and output format.
    pub fn syscall_rule_asts(
        &self,
    ) -> impl Iterator<Item = (&str, &crate::ast::Expr, Option<&BTreeSet<String>>, &str)> {
        self.order
            .iter()
            .map(|&i| &self.rules[i])
            .filter(|r| r.info.source == "syscall")
            .map(|r| {
                let types = match &r.evttypes {
                    EventTypes::All => None,
                    EventTypes::Names(n) => Some(n),
                };
                (r.info.name.as_str(), &*r.ast, types, r.info.output.as_str())
            })
    }

    /// Event type names the enabled syscall rules need; `None` if some rule needs every type.
    pub fn needed_event_types(&self) -> Option<BTreeSet<String>> {
        let mut out = BTreeSet::new();
        for &i in self.order.iter().filter(|&&i| self.is_syscall(i)) {
            match &self.rules[i].evttypes {
                EventTypes::All => return None,
                EventTypes::Names(n) => out.extend(n.iter().cloned()),
            }
        }
        Some(out)
    }

    /// Event type ids the enabled rules need (via the event table); `None` if every type is needed
    /// or the table does not know a name.
    pub fn needed_event_ids(&self) -> Option<BTreeSet<u16>> {
        let mut out = BTreeSet::new();
        for n in self.needed_event_types()? {
            out.extend(ids_for_name(&n)?);
        }
        Some(out)
    }

    /// Renders the alert for a match (§4.3): output line with the time prefix, output fields, tags.
    pub fn alert(
        &self,
        idx: RuleIdx,
        ev: &dyn EventView,
        time_ns: u64,
        hostname: &str,
        opts: &AlertOptions,
    ) -> Alert {
        let r = &self.rules[idx];
        let message = r.format.render_string(ev);
        let (prefix_field, time_text) = if opts.time_format_iso_8601 {
            ("evt.time.iso8601", crate::load::lang::time_iso8601(time_ns))
        } else {
            ("evt.time", crate::load::lang::time_local(time_ns))
        };
        let mut output_fields = vec![(prefix_field.to_string(), OutputValue::U64(time_ns))];
        for (k, v) in r.format.render_fields(ev) {
            if !output_fields.iter().any(|(ok, _)| *ok == k) {
                output_fields.push((k, v));
            }
        }
        for x in &r.extra_fields {
            let v = if x.typed {
                x.format
                    .render_fields(ev)
                    .into_iter()
                    .next()
                    .map_or(OutputValue::Null, |(_, v)| v)
            } else {
                OutputValue::Str(x.format.render_string(ev))
            };
            match output_fields.iter_mut().find(|(k, _)| *k == x.key) {
                Some(slot) => slot.1 = v,
                None => output_fields.push((x.key.clone(), v)),
            }
        }
        Alert {
            time_ns,
            rule: r.info.name.clone(),
            priority: r.info.priority,
            source: r.info.source.clone(),
            hostname: hostname.to_string(),
            output: format!("{time_text}: {} {message}", r.info.priority),
            output_fields,
            tags: r.info.tags.clone(),
        }
    }
}

fn push_once(v: &mut Vec<RuleIdx>, i: RuleIdx) {
    if v.last() != Some(&i) {
        v.push(i);
    }
}

/// Falco's rule-name wildcard match: `*` is greedy and non-backtracking (each
/// literal segment after a `*` is matched at its first occurrence only).
/// An empty pattern matches everything.
pub fn wildcard_match(pattern: &str, s: &str) -> bool {
    if pattern.is_empty() {
        return true;
    }
    let segs: Vec<&str> = pattern.split('*').collect();
    let last = segs.len() - 1;
    let mut pos = 0usize;
    for (i, seg) in segs.iter().enumerate() {
        if i == 0 {
            if !s.starts_with(seg) {
                return false;
            }
            pos = seg.len();
        } else if seg.is_empty() {
            if i == last {
                return true;
            }
        } else {
            match s[pos..].find(seg) {
                Some(f) => pos += f + seg.len(),
                None => return false,
            }
        }
    }
    pos == s.len()
}

#[cfg(test)]
impl Ruleset {
    pub(crate) fn program_for_test(&self, etype: u16) -> &Program {
        let e = self.entry(etype).expect("a type some rule names");
        self.program(etype, e)
    }

    pub(crate) fn filter_for_test(&self, idx: RuleIdx) -> &Filter {
        &self.rules[idx].filter
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard_match;

    #[test]
    fn wildcards() {
        assert!(wildcard_match(
            "Read sensitive*",
            "Read sensitive file untrusted"
        ));
        assert!(wildcard_match("*shell*", "Run shell untrusted"));
        assert!(wildcard_match("exact", "exact"));
        assert!(!wildcard_match("exact", "exactly"));
        assert!(!wildcard_match("*a", "aba"), "non-backtracking");
        assert!(wildcard_match("*a", "ba"));
        assert!(wildcard_match("", "anything"));
        assert!(wildcard_match("a*b*c", "aXbYc"));
        assert!(!wildcard_match("a*c", "ab"));
    }
}
