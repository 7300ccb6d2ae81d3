//! Rule items (§1.6) with `append`/`override` semantics (§1.7) and exception
//! decoding (§2.1), in the order Falco's reader and collector check them.

use super::items::{
    Chain, RResult, Reader, Want, OVERRIDE_AND_APPEND, WARNING_APPEND, WARNING_ENABLED,
};
use super::yaml::{Node, NodeKind};
use super::RuleDef;
use crate::errors::WarningCode;
use crate::exceptions::{validate_and_default, Entry, Exception};
use crate::Priority;
use std::collections::BTreeSet;

const RULE_KEYS: &[&str] = &[
    "rule",
    "condition",
    "output",
    "desc",
    "priority",
    "source",
    "enabled",
    "capture",
    "capture_duration",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "tags",
    "exceptions",
    "override",
    "append",
];
const APPENDABLE: &[&str] = &["condition", "output", "desc", "tags", "exceptions"];
const REPLACEABLE: &[&str] = &[
    "condition",
    "output",
    "desc",
    "priority",
    "capture",
    "capture_duration",
    "tags",
    "exceptions",
    "enabled",
    "warn_evttypes",
    "skip-if-unknown-filter",
];

/// Exception fields are only checked for the sources Saker compiles (§2.2).
fn field_check(known_source: bool) -> Option<&'static dyn Fn(&str) -> bool> {
    known_source.then_some(&crate::engine::is_valid_exception_field as &dyn Fn(&str) -> bool)
}

/// The isspace() trim libsinsp applies to outputs.
fn trim_output(s: &str) -> String {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\n' | '\x0b' | '\x0c' | '\r'))
        .to_string()
}

/// An append or replace of some keys of an existing rule.
#[derive(Default)]
struct RuleUpdate {
    /// The `source` written on the item ("" when absent).
    source: String,
    cond: Option<String>,
    output: Option<String>,
    desc: Option<String>,
    tags: Option<BTreeSet<String>>,
    exceptions: Option<Vec<Exception>>,
    priority: Option<Priority>,
    capture: Option<bool>,
    capture_duration: Option<u32>,
    enabled: Option<bool>,
    warn_evttypes: Option<bool>,
    skip_if_unknown_filter: Option<bool>,
}

impl RuleUpdate {
    fn has_any_value(&self) -> bool {
        self.cond.is_some()
            || self.output.is_some()
            || self.desc.is_some()
            || self.tags.is_some()
            || self.exceptions.is_some()
            || self.priority.is_some()
            || self.enabled.is_some()
            || self.capture.is_some()
            || self.capture_duration.is_some()
            || self.warn_evttypes.is_some()
            || self.skip_if_unknown_filter.is_some()
    }
}

