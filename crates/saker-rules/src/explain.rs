//! Why a rule did or did not match an event: its condition tree with the value of every
//! sub-expression, the field values each comparison saw, the macro (and the definition, append
//! or override of it) every piece comes from, and which exception matched.
//!
//! A separate walk over the uncompiled conditions, used by `saker test` and `replay --explain`
//! only: the compiled filters `Ruleset::matches` runs are not touched. The walk compiles each
//! comparison on its own with the rule compiler, so a comparison means here what it means there;
//! the final value is checked against the compiled filter.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;

use saker_fields::{EventView, Value};

use crate::ast::{Check, Expr, Literal, Operand, Rhs};
use crate::exceptions::{exception_clause, Exception};
use crate::load::{Collector, CondOrigin};
use crate::parse::parse_condition;

/// The uncompiled rules, macros and lists an explanation walks.
#[derive(Debug, Default)]
pub struct ExplainSource {
    rules: HashMap<String, RuleSrc>,
    macros: HashMap<String, (String, Vec<CondOrigin>)>,
    /// Items of each list, with list-in-list references expanded as the compiler does.
    lists: HashMap<String, Vec<String>>,
    static_fields: Arc<BTreeMap<String, String>>,
}

#[derive(Debug)]
struct RuleSrc {
    cond: String,
    origins: Vec<CondOrigin>,
    exceptions: Vec<Exception>,
}

impl ExplainSource {
    pub(crate) fn new(col: &Collector, static_fields: Arc<BTreeMap<String, String>>) -> Self {
        let lists = crate::engine::expanded_lists(col);
        ExplainSource {
            rules: col
                .rules
                .iter()
                .map(|r| {
                    (
                        r.name.clone(),
                        RuleSrc {
                            cond: r.cond.clone(),
                            origins: r.origins.clone(),
                            exceptions: r.exceptions.clone(),
                        },
                    )
                })
                .collect(),
            macros: col
                .macros
                .iter()
                .map(|m| (m.name.clone(), (m.cond.clone(), m.origins.clone())))
                .collect(),
            lists: col
                .lists
                .iter()
                .zip(lists)
                .map(|(l, items)| (l.name.clone(), items))
                .collect(),
            static_fields,
        }
    }

    /// The explanation of `rule` on `ev`; `compiled` is what the compiled filter said.
    pub(crate) fn explain(&self, rule: &str, ev: &dyn EventView, compiled: bool) -> String {
        let Some(r) = self.rules.get(rule) else {
            return format!("rule '{rule}': no source to explain it\n");
        };
        crate::compile::with_static_fields(&self.static_fields, || {
            let mut w = Walker {
                src: self,
                ev,
                out: String::new(),
                stack: HashSet::new(),
            };
            let cond_val = match parse_condition(&r.cond) {
                Ok(ast) => {
                    let _ = writeln!(w.out, "condition{}:", origin_note(&r.origins, 0, true));
                    w.node(&ast, 1, &r.origins)
                }
                Err(e) => {
                    let _ = writeln!(w.out, "condition does not parse: {}", e.message);
                    false
                }
            };
            let mut excepted = false;
            for ex in &r.exceptions {
                let mut fields = std::collections::BTreeSet::new();
                let clause = match exception_clause(ex, &mut fields) {
                    Ok(c) if c.is_empty() => continue,
                    Ok(c) => c,
                    Err(e) => {
                        let _ = writeln!(w.out, "exception '{}': {}", ex.name, e.message);
                        continue;
                    }
                };
                let at = ex
                    .ctx
                    .last()
                    .map(|l| format!(" [{}:{}]", l.name, l.pos.line + 1))
                    .unwrap_or_default();
                match parse_condition(&clause) {
                    Ok(ast) => {
                        let mut sub = Walker {
                            src: self,
                            ev,
                            out: String::new(),
                            stack: HashSet::new(),
                        };
                        let hit = sub.node(&ast, 2, &[]);
                        excepted |= hit;
                        let _ = writeln!(
                            w.out,
                            "{} exception '{}'{at}",
                            if hit { "MATCHED  " } else { "no match " },
                            ex.name
                        );
                        w.out.push_str(&sub.out);
                    }
                    Err(e) => {
                        let _ = writeln!(
                            w.out,
                            "exception '{}' does not parse: {}",
                            ex.name, e.message
                        );
                    }
                }
            }
            let walked = cond_val && !excepted;
            let verdict = match (cond_val, excepted) {
                (true, false) => "FIRES: the condition holds and no exception matched",
                (true, true) => "does not fire: the condition holds but an exception matched",
                _ => "does not fire: the condition is false",
            };
            let mut out = format!("{verdict}\n");
            out.push_str(&w.out);
            if walked != compiled {
                let _ = writeln!(
                    out,
                    "note: the compiled filter says {compiled}, this walk {walked} (please report)"
                );
            }
            out
        })
    }
}

