//! Rule items (§1.6) with `append`/`override` semantics (§1.7) and exception decoding (§2.1).

use super::items::{Chain, RResult, Reader, OVERRIDE_AND_APPEND};
use super::yaml::{Node, NodeKind};
use super::RuleDef;
use crate::errors::WarningCode;
use crate::exceptions::{
    validate_and_default, validate_rows, ExcRow, ExcStrings, ExcValue, Exception,
};
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
    "tags",
    "exceptions",
    "warn_evttypes",
    "skip-if-unknown-filter",
    "capture",
    "capture_duration",
    "append",
    "override",
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
fn field_check(source: &str) -> Option<&'static dyn Fn(&str) -> bool> {
    (source == "syscall")
        .then_some(&crate::engine::is_valid_exception_field as &dyn Fn(&str) -> bool)
}

impl Reader<'_> {
    pub(super) fn read_rule(&mut self, item: &Node, chain: &Chain) -> RResult<()> {
        let (name, _) = self.req_str(item, "rule", chain)?;
        let c = self.with(chain, "rule", &name, item.pos);
        self.check_keys(item, RULE_KEYS, &c);
        let legacy_append = self.opt_bool(item, "append", &c)?;
        if item.has("append") {
            self.warn_append_deprecated(&c);
        }
        if item.has("override") {
            if legacy_append == Some(true) {
                return Err(self.yerr(OVERRIDE_AND_APPEND, &c));
            }
            return self.rule_override(item, &name, &c);
        }
        if legacy_append == Some(true) {
            return self.rule_legacy_append(item, &name, &c);
        }
        if !["condition", "output", "desc", "priority"]
            .iter()
            .any(|k| item.has(k))
        {
            return self.rule_enable_only(item, &name, &c);
        }
        self.rule_definition(item, name, c)
    }

    fn rule_definition(&mut self, item: &Node, name: String, c: Chain) -> RResult<()> {
        let (cond, cv) = self.req_str(item, "condition", &c)?;
        let cond_loc = self.with(&c, "rule condition", "", cv.pos);
        let (output, ov) = self.req_str(item, "output", &c)?;
        let output_loc = self.with(&c, "rule output", "", ov.pos);
        let (desc, _) = self.req_str(item, "desc", &c)?;
        let priority = self.priority(item, &c)?;
        let source = self.opt_str(item, "source", &c)?;
        if source.as_deref() == Some("") {
            let v = item.get("source").expect("present");
            let vc = self.with(&c, "value for", "source", v.pos);
            return Err(self.yerr("Value must be non-empty", &vc));
        }
        let tags = self.tags(item, &c)?;
        let src = source.as_deref().unwrap_or("syscall");
        let mut exceptions = self.exceptions(item, &c)?.unwrap_or_default();
        let mut seen = BTreeSet::new();
        for (e, pos) in exceptions.iter_mut() {
            let ec = self.with(&c, "exception", &e.name, *pos);
            if !seen.insert(e.name.clone()) {
                self.warn(
                    WarningCode::ExceptionNameNotUnique,
                    format!(
                        "Multiple definitions of exception '{}' in the same rule",
                        e.name
                    ),
                    &ec,
                );
            }
            validate_and_default(e, field_check(src)).map_err(|m| self.verr(m, &ec))?;
        }
        let def = RuleDef {
            name: name.clone(),
            cond,
            output: output.trim().to_string(),
            desc,
            priority,
            source_explicit: source.is_some(),
            source: source.unwrap_or_else(|| "syscall".into()),
            enabled: self.opt_bool(item, "enabled", &c)?.unwrap_or(true),
            tags,
            exceptions: exceptions.into_iter().map(|(e, _)| e).collect(),
            warn_evttypes: self.opt_bool(item, "warn_evttypes", &c)?.unwrap_or(true),
            skip_if_unknown_filter: self
                .opt_bool(item, "skip-if-unknown-filter", &c)?
                .unwrap_or(false),
            capture: self.opt_bool(item, "capture", &c)?.unwrap_or(false),
            capture_duration: self.opt_u32(item, "capture_duration", &c)?.unwrap_or(0),
            index: 0,
            visibility: 0,
            loc: c.clone(),
            cond_loc,
            output_loc,
        };
        let id = self.col.next_id();
        match self.col.rule_idx.get(&name).copied() {
            Some(i) => {
                let old = &self.col.rules[i];
                if def.source_explicit && old.source != def.source {
                    return Err(self.verr("Rule has been re-defined with a different source", &c));
                }
                let index = old.index;
                self.col.rules[i] = RuleDef {
                    index,
                    visibility: id,
                    ..def
                };
            }
            None => {
                self.col.rule_idx.insert(name, self.col.rules.len());
                self.col.rules.push(RuleDef {
                    index: id,
                    visibility: id,
                    ..def
                });
            }
        }
        Ok(())
    }

    fn priority(&self, item: &Node, c: &Chain) -> RResult<Priority> {
        let (p, pv) = self.req_str(item, "priority", c)?;
        Priority::parse(&p).ok_or_else(|| {
            let pc = self.with(c, "rule priority", "", pv.pos);
            self.yerr("Invalid priority", &pc)
        })
    }

    fn tags(&self, item: &Node, c: &Chain) -> RResult<BTreeSet<String>> {
        match item.get("tags") {
            None => Ok(BTreeSet::new()),
            Some(v) if v.is_null() => Ok(BTreeSet::new()),
            Some(v) => Ok(self.str_seq(v, "tags", c, "tag")?.into_iter().collect()),
        }
    }

    fn existing_rule(&self, name: &str) -> Option<usize> {
        self.col.rule_idx.get(name).copied()
    }

    fn check_source(&self, item: &Node, idx: usize, c: &Chain) -> RResult<()> {
        if let Some(s) = self.opt_str(item, "source", c)? {
            if s != self.col.rules[idx].source {
                return Err(self.verr("Rule has been re-defined with a different source", c));
            }
        }
        Ok(())
    }

    fn rule_override(&mut self, item: &Node, name: &str, c: &Chain) -> RResult<()> {
        let ov = item.get("override").expect("present");
        let ops = self.override_ops(ov, c, APPENDABLE, REPLACEABLE)?;
        for (k, op) in &ops {
            if !item.has(k) {
                return Err(self.yerr(
                    format!("An {op} override for '{k}' was specified but '{k}' is not defined"),
                    c,
                ));
            }
        }
        for k in REPLACEABLE {
            if item.has(k) && !ops.iter().any(|(ok, _)| ok == k) {
                let (kn, _) = item.get_entry(k).expect("present");
                let kc = self.with(c, "value for", k, kn.pos);
                return Err(self.yerr(
                    format!(
                        "Unexpected key '{k}': no corresponding entry under 'override' is defined."
                    ),
                    &kc,
                ));
            }
        }
        let has_append = ops.iter().any(|(_, op)| op == "append");
        let Some(idx) = self.existing_rule(name) else {
            let msg = if has_append {
                "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists"
            } else {
                "An 'override.<key>: replace' to a rule was requested but no rule by that name already exists"
            };
            return Err(self.verr(msg, c));
        };
        self.check_source(item, idx, c)?;
        // Appends first, then replaces.
        for (k, _) in ops.iter().filter(|(_, op)| op == "append") {
            self.append_key(item, idx, k, c)?;
        }
        for (k, _) in ops.iter().filter(|(_, op)| op == "replace") {
            self.replace_key(item, idx, k, c)?;
        }
        let id = self.col.next_id();
        self.col.rules[idx].visibility = id;
        Ok(())
    }

    fn append_key(&mut self, item: &Node, idx: usize, key: &str, c: &Chain) -> RResult<()> {
        match key {
            "condition" | "output" | "desc" => {
                let new = self.opt_str(item, key, c)?.unwrap_or_default();
                if new.is_empty() {
                    return Ok(());
                }
                let r = &mut self.col.rules[idx];
                let slot = match key {
                    "condition" => &mut r.cond,
                    "output" => &mut r.output,
                    _ => &mut r.desc,
                };
                *slot = format!("{slot} {new}");
            }
            "tags" => {
                let t = self.tags(item, c)?;
                self.col.rules[idx].tags.extend(t);
            }
            "exceptions" => self.append_exceptions(item, idx, c)?,
            _ => {}
        }
        Ok(())
    }

    fn replace_key(&mut self, item: &Node, idx: usize, key: &str, c: &Chain) -> RResult<()> {
        match key {
            "condition" => self.col.rules[idx].cond = self.req_str(item, key, c)?.0,
            "output" => {
                self.col.rules[idx].output = self.req_str(item, key, c)?.0.trim().to_string()
            }
            "desc" => self.col.rules[idx].desc = self.req_str(item, key, c)?.0,
            "priority" => self.col.rules[idx].priority = self.priority(item, c)?,
            "tags" => self.col.rules[idx].tags = self.tags(item, c)?,
            "exceptions" => {
                let mut list = self.exceptions(item, c)?.unwrap_or_default();
                // Divergence (spec §8.20): upstream skips comps defaulting here; we apply it.
                let src = self.col.rules[idx].source.clone();
                for (e, pos) in list.iter_mut() {
                    let ec = self.with(c, "exception", &e.name, *pos);
                    validate_and_default(e, field_check(&src)).map_err(|m| self.verr(m, &ec))?;
                }
                self.col.rules[idx].exceptions = list.into_iter().map(|(e, _)| e).collect();
            }
            "enabled" => self.col.rules[idx].enabled = self.opt_bool(item, key, c)?.unwrap_or(true),
            "warn_evttypes" => {
                self.col.rules[idx].warn_evttypes = self.opt_bool(item, key, c)?.unwrap_or(true)
            }
            "skip-if-unknown-filter" => {
                self.col.rules[idx].skip_if_unknown_filter =
                    self.opt_bool(item, key, c)?.unwrap_or(false)
            }
            "capture" => {
                self.col.rules[idx].capture = self.opt_bool(item, key, c)?.unwrap_or(false)
            }
            "capture_duration" => {
                self.col.rules[idx].capture_duration = self.opt_u32(item, key, c)?.unwrap_or(0)
            }
            _ => {}
        }
        Ok(())
    }

    fn rule_legacy_append(&mut self, item: &Node, name: &str, c: &Chain) -> RResult<()> {
        if !item.has("condition") && !item.has("exceptions") {
            return Err(self.verr(
                "Appended rule must have exceptions or condition property",
                c,
            ));
        }
        let Some(idx) = self.existing_rule(name) else {
            return Err(self.verr(
                "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists",
                c,
            ));
        };
        self.check_source(item, idx, c)?;
        if item.has("condition") {
            self.append_key(item, idx, "condition", c)?;
        }
        if item.has("exceptions") {
            self.append_exceptions(item, idx, c)?;
        }
        let id = self.col.next_id();
        self.col.rules[idx].visibility = id;
        Ok(())
    }

    fn rule_enable_only(&mut self, item: &Node, name: &str, c: &Chain) -> RResult<()> {
        let Some(enabled) = self.opt_bool(item, "enabled", c)? else {
            return Err(self.yerr("Item has no mapping for key 'enabled'", c));
        };
        self.warn(
            WarningCode::DeprecatedItem,
            "The standalone 'enabled' key usage is deprecated. The correct approach requires also a 'replace' entry under the 'override' key (i.e. 'enabled: replace').",
            c,
        );
        let Some(idx) = self.existing_rule(name) else {
            return Err(self.verr(
                "Rule has 'enabled' key but no rule by that name already exists",
                c,
            ));
        };
        self.col.rules[idx].enabled = enabled;
        let id = self.col.next_id();
        self.col.rules[idx].visibility = id;
        Ok(())
    }

    fn append_exceptions(&mut self, item: &Node, idx: usize, c: &Chain) -> RResult<()> {
        let Some(list) = self.exceptions(item, c)? else {
            return Ok(());
        };
        for (mut e, pos) in list {
            let ec = self.with(c, "exception", &e.name, pos);
            let existing = self.col.rules[idx]
                .exceptions
                .iter()
                .position(|x| x.name == e.name);
            match existing {
                Some(i) => {
                    if !e.fields.is_empty() || e.comps.is_some() {
                        return Err(self.verr("Can not append exception fields/comps to existing exception, only values", &ec));
                    }
                    if e.values.is_empty() {
                        self.warn(
                            WarningCode::AppendNoValues,
                            "Overriding/appending exception with no values",
                            &ec,
                        );
                    }
                    let target = &mut self.col.rules[idx].exceptions[i];
                    if let ExcStrings::Many(f) = &target.fields {
                        validate_rows(f.len(), &e.values).map_err(|m| self.verr(m, &ec))?;
                    }
                    let target = &mut self.col.rules[idx].exceptions[i];
                    target.values.extend(e.values);
                }
                None => {
                    if e.fields.is_empty() {
                        return Err(self.verr(
                            "Rule exception item must have fields property with a list of fields",
                            &ec,
                        ));
                    }
                    if e.values.is_empty() {
                        return Err(self.verr(
                            "Rule exception must have values property with a list of values",
                            &ec,
                        ));
                    }
                    let src = self.col.rules[idx].source.clone();
                    validate_and_default(&mut e, field_check(&src))
                        .map_err(|m| self.verr(m, &ec))?;
                    self.col.rules[idx].exceptions.push(e);
                }
            }
        }
        Ok(())
    }

    /// Decodes `exceptions` (shape only; see §2.1). `None` when absent or null.
    fn exceptions(
        &self,
        item: &Node,
        c: &Chain,
    ) -> RResult<Option<Vec<(Exception, super::yaml::Pos)>>> {
        let Some(v) = item.get("exceptions") else {
            return Ok(None);
        };
        let xc = self.with(c, "exceptions", "", v.pos);
        let entries = match &v.kind {
            NodeKind::Null => return Ok(None),
            NodeKind::Seq(e) => e,
            _ => return Err(self.yerr("Rule exceptions must be a sequence", &xc)),
        };
        let mut out = Vec::new();
        for e in entries {
            let ec = self.with(&xc, "exception", "", e.pos);
            if !matches!(e.kind, NodeKind::Map(_)) {
                return Err(self.yerr("Rule exception must be a mapping", &ec));
            }
            let (name, _) = self.req_str(e, "name", &ec)?;
            let ec = self.with(&xc, "exception", &name, e.pos);
            let fields = self
                .strings(e.get("fields"), "fields", &ec)?
                .unwrap_or(ExcStrings::Many(Vec::new()));
            let comps = self.strings(e.get("comps"), "comps", &ec)?;
            let mut values = Vec::new();
            if let Some(vv) = e.get("values") {
                let vc = self.with(&ec, "exception values", "", vv.pos);
                match &vv.kind {
                    NodeKind::Null => {}
                    NodeKind::Seq(rows) => {
                        for r in rows {
                            values.push(self.exc_row(r, &vc)?);
                        }
                    }
                    _ => return Err(self.yerr("Rule exception values must be a sequence", &vc)),
                }
            }
            out.push((
                Exception {
                    name,
                    fields,
                    comps,
                    values,
                },
                e.pos,
            ));
        }
        Ok(Some(out))
    }

    fn strings(&self, v: Option<&Node>, key: &str, c: &Chain) -> RResult<Option<ExcStrings>> {
        let Some(v) = v else { return Ok(None) };
        Ok(match &v.kind {
            NodeKind::Null => None,
            NodeKind::Scalar(s) => Some(ExcStrings::One(s.clone())),
            NodeKind::Seq(_) => Some(ExcStrings::Many(self.str_seq(
                v,
                key,
                c,
                "exception value",
            )?)),
            NodeKind::Map(_) => {
                let vc = self.with(c, "value for", key, v.pos);
                return Err(self.yerr("Value is not a scalar value", &vc));
            }
        })
    }

    fn exc_row(&self, r: &Node, c: &Chain) -> RResult<ExcRow> {
        let rc = self.with(c, "exception value", "", r.pos);
        match &r.kind {
            NodeKind::Scalar(s) => Ok(ExcRow::Value(s.clone())),
            NodeKind::Null => Ok(ExcRow::Value(String::new())),
            NodeKind::Seq(elems) => {
                let mut row = Vec::new();
                for el in elems {
                    row.push(match &el.kind {
                        NodeKind::Scalar(s) => ExcValue::Scalar(s.clone()),
                        NodeKind::Null => ExcValue::Scalar(String::new()),
                        NodeKind::Seq(_) => {
                            ExcValue::List(self.str_seq(el, "values", &rc, "exception value")?)
                        }
                        NodeKind::Map(_) => {
                            return Err(self.yerr("Value is not a scalar value", &rc))
                        }
                    });
                }
                Ok(ExcRow::Row(row))
            }
            NodeKind::Map(_) => Err(self.yerr("Value is not a scalar value", &rc)),
        }
    }
}
