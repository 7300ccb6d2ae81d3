//! `saker test`: rule unit tests from fixtures (docs/testing-rules.md). Every case runs through
//! the detection pipeline of `run`/`replay` (state engine, rules, alert rendering) on events built
//! from the fixture; no probe, no root.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use saker_rules::ruleset::{AlertOptions, Ruleset};
use saker_rules::{Alert, OutputValue};
use saker_state::State;
use saker_synth::{Built, ExpectFire, Fixture};

use crate::pipeline::{Detector, Slice, Stage, Until};
use crate::setup::Inputs;

include!(concat!(env!("OUT_DIR"), "/builtin_fixtures.rs"));

pub struct TestArgs<'a> {
    pub rules: &'a Inputs,
    pub fixtures: &'a [PathBuf],
    pub json: bool,
    pub junit: Option<&'a Path>,
    pub coverage: bool,
    /// Print the explanation of every expectation, passing or not.
    pub explain: bool,
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseResult {
    pub file: String,
    pub case: String,
    pub problems: Vec<String>,
    /// Explanations of the rules whose expectation failed (or all with `--explain`).
    pub explanations: Vec<String>,
    /// Alerts per rule.
    pub alerts: BTreeMap<String, u64>,
    /// Rules the case expects to fire (true) or not (false).
    pub expected: Vec<(String, bool)>,
    /// Rules whose expectation failed.
    pub failed_rules: BTreeSet<String>,
    pub millis: f64,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.problems.is_empty()
    }
}

/// Runs fixtures (the built-in ones when `a.fixtures` is empty); returns the exit code.
pub fn run(a: TestArgs) -> anyhow::Result<i32> {
    let cfg = crate::setup::load_config(a.rules)?;
    let rules = crate::rules::load(&cfg, a.rules)?;
    let ruleset = Arc::new(rules.ruleset);
    let fixtures = load_fixtures(a.fixtures)?;
    let opts = AlertOptions {
        time_format_iso_8601: cfg.time_format_iso_8601,
    };
    let mut results = Vec::new();
    for fx in &fixtures {
        for case in &fx.file.cases {
            results.push(run_case(&ruleset, fx, case, &opts, a.explain));
        }
    }
    let uncovered = uncovered(&ruleset, &results);
    if a.json {
        println!(
            "{}",
            json_report(&results, &ruleset, a.coverage.then_some(&uncovered))
        );
    } else {
        print!(
            "{}",
            text_report(&results, a.coverage.then_some(&uncovered))
        );
    }
    if let Some(path) = a.junit {
        std::fs::write(path, junit(&results))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(if results.iter().all(CaseResult::passed) {
        0
    } else {
        1
    })
}

/// Fixture files from the arguments, or the embedded built-in ones. Any unreadable or invalid
/// file is a load error (exit 2): a typo must not turn into a silently skipped test.
fn load_fixtures(paths: &[PathBuf]) -> anyhow::Result<Vec<Fixture>> {
    let mut out = Vec::new();
    if paths.is_empty() {
        for (name, text) in BUILTIN_FIXTURES {
            out.push(Fixture::from_str(
                &format!("builtin:{name}"),
                Path::new("."),
                text,
            )?);
        }
        if out.is_empty() {
            bail!("this build has no built-in fixtures");
        }
        return Ok(out);
    }
    for p in paths {
        let files = saker_synth::fixture_files(p)?;
        if files.is_empty() {
            bail!(
                "{}: no fixture files (*.yaml) in this directory",
                p.display()
            );
        }
        for f in files {
            out.push(Fixture::load(&f)?);
        }
    }
    Ok(out)
}

/// Runs a built input through a fresh pipeline; `each` sees every event after the rules ran,
/// with the alerts it raised.
pub fn replay_built(
    ruleset: &Arc<Ruleset>,
    built: &Built,
    opts: &AlertOptions,
    each: &mut dyn FnMut(&saker_event::Event, Vec<Alert>),
) {
    let mut state = State::new(saker_state::Config::default());
    state.seed(&built.snapshot);
    for (id, meta) in &built.containers {
        state.set_container_meta(id, meta.clone());
    }
    let mut stage = FixtureRun {
        det: Detector::new(state, ruleset.clone(), built.hostname.clone(), *opts),
        each,
    };
    // Fixture events cannot fail to read: the loop's only error source is the input.
    let _ = crate::pipeline::drive(
        &mut Slice::new(&built.events),
        &mut stage,
        &Until::default(),
    );
}

/// A fixture's events through detection, each with the alerts it raised.
struct FixtureRun<'a> {
    det: Detector,
    each: &'a mut dyn FnMut(&saker_event::Event, Vec<Alert>),
}