/// Where the piece of text at `offset` came from (the last origin at or before it).
fn origin_at(origins: &[CondOrigin], offset: usize) -> Option<&CondOrigin> {
    origins.iter().rev().find(|o| o.offset <= offset)
}

fn origin_note(origins: &[CondOrigin], offset: usize, always: bool) -> String {
    match origin_at(origins, offset) {
        Some(o) if always || o.offset > 0 => format!(" [{} at {}:{}]", o.how, o.file, o.line + 1),
        _ => String::new(),
    }
}

struct Walker<'a> {
    src: &'a ExplainSource,
    ev: &'a dyn EventView,
    out: String,
    /// Macros being expanded (a loop would already have failed loading; this keeps the walk safe).
    stack: HashSet<String>,
}

fn mark(v: bool) -> &'static str {
    if v {
        "true "
    } else {
        "false"
    }
}

impl Walker<'_> {
    fn line(&mut self, depth: usize, v: bool, text: &str) {
        let _ = writeln!(self.out, "{}{}  {}", "  ".repeat(depth), mark(v), text);
    }

    /// Evaluates `e`, writing its tree; `origins` locate appended parts of the text `e` is from.
    fn node(&mut self, e: &Expr, depth: usize, origins: &[CondOrigin]) -> bool {
        match e {
            Expr::And(c) | Expr::Or(c) => {
                let is_and = matches!(e, Expr::And(_));
                let at = self.out.len();
                let mut vals = Vec::with_capacity(c.len());
                let mut kids = String::new();
                for x in c {
                    let saved = std::mem::take(&mut self.out);
                    let v = self.node(x, depth + 1, origins);
                    let note = origin_note(origins, x.pos(), false);
                    let mut text = std::mem::replace(&mut self.out, saved);
                    if !note.is_empty() {
                        // Mark the first line of a child that an append added.
                        if let Some(nl) = text.find('\n') {
                            text.insert_str(nl, &note);
                        }
                    }
                    kids.push_str(&text);
                    vals.push(v);
                }
                let v = if is_and {
                    vals.iter().all(|&x| x)
                } else {
                    vals.iter().any(|&x| x)
                };
                let label = if is_and { "and" } else { "or" };
                let mut head = String::new();
                let _ = writeln!(head, "{}{}  {label}", "  ".repeat(depth), mark(v));
                self.out.insert_str(at, &head);
                self.out.push_str(&kids);
                v
            }
            Expr::Not(x) => {
                let at = self.out.len();
                let inner = self.node(x, depth + 1, origins);
                let mut head = String::new();
                let _ = writeln!(head, "{}{}  not", "  ".repeat(depth), mark(!inner));
                self.out.insert_str(at, &head);
                !inner
            }
            Expr::MacroRef { name, .. } => {
                let Some((cond, morigins)) = self.src.macros.get(name) else {
                    self.line(depth, false, &format!("macro {name}: undefined"));
                    return false;
                };
                if !self.stack.insert(name.clone()) {
                    self.line(depth, false, &format!("macro {name}: refers to itself"));
                    return false;
                }
                let at = self.out.len();
                let v = match parse_condition(cond) {
                    Ok(ast) => self.node(&ast, depth + 1, morigins),
                    Err(err) => {
                        self.line(
                            depth + 1,
                            false,
                            &format!("does not parse: {}", err.message),
                        );
                        false
                    }
                };
                self.stack.remove(name);
                let mut head = String::new();
                let _ = writeln!(
                    head,
                    "{}{}  macro {name}{}",
                    "  ".repeat(depth),
                    mark(v),
                    origin_note(morigins, 0, true)
                );
                self.out.insert_str(at, &head);
                v
            }
            Expr::Check(c) => {
                let (v, text) = self.check(c);
                self.line(depth, v, &text);
                v
            }
        }
    }

    /// One comparison: its value, and its text with the field values it saw.
    fn check(&self, c: &Check) -> (bool, String) {
        let c = self.with_lists(c);
        let text = check_text(&c);
        let expr = Expr::Check(Box::new(c.clone()));
        let v = match crate::compile::compile(&expr) {
            Ok((f, _)) => f.eval(self.ev),
            Err(e) => {
                return (
                    false,
                    format!("{text}    (does not compile: {})", e.message),
                )
            }
        };
        let mut seen = vec![operand_value(&c.lhs, self.ev)];
        if let Rhs::Field(o) = &c.rhs {
            seen.push(operand_value(o, self.ev));
        }
        (v, format!("{text}    [{}]", seen.join(", ")))
    }

    /// Replaces list names among the right-hand values by the lists' items, as the loader's
    /// text substitution does before parsing.
    fn with_lists(&self, c: &Check) -> Check {
        let expand = |lits: &[Literal]| -> Vec<Literal> {
            let mut out = Vec::new();
            for l in lits {
                let name = String::from_utf8_lossy(&l.value);
                match self.src.lists.get(name.as_ref()).filter(|_| !l.quoted) {
                    Some(items) => out.extend(parse_items(items, l.pos)),
                    None => out.push(l.clone()),
                }
            }
            out
        };
        let mut c = c.clone();
        match &c.rhs {
            Rhs::List(l) => c.rhs = Rhs::List(expand(l)),
            Rhs::Value(v) if c.op.is_list_op() => {
                let items = expand(std::slice::from_ref(v));
                if items.len() != 1 || items[0] != *v {
                    c.rhs = Rhs::List(items);
                }
            }
            _ => {}
        }
        c
    }
}