impl Reader<'_> {
    pub(super) fn read_rule(&mut self, item: &Node, file: &Chain) -> RResult<()> {
        let tmp = self.with(file, "rule", "", item.pos);
        let name = self.req_str(item, "rule", &tmp)?;
        let c = self.with(file, "rule", &name, item.pos);
        let source = self
            .scalar(item, "source", &c, Want::OptionalEmpty)?
            .unwrap_or_default();
        let has_append_flag = self.bool_val(item, "append", &c, Want::Optional)? == Some(true);
        if has_append_flag {
            self.warn(WarningCode::DeprecatedItem, WARNING_APPEND, &c);
        }
        let (ov_append, ov_replace) = self.overrides(item, &c, APPENDABLE, REPLACEABLE)?;
        let has_overrides = !ov_append.is_empty() || !ov_replace.is_empty();
        if has_append_flag && has_overrides {
            return Err(self.yerr(OVERRIDE_AND_APPEND, &c));
        }
        if has_overrides {
            self.rule_overrides(item, &name, source, &c, &ov_append, &ov_replace)?;
        } else if has_append_flag {
            let mut upd = RuleUpdate {
                source,
                ..Default::default()
            };
            if item.has("condition") {
                upd.cond = Some(self.req_str(item, "condition", &c)?);
            }
            if item.has("exceptions") {
                upd.exceptions = Some(self.read_exceptions(item, &c, true)?);
            }
            self.append_rule(&name, upd, &c)?;
        } else if !["condition", "output", "desc", "priority"]
            .iter()
            .any(|k| item.has(k))
        {
            let enabled = self
                .bool_val(item, "enabled", &c, Want::Required)?
                .unwrap_or(true);
            self.warn(WarningCode::DeprecatedItem, WARNING_ENABLED, &c);
            let Some(&idx) = self.col.rule_idx.get(&name) else {
                return Err(self.verr(
                    "Rule has 'enabled' key but no rule by that name already exists",
                    &c,
                ));
            };
            self.col.rules[idx].enabled = enabled;
        } else {
            self.rule_definition(item, name, &c)?;
        }
        self.warn_unknown_keys(item, RULE_KEYS, &c);
        Ok(())
    }

    /// `override:` — appends first, then replaces, then keys left without an
    /// override entry.
    fn rule_overrides(
        &mut self,
        item: &Node,
        name: &str,
        source: String,
        c: &Chain,
        ov_append: &BTreeSet<String>,
        ov_replace: &BTreeSet<String>,
    ) -> RResult<()> {
        let mut expected: BTreeSet<&str> = APPENDABLE
            .iter()
            .chain(REPLACEABLE)
            .copied()
            .filter(|k| item.has(k))
            .collect();
        // Whether `key` is overridden with `op`; it must then be written.
        let take = |this: &Self,
                    expected: &mut BTreeSet<&str>,
                    set: &BTreeSet<String>,
                    op: &str,
                    key: &str|
         -> RResult<bool> {
            if !set.contains(key) {
                return Ok(false);
            }
            if !expected.remove(key) {
                return Err(this.yerr(
                    format!(
                        "An {op} override for '{key}' was specified but '{key}' is not defined"
                    ),
                    c,
                ));
            }
            Ok(true)
        };
        if !ov_append.is_empty() {
            let mut upd = RuleUpdate::default();
            if take(self, &mut expected, ov_append, "append", "condition")? {
                upd.source.clone_from(&source);
                upd.cond = Some(self.req_str(item, "condition", c)?);
            }
            if take(self, &mut expected, ov_append, "append", "exceptions")? {
                upd.exceptions = Some(self.read_exceptions(item, c, true)?);
            }
            if take(self, &mut expected, ov_append, "append", "output")? {
                upd.output = Some(self.req_str(item, "output", c)?);
            }
            if take(self, &mut expected, ov_append, "append", "desc")? {
                upd.desc = Some(self.req_str(item, "desc", c)?);
            }
            if take(self, &mut expected, ov_append, "append", "tags")? {
                upd.tags = Some(self.tags(item, c)?);
            }
            self.append_rule(name, upd, c)?;
        }
        if !ov_replace.is_empty() {
            let mut upd = RuleUpdate::default();
            let r = ov_replace;
            if take(self, &mut expected, r, "replace", "condition")? {
                upd.source.clone_from(&source);
                upd.cond = Some(self.req_str(item, "condition", c)?);
            }
            if take(self, &mut expected, r, "replace", "exceptions")? {
                upd.exceptions = Some(self.read_exceptions(item, c, false)?);
            }
            if take(self, &mut expected, r, "replace", "output")? {
                upd.output = Some(self.req_str(item, "output", c)?);
            }
            if take(self, &mut expected, r, "replace", "desc")? {
                upd.desc = Some(self.req_str(item, "desc", c)?);
            }
            if take(self, &mut expected, r, "replace", "tags")? {
                upd.tags = Some(self.tags(item, c)?);
            }
            if take(self, &mut expected, r, "replace", "priority")? {
                upd.priority = Some(self.priority(item, c)?);
            }
            if take(self, &mut expected, r, "replace", "capture")? {
                upd.capture = self.bool_val(item, "capture", c, Want::Required)?;
            }
            if take(self, &mut expected, r, "replace", "capture_duration")? {
                upd.capture_duration = self.u32_val(item, "capture_duration", c, Want::Required)?;
            }
            if take(self, &mut expected, r, "replace", "enabled")? {
                upd.enabled = self.bool_val(item, "enabled", c, Want::Required)?;
            }
            if take(self, &mut expected, r, "replace", "warn_evttypes")? {
                upd.warn_evttypes = self.bool_val(item, "warn_evttypes", c, Want::Required)?;
            }
            if take(self, &mut expected, r, "replace", "skip-if-unknown-filter")? {
                upd.skip_if_unknown_filter =
                    self.bool_val(item, "skip-if-unknown-filter", c, Want::Required)?;
            }
            self.replace_rule(name, upd, c)?;
        }
        if let Some(k) = expected.first() {
            let pos = item.get(k).map(|v| v.pos).unwrap_or_default();
            let kc = self.with(c, "overrides", k, pos);
            return Err(self.yerr(
                format!(
                    "Unexpected key '{k}': no corresponding entry under 'override' is defined."
                ),
                &kc,
            ));
        }
        Ok(())
    }

    /// The previous definition, refusing one with another explicit source.
    fn prev_rule(&self, name: &str, source: &str, c: &Chain) -> RResult<Option<usize>> {
        let idx = self.col.rule_idx.get(name).copied();
        if let Some(i) = idx {
            let old = &self.col.rules[i].source;
            if !old.is_empty() && !source.is_empty() && old != source {
                return Err(self.verr("Rule has been re-defined with a different source", c));
            }
        }
        Ok(idx)
    }

    fn append_rule(&mut self, name: &str, upd: RuleUpdate, c: &Chain) -> RResult<()> {
        let Some(idx) = self.prev_rule(name, &upd.source, c)? else {
            return Err(self.verr(
                "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists",
                c,
            ));
        };
        if !upd.has_any_value() {
            return Err(self.verr(
                "Appended rule must have exceptions or condition property",
                c,
            ));
        }
        let known = !self.col.rules[idx].unknown_source;
        let r = &mut self.col.rules[idx];
        if upd.cond.as_ref().is_some_and(|n| !n.is_empty()) {
            r.origins
                .push(super::CondOrigin::at(c, "appended", r.cond.len() + 1));
        }
        for (slot, new) in [
            (&mut r.cond, &upd.cond),
            (&mut r.output, &upd.output),
            (&mut r.desc, &upd.desc),
        ] {
            if let Some(n) = new.as_ref().filter(|n| !n.is_empty()) {
                slot.push(' ');
                slot.push_str(n);
            }
        }
        if let Some(t) = upd.tags {
            r.tags.extend(t);
        }
        for mut ex in upd.exceptions.into_iter().flatten() {
            let existing = self.col.rules[idx]
                .exceptions
                .iter()
                .position(|x| x.name == ex.name);
            match existing {
                None => {
                    if !ex.fields.is_valid() {
                        return Err(self.verr(
                            "Rule exception must have fields property with a list of fields",
                            &ex.ctx,
                        ));
                    }
                    if ex.values.is_empty() {
                        return Err(self.verr(
                            "Rule exception must have values property with a list of values",
                            &ex.ctx,
                        ));
                    }
                    validate_and_default(&mut ex, field_check(known))
                        .map_err(|m| self.verr(m, &ex.ctx))?;
                    self.col.rules[idx].exceptions.push(ex);
                }
                Some(i) => {
                    if ex.fields.is_valid() {
                        return Err(self.verr(
                            "Can not append exception fields to existing exception, only values",
                            &ex.ctx,
                        ));
                    }
                    if ex.comps.is_valid() {
                        return Err(self.verr(
                            "Can not append exception comps to existing exception, only values",
                            &ex.ctx,
                        ));
                    }
                    self.col.rules[idx].exceptions[i].values.extend(ex.values);
                }
            }
        }
        let id = self.col.next_id();
        self.col.rules[idx].visibility = id;
        Ok(())
    }

    fn replace_rule(&mut self, name: &str, upd: RuleUpdate, c: &Chain) -> RResult<()> {
        let Some(idx) = self.prev_rule(name, &upd.source, c)? else {
            return Err(self.verr(
                "An 'override.<key>: replace' to a rule was requested but no rule by that name already exists",
                c,
            ));
        };
        if !upd.has_any_value() {
            return Err(self.verr(
                "The rule must have at least one field that can be replaced",
                c,
            ));
        }
        let r = &mut self.col.rules[idx];
        if let Some(v) = upd.cond {
            r.cond = v;
            r.origins = vec![super::CondOrigin::at(c, "replaced", 0)];
        }
        if let Some(v) = upd.output {
            r.output = v;
        }
        if let Some(v) = upd.desc {
            r.desc = v;
        }
        if let Some(v) = upd.tags {
            r.tags = v;
        }
        if let Some(mut list) = upd.exceptions {
            // Falco does not default comps of replaced exceptions (spec §8.20,
            // its compiler then reads past the comps); Saker fills the defaults
            // and leaves every other check to the compiler, as Falco does.
            for e in &mut list {
                if !e.comps.is_valid() {
                    e.comps = if e.fields.is_list() {
                        Entry::List(vec![Entry::Item("=".into()); e.fields.items().len()])
                    } else {
                        Entry::Item("in".into())
                    };
                }
            }
            r.exceptions = list;
        }
        if let Some(v) = upd.priority {
            r.priority = v;
        }
        if let Some(v) = upd.capture {
            r.capture = v;
        }
        if let Some(v) = upd.capture_duration {
            r.capture_duration = v;
        }
        if let Some(v) = upd.enabled {
            r.enabled = v;
        }
        if let Some(v) = upd.warn_evttypes {
            r.warn_evttypes = v;
        }
        if let Some(v) = upd.skip_if_unknown_filter {
            r.skip_if_unknown_filter = v;
        }
        let id = self.col.next_id();
        self.col.rules[idx].visibility = id;
        Ok(())
    }

    fn rule_definition(&mut self, item: &Node, name: String, c: &Chain) -> RResult<()> {
        let cond = self.req_str(item, "condition", c)?;
        let cond_loc = self.with(
            c,
            "rule condition",
            "",
            item.get("condition").expect("read").pos,
        );
        let output = self.req_str(item, "output", c)?;
        let output_loc = self.with(c, "rule output", "", item.get("output").expect("read").pos);
        let desc = self.req_str(item, "desc", c)?;
        let priority = self.priority(item, c)?;
        let source = self
            .scalar(item, "source", c, Want::Optional)?
            .unwrap_or_else(|| "syscall".into());
        let enabled = self
            .bool_val(item, "enabled", c, Want::Optional)?
            .unwrap_or(true);
        let capture = self
            .bool_val(item, "capture", c, Want::Optional)?
            .unwrap_or(false);
        let capture_duration = self
            .u32_val(item, "capture_duration", c, Want::Optional)?
            .unwrap_or(0);
        let warn_evttypes = self
            .bool_val(item, "warn_evttypes", c, Want::Optional)?
            .unwrap_or(true);
        let skip_if_unknown_filter = self
            .bool_val(item, "skip-if-unknown-filter", c, Want::Optional)?
            .unwrap_or(false);
        let tags = self.tags(item, c)?;
        let mut exceptions = self.read_exceptions(item, c, false)?;

        let prev = self.prev_rule(&name, &source, c)?;
        let unknown_source = !self.col.sources.contains(&source);
        if unknown_source {
            self.warn(
                WarningCode::UnknownSource,
                format!("Unknown source {source}, skipping"),
                c,
            );
        }
        for ex in &mut exceptions {
            if !ex.fields.is_valid() {
                return Err(self.verr(
                    "Rule exception item must have fields property with a list of fields",
                    &ex.ctx,
                ));
            }
            crate::compile::with_source(&source, || {
                validate_and_default(ex, field_check(!unknown_source))
            })
            .map_err(|m| self.verr(m, &ex.ctx))?;
        }
        let id = self.col.next_id();
        let def = RuleDef {
            name: name.clone(),
            cond,
            output: trim_output(&output),
            desc,
            priority,
            source,
            unknown_source,
            enabled,
            tags,
            exceptions,
            warn_evttypes,
            skip_if_unknown_filter,
            capture,
            capture_duration,
            index: id,
            visibility: id,
            loc: c.clone(),
            cond_loc,
            output_loc,
            origins: vec![super::CondOrigin::at(c, "defined", 0)],
        };
        match prev {
            Some(i) => {
                let index = self.col.rules[i].index;
                self.col.rules[i] = RuleDef { index, ..def };
            }
            None => {
                self.col.rule_idx.insert(name, self.col.rules.len());
                self.col.rules.push(def);
            }
        }
        Ok(())
    }

    fn priority(&self, item: &Node, c: &Chain) -> RResult<Priority> {
        let p = self.req_str(item, "priority", c)?;
        Priority::parse(&p).ok_or_else(|| {
            let pv = item.get("priority").expect("read").pos;
            let pc = self.with(c, "rule priority", "", pv);
            self.yerr("Invalid priority", &pc)
        })
    }

    fn tags(&self, item: &Node, c: &Chain) -> RResult<BTreeSet<String>> {
        Ok(self
            .scalar_seq(item, "tags", c, Want::Optional)?
            .unwrap_or_default()
            .into_iter()
            .collect())
    }

    /// Decodes `exceptions` (shape only; see §2.1). Empty when absent or null.
    /// `append`: `fields` may be omitted, and a missing `values` warns.
    fn read_exceptions(&mut self, item: &Node, c: &Chain, append: bool) -> RResult<Vec<Exception>> {
        let Some(v) = item.get("exceptions") else {
            return Ok(Vec::new());
        };
        let entries = match &v.kind {
            NodeKind::Null => return Ok(Vec::new()),
            NodeKind::Seq(e) => e,
            _ => {
                let xc = self.with(c, "exceptions", "", v.pos);
                return Err(self.yerr("Rule exceptions must be a sequence", &xc));
            }
        };
        let xc = self.with(c, "exceptions", "", v.pos);
        let mut out: Vec<Exception> = Vec::new();
        for e in entries {
            let tmp = self.with(&xc, "exception", "", e.pos);
            if !matches!(e.kind, NodeKind::Map(_)) {
                return Err(self.yerr("Rule exception must be a mapping", &tmp));
            }
            let name = self.req_str(e, "name", &tmp)?;
            let ec = self.with(c, "exception", &name, e.pos);
            for _ in out.iter().filter(|x| x.name == name) {
                self.warn(
                    WarningCode::ExceptionNameNotUnique,
                    format!("Multiple definitions of exception '{name}' in the same rule"),
                    &ec,
                );
            }
            let fields = self.entry(e.get("fields"), "fields", &ec, append)?;
            let comps = self.entry(e.get("comps"), "comps", &ec, true)?;
            let mut values = Vec::new();
            match e.get("values") {
                Some(vv) => {
                    let vc = self.with(&ec, "exception values", "", vv.pos);
                    let NodeKind::Seq(rows) = &vv.kind else {
                        return Err(self.yerr("Rule exception values must be a sequence", &vc));
                    };
                    for r in rows {
                        let rc = self.with(&vc, "exception value", "", r.pos);
                        values.push(self.entry(Some(r), "", &rc, false)?);
                    }
                }
                None if append => self.warn(
                    WarningCode::AppendNoValues,
                    "Overriding/appending exception with no values",
                    &ec,
                ),
                None => {}
            }
            out.push(Exception {
                name,
                fields,
                comps,
                values,
                ctx: ec,
            });
        }
        Ok(out)
    }

    /// One `fields`/`comps`/values entry: a scalar, a (nested) sequence, or
    /// nothing usable.
    fn entry(&self, v: Option<&Node>, key: &str, c: &Chain, optional: bool) -> RResult<Entry> {
        let Some(v) = v else {
            if optional {
                return Ok(Entry::Missing);
            }
            return Err(self.yerr(format!("Item has no mapping for key '{key}'"), c));
        };
        let vc = self.with(c, "value for", key, v.pos);
        Ok(match &v.kind {
            NodeKind::Scalar(s) if s.is_empty() => {
                return Err(self.yerr("Value must be non-empty", &vc))
            }
            NodeKind::Scalar(s) => Entry::Item(s.clone()),
            NodeKind::Seq(items) => {
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    let ic = self.with(&vc, "exception", "", it.pos);
                    out.push(self.entry(Some(it), "", &ic, false)?);
                }
                Entry::List(out)
            }
            NodeKind::Null | NodeKind::Map(_) => Entry::Missing,
        })
    }
}
