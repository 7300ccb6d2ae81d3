//! The one place the loader calls the condition-language API (compile,
//! event types, output formats), so signature changes stay local.

use crate::ast::Expr;
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

/// §3.11 event types, by name. A co-finite set (`evt.type != x`) is indexed
/// as "all types": the filter itself still rejects the excluded types.
pub fn event_types(expr: &Expr) -> EventTypes {
    match crate::evttypes::evttypes(expr) {
        crate::evttypes::EvtTypes::Only(s) => EventTypes::Names(s),
        _ => EventTypes::All,
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
