//! The one place the loader calls the condition-language API (compile,
//! event types, output formats), so signature changes stay local.

use crate::ast::{Expr, Op, Operand, Rhs};
use crate::OutputValue;
use saker_fields::EventView;
use std::collections::BTreeSet;

pub use crate::eval::Filter;

/// A compiled condition and its compiler warnings (`LOAD_COMPILE_CONDITION`).
pub struct Compiled {
    pub filter: Filter,
    pub warnings: Vec<String>,
}

pub fn compile(expr: &Expr) -> Result<Compiled, String> {
    crate::compile::compile(expr)
        .map(|(filter, w)| Compiled {
            filter,
            warnings: w.into_iter().map(|w| w.message).collect(),
        })
        .map_err(|e| e.message)
}

/// The event types a condition can match (§3.11).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTypes {
    All,
    Names(BTreeSet<String>),
}

impl EventTypes {
    /// More than 100 types: Falco's `LOAD_NO_EVTTYPE` threshold.
    pub fn too_many(&self) -> bool {
        match self {
            EventTypes::All => true,
            EventTypes::Names(n) => n.len() > 100,
        }
    }
}

/// Interim §3.11 computation until `crate::evttypes` lands: sets of names,
/// `None` = all types; negation pushed to the leaves.
pub fn event_types(expr: &Expr) -> EventTypes {
    match types(expr, false) {
        Some(n) => EventTypes::Names(n),
        None => EventTypes::All,
    }
}

type Set = Option<BTreeSet<String>>;

fn inter(a: Set, b: Set) -> Set {
    match (a, b) {
        (None, x) | (x, None) => x,
        (Some(a), Some(b)) => Some(a.intersection(&b).cloned().collect()),
    }
}

fn union(a: Set, b: Set) -> Set {
    match (a, b) {
        (None, _) | (_, None) => None,
        (Some(mut a), Some(b)) => {
            a.extend(b);
            Some(a)
        }
    }
}

fn types(e: &Expr, neg: bool) -> Set {
    match e {
        Expr::And(c) | Expr::Or(c) => {
            let is_and = matches!(e, Expr::And(_)) != neg;
            let mut it = c.iter().map(|x| types(x, neg));
            let first = it.next().unwrap_or(None);
            it.fold(
                first,
                |acc, s| if is_and { inter(acc, s) } else { union(acc, s) },
            )
        }
        Expr::Not(x) => types(x, !neg),
        Expr::MacroRef { .. } => None,
        Expr::Check(c) => {
            let Operand::Field(f) = &c.lhs else {
                return None;
            };
            if f.arg.is_some() {
                return None;
            }
            let vals: Vec<String> = match &c.rhs {
                Rhs::Value(v) => vec![v.text().into_owned()],
                Rhs::List(l) => l.iter().map(|v| v.text().into_owned()).collect(),
                _ => return None,
            };
            if f.name == "evt.num" {
                let zero = vals.iter().all(|v| v.trim() == "0");
                let empty = match c.op {
                    Op::Eq | Op::EqEq | Op::In => zero,
                    Op::Lt => vals.iter().all(|v| v.trim() == "1"),
                    Op::Le => zero,
                    _ => false,
                };
                return if empty && !neg {
                    Some(BTreeSet::new())
                } else {
                    None
                };
            }
            if f.name != "evt.type" && f.name != "syscall.type" {
                return None;
            }
            let names: BTreeSet<String> = vals.into_iter().collect();
            match (c.op, neg) {
                (Op::Eq | Op::EqEq | Op::In, false) | (Op::Ne, true) => Some(names),
                // A complement over an unknown universe: treat as all types.
                _ => None,
            }
        }
    }
}

/// A parsed output format. Interim until `crate::format` lands: the text is kept as is.
#[derive(Debug)]
pub struct Format {
    text: String,
}

pub fn parse_format(text: &str) -> Result<Format, String> {
    if text.ends_with('%') {
        return Err("invalid formatting syntax: formatting cannot end with a %".into());
    }
    Ok(Format {
        text: text.to_string(),
    })
}

impl Format {
    pub fn render(&self, _ev: &dyn EventView) -> String {
        self.text.clone()
    }
    pub fn fields(&self, _ev: &dyn EventView) -> Vec<(String, OutputValue)> {
        Vec::new()
    }
}

/// `HH:MM:SS.nnnnnnnnn` in local time (Falco's `%evt.time`).
pub fn time_local(ns: u64) -> String {
    use chrono::{Local, TimeZone};
    let secs = (ns / 1_000_000_000) as i64;
    let nanos = (ns % 1_000_000_000) as u32;
    match Local.timestamp_opt(secs, nanos).single() {
        Some(t) => format!("{}.{:09}", t.format("%H:%M:%S"), nanos),
        None => String::from("<NA>"),
    }
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+0000` (Falco's `%evt.time.iso8601`, UTC).
pub fn time_iso8601(ns: u64) -> String {
    use chrono::{TimeZone, Utc};
    let secs = (ns / 1_000_000_000) as i64;
    let nanos = (ns % 1_000_000_000) as u32;
    match Utc.timestamp_opt(secs, nanos).single() {
        Some(t) => format!("{}.{:09}+0000", t.format("%Y-%m-%dT%H:%M:%S"), nanos),
        None => String::from("<NA>"),
    }
}