impl<'s> Stage<Slice<'s, saker_event::Event>> for FixtureRun<'_> {
    fn event(&mut self, ev: &saker_event::Event) {
        let mut alerts = Vec::new();
        self.det.on_event(ev, &mut |a| alerts.push(a));
        (self.each)(ev, alerts);
    }
}

fn in_range(built: &Built, num: u64) -> bool {
    built.range.is_none_or(|(a, b)| (a..=b).contains(&num))
}

pub fn run_case(
    ruleset: &Arc<Ruleset>,
    fx: &Fixture,
    case: &saker_synth::Case,
    opts: &AlertOptions,
    explain_all: bool,
) -> CaseResult {
    let started = std::time::Instant::now();
    let mut r = CaseResult {
        file: fx.name.clone(),
        case: case.name.clone(),
        problems: Vec::new(),
        explanations: Vec::new(),
        alerts: BTreeMap::new(),
        expected: Vec::new(),
        failed_rules: BTreeSet::new(),
        millis: 0.0,
    };
    let (fire, not_fire) = match case.expect.resolve(fx.file.rule.as_deref()) {
        Ok(x) => x,
        Err(m) => {
            r.problems.push(m);
            return r;
        }
    };
    r.expected = fire
        .iter()
        .map(|f| (f.rule.clone(), true))
        .chain(not_fire.iter().map(|n| (n.clone(), false)))
        .collect();
    for (name, _) in &r.expected {
        match ruleset.find(name) {
            None => r.problems.push(format!("rule '{name}' is not loaded")),
            Some(i) if !ruleset.is_enabled(i) => r
                .problems
                .push(format!("rule '{name}' is loaded but disabled")),
            Some(_) => {}
        }
    }
    if !r.problems.is_empty() {
        return r;
    }
    let built = match fx.build(case) {
        Ok(b) => b,
        Err(e) => {
            r.problems.push(e.to_string());
            return r;
        }
    };
    let mut alerts: Vec<Alert> = Vec::new();
    replay_built(ruleset, &built, opts, &mut |ev, a| {
        if in_range(&built, ev.num) {
            alerts.extend(a);
        }
    });
    for a in &alerts {
        *r.alerts.entry(a.rule.clone()).or_default() += 1;
    }
    let mut failed_rules = BTreeSet::new();
    for f in &fire {
        let mine: Vec<&Alert> = alerts.iter().filter(|a| a.rule == f.rule).collect();
        let before = r.problems.len();
        check_fire(f, &mine, &mut r.problems);
        if r.problems.len() > before {
            failed_rules.insert(f.rule.clone());
        }
    }
    for n in &not_fire {
        let c = r.alerts.get(n).copied().unwrap_or(0);
        if c > 0 {
            r.problems
                .push(format!("'{n}' fired {c} time(s), expected no alert"));
            failed_rules.insert(n.clone());
        }
    }
    let to_explain: Vec<String> = if explain_all {
        r.expected.iter().map(|(n, _)| n.clone()).collect()
    } else {
        failed_rules.iter().cloned().collect()
    };
    r.failed_rules = failed_rules;
    for name in to_explain {
        r.explanations.push(explain_rule(ruleset, &built, &name));
    }
    r.millis = started.elapsed().as_secs_f64() * 1000.0;
    r
}