/// List items as literals, parsed the way the substituted condition text would be.
fn parse_items(items: &[String], pos: usize) -> Vec<Literal> {
    if items.is_empty() {
        return Vec::new();
    }
    let text = format!(
        "evt.num in ({})",
        items
            .iter()
            .map(|i| crate::lists::quote_item(i))
            .collect::<Vec<_>>()
            .join(", ")
    );
    match parse_condition(&text) {
        Ok(Expr::Check(c)) => match c.rhs {
            Rhs::List(l) => l
                .into_iter()
                .map(|mut x| {
                    x.pos = pos;
                    x
                })
                .collect(),
            Rhs::Value(mut v) => {
                v.pos = pos;
                vec![v]
            }
            _ => Vec::new(),
        },
        _ => items
            .iter()
            .map(|i| Literal::new(i.as_bytes(), pos))
            .collect(),
    }
}

fn lit_text(l: &Literal) -> String {
    let s = String::from_utf8_lossy(&l.value);
    if s.is_empty() || s.contains([' ', ',', '(', ')', '"', '\'']) {
        format!("{:?}", s.as_ref())
    } else {
        s.into_owned()
    }
}

/// The comparison as written (lists cut after a few items).
fn check_text(c: &Check) -> String {
    let mut s = format!("{} {}", c.lhs, c.op);
    if let Some(m) = c.modifier {
        let _ = write!(s, " {}", m.as_str());
    }
    match &c.rhs {
        Rhs::None => {}
        Rhs::Value(v) => {
            let _ = write!(s, " {}", lit_text(v));
        }
        Rhs::List(l) => {
            const SHOWN: usize = 8;
            let mut items: Vec<String> = l.iter().take(SHOWN).map(lit_text).collect();
            if l.len() > SHOWN {
                items.push(format!("... {} more", l.len() - SHOWN));
            }
            let _ = write!(s, " ({})", items.join(", "));
        }
        Rhs::Field(o) => {
            let _ = write!(s, " {o}");
        }
    }
    s
}

/// `field=value` as the comparison saw it (`<NA>` when the field has no value).
fn operand_value(o: &Operand, ev: &dyn EventView) -> String {
    let v = crate::compile::operand(o)
        .ok()
        .and_then(|(x, _)| x.eval(ev).map(|v| value_text(&v)));
    format!("{o}={}", v.unwrap_or_else(|| "<NA>".into()))
}

fn value_text(v: &Value<'_>) -> String {
    match v {
        Value::Str(b) | Value::Buf(b) => {
            let s = String::from_utf8_lossy(b);
            let s = s.trim_end_matches('\0');
            if s.chars().count() > 120 {
                format!("{}...", s.chars().take(120).collect::<String>())
            } else {
                s.to_string()
            }
        }
        Value::U64(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Ip(i) => i.to_string(),
        Value::Net(a, p) => format!("{a}/{p}"),
        Value::List(l) => format!(
            "({})",
            l.iter().map(value_text).collect::<Vec<_>>().join(",")
        ),
    }
}