fn check_fire(f: &ExpectFire, mine: &[&Alert], problems: &mut Vec<String>) {
    let n = mine.len() as u64;
    match f.count {
        Some(c) if c != n => problems.push(format!("'{}' fired {n} time(s), expected {c}", f.rule)),
        None if n == 0 => problems.push(format!("'{}' did not fire, expected an alert", f.rule)),
        _ => {}
    }
    for a in mine {
        for (k, want) in &f.output_fields {
            let want = yaml_text(want);
            match a.output_fields.iter().find(|(name, _)| name == k) {
                None => problems.push(format!(
                    "'{}': output field {k} is not in the alert (fields: {})",
                    f.rule,
                    a.output_fields
                        .iter()
                        .map(|(n, _)| n.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
                Some((_, got)) => {
                    let got = value_text(got);
                    if got != want {
                        problems.push(format!(
                            "'{}': output field {k} is {got}, expected {want}",
                            f.rule
                        ));
                    }
                }
            }
        }
        if let Some(s) = &f.output_contains {
            if !a.output.contains(s.as_str()) {
                problems.push(format!(
                    "'{}': output does not contain {s:?}: {}",
                    f.rule, a.output
                ));
            }
        }
    }
}

fn yaml_text(v: &serde_norway::Value) -> String {
    match v {
        serde_norway::Value::String(s) => s.clone(),
        serde_norway::Value::Number(n) => n.to_string(),
        serde_norway::Value::Bool(b) => b.to_string(),
        serde_norway::Value::Null => "<NA>".into(),
        other => serde_norway::to_string(other).unwrap_or_default(),
    }
}

fn value_text(v: &OutputValue) -> String {
    match v {
        OutputValue::Null => "<NA>".into(),
        OutputValue::Str(s) => s.clone(),
        OutputValue::U64(n) => n.to_string(),
        OutputValue::I64(n) => n.to_string(),
        OutputValue::Bool(b) => b.to_string(),
        // As text outputs render list fields.
        OutputValue::List(l) => format!("({})", l.join(",")),
    }
}

/// Why `rule` did or did not fire on the case's events: the rule's condition tree evaluated
/// on each event of a type the rule looks at (the last few when there are many).
fn explain_rule(ruleset: &Arc<Ruleset>, built: &Built, rule: &str) -> String {
    let Some(idx) = ruleset.find(rule) else {
        return format!("rule '{rule}' is not loaded");
    };
    // The same state engine, driven directly so the view is taken before deferred removals
    // (a closed fd, an exited thread) apply, exactly when `matches` saw it.
    let mut state = State::new(saker_state::Config::default());
    state.seed(&built.snapshot);
    for (id, meta) in &built.containers {
        state.set_container_meta(id, meta.clone());
    }
    let mut parts = Vec::new();
    for ev in &built.events {
        {
            let ctx = state.process(ev);
            if in_range(built, ev.num) {
                if let Some(x) = ruleset.explain(idx, &ctx) {
                    parts.push((ev.num, ev.type_name(), x));
                }
            }
        }
        state.finish();
    }
    let mut out = format!("why '{rule}' ");
    if parts.is_empty() {
        out.push_str("did not fire: no event of a type its condition needs");
        let names = ruleset.event_type_names(idx);
        if !names.is_empty() {
            let _ = write!(out, " ({})", names.join(", "));
        }
        out.push('\n');
        return out;
    }
    out.push_str("did or did not fire, per event:\n");
    const MAX: usize = 3;
    let skip = parts.len().saturating_sub(MAX);
    if skip > 0 {
        let _ = writeln!(out, "  ({skip} earlier event(s) of these types not shown)");
    }
    for (num, ty, text) in parts.into_iter().skip(skip) {
        let _ = writeln!(out, "  event #{num} ({ty}):");
        for line in text.lines() {
            let _ = writeln!(out, "    {line}");
        }
    }
    out
}

/// Enabled rules no case expects to fire.
fn uncovered(ruleset: &Ruleset, results: &[CaseResult]) -> Vec<String> {
    let fired: BTreeSet<&str> = results
        .iter()
        .flat_map(|r| {
            r.expected
                .iter()
                .filter(|(_, f)| *f)
                .map(|(n, _)| n.as_str())
        })
        .collect();
    ruleset
        .enabled()
        .iter()
        .map(|&i| ruleset.info(i).name.clone())
        .filter(|n| !fired.contains(n.as_str()))
        .collect()
}

#[derive(Default)]
struct RuleSummary {
    fire: usize,
    no_fire: usize,
    failed: usize,
}

fn per_rule(results: &[CaseResult]) -> BTreeMap<&str, RuleSummary> {
    let mut m: BTreeMap<&str, RuleSummary> = BTreeMap::new();
    for r in results {
        for (name, fire) in &r.expected {
            let s = m.entry(name.as_str()).or_default();
            if *fire {
                s.fire += 1;
            } else {
                s.no_fire += 1;
            }
            // A case that could not run fails every rule it names.
            if r.failed_rules.contains(name) || (!r.passed() && r.failed_rules.is_empty()) {
                s.failed += 1;
            }
        }
    }
    m
}

fn text_report(results: &[CaseResult], uncovered: Option<&Vec<String>>) -> String {
    let mut out = String::new();
    for r in results {
        let _ = writeln!(
            out,
            "{}  {} :: {}",
            if r.passed() { "PASS" } else { "FAIL" },
            r.file,
            r.case
        );
        for p in &r.problems {
            let _ = writeln!(out, "      {p}");
        }
        for e in &r.explanations {
            for line in e.lines() {
                let _ = writeln!(out, "      {line}");
            }
        }
    }
    let _ = writeln!(out, "\nRules:");
    for (name, s) in per_rule(results) {
        let total = s.fire + s.no_fire;
        let _ = writeln!(
            out,
            "  {} {name}: {} of {total} case(s) passed ({} must fire, {} must not)",
            if s.failed == 0 { "ok  " } else { "FAIL" },
            total - s.failed,
            s.fire,
            s.no_fire
        );
    }
    if let Some(u) = uncovered {
        let _ = writeln!(
            out,
            "\nCoverage: {} enabled rule(s) without a case that fires them",
            u.len()
        );
        for n in u {
            let _ = writeln!(out, "  uncovered: {n}");
        }
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    let _ = writeln!(
        out,
        "\n{} case(s): {} passed, {failed} failed",
        results.len(),
        results.len() - failed
    );
    out
}

fn json_report(
    results: &[CaseResult],
    ruleset: &Ruleset,
    uncovered: Option<&Vec<String>>,
) -> String {
    use serde_json::json;
    let cases: Vec<_> = results
        .iter()
        .map(|r| {
            json!({
                "file": r.file,
                "case": r.case,
                "passed": r.passed(),
                "problems": r.problems,
                "explanations": r.explanations,
                "alerts": r.alerts,
                "expected": r.expected.iter().map(|(n, f)| json!({"rule": n, "fire": f})).collect::<Vec<_>>(),
                "millis": r.millis,
            })
        })
        .collect();
    let rules: Vec<_> = per_rule(results)
        .into_iter()
        .map(|(n, s)| json!({"rule": n, "must_fire": s.fire, "must_not_fire": s.no_fire, "failed": s.failed}))
        .collect();
    let failed = results.iter().filter(|r| !r.passed()).count();
    let mut doc = json!({
        "cases": cases,
        "rules": rules,
        "passed": results.len() - failed,
        "failed": failed,
        "loaded_rules": ruleset.enabled().len(),
    });
    if let Some(u) = uncovered {
        doc["uncovered"] = json!(u);
    }
    doc.to_string()
}

fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c if (c as u32) < 0x20 && !matches!(c, '\n' | '\t' | '\r') => {}
            c => o.push(c),
        }
    }
    o
}

/// JUnit XML: one test suite per fixture file, one test case per case.
fn junit(results: &[CaseResult]) -> String {
    let mut by_file: BTreeMap<&str, Vec<&CaseResult>> = BTreeMap::new();
    for r in results {
        by_file.entry(r.file.as_str()).or_default().push(r);
    }
    let failed = results.iter().filter(|r| !r.passed()).count();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"saker test\" tests=\"{}\" failures=\"{failed}\">",
        results.len()
    );
    for (file, rs) in by_file {
        let f = rs.iter().filter(|r| !r.passed()).count();
        let secs: f64 = rs.iter().map(|r| r.millis).sum::<f64>() / 1000.0;
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{f}\" time=\"{secs:.3}\">",
            xml_escape(file),
            rs.len()
        );
        for r in rs {
            let _ = write!(
                out,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{:.3}\"",
                xml_escape(file),
                xml_escape(&r.case),
                r.millis / 1000.0
            );
            if r.passed() {
                out.push_str("/>\n");
            } else {
                let _ = writeln!(
                    out,
                    ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                    xml_escape(&r.problems.join("; ")),
                    xml_escape(&format!(
                        "{}\n{}",
                        r.problems.join("\n"),
                        r.explanations.join("\n")
                    ))
                );
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}
