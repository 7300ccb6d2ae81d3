//! The one place the loader calls the condition-language API (compile,
//! event types, output formats), so signature changes stay local.

use crate::ast::Expr;
use std::collections::BTreeSet;

pub use crate::eval::Filter;

/// A compiled condition and its compiler warnings (`LOAD_COMPILE_CONDITION`),
/// each with its byte position in the condition.
pub struct Compiled {
    pub filter: Filter,
    pub warnings: Vec<(String, usize)>,
}

pub use crate::compile::{CompileError, ErrorKind};
pub use crate::format::FormatError;

/// Compiles a condition; an error comes with the position of the failing check.
pub fn compile(expr: &Expr) -> Result<Compiled, CompileError> {
    crate::compile::compile(expr).map(|(filter, w)| Compiled {
        filter,
        warnings: w.into_iter().map(|w| (w.message, w.pos)).collect(),
    })
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

/// §3.11 event types, by name. A co-finite set (`evt.type != x`) is resolved
/// against every name of the event table.
pub fn event_types(expr: &Expr) -> EventTypes {
    match crate::evttypes::evttypes(expr) {
        crate::evttypes::EvtTypes::Only(s) => EventTypes::Names(s),
        t if t.is_all() => EventTypes::All,
        t => EventTypes::Names(t.resolve(saker_event::table::all_names())),
    }
}

/// Event ids for an event name (empty for unknown names).
pub fn ids_for_name(name: &str) -> &'static [u16] {
    saker_event::table::ids_for_name(name)
}

/// Makes the compiler reject unknown `evt.type` names and `evt.arg.X` names,
/// using the event table (Falco: "unknown event type X").
pub fn install_event_checks() {
    fn arg_known(name: &str) -> bool {
        use std::collections::HashSet;
        use std::sync::OnceLock;
        static NAMES: OnceLock<HashSet<&'static str>> = OnceLock::new();
        NAMES
            .get_or_init(|| {
                (0..=u16::MAX)
                    .map_while(saker_event::table::info)
                    .flat_map(|e| e.params.iter().map(|p| p.name))
                    .collect()
            })
            .contains(name)
    }
    crate::compile::set_event_table_checks(saker_event::table::is_known_name, arg_known);
}

/// A parsed output format.
pub type Format = crate::format::OutputFormat;

/// Parses an output format; an error carries libsinsp's message and Saker's detail.
pub fn parse_format(text: &str) -> Result<Format, FormatError> {
    Format::parse(text)
}

/// `HH:MM:SS.nnnnnnnnn` in local time (Falco's `%evt.time`).
pub fn time_local(ns: u64) -> String {
    use chrono::{Local, TimeZone};
    use std::cell::RefCell;
    // Alerts come in bursts within one second: the local-time conversion (a time zone
    // lookup) is done once per second, per thread.
    thread_local!(static LAST: RefCell<(i64, String)> = const { RefCell::new((i64::MIN, String::new())) });
    let secs = (ns / 1_000_000_000) as i64;
    let nanos = (ns % 1_000_000_000) as u32;
    LAST.with(|l| {
        let mut l = l.borrow_mut();
        if l.0 != secs {
            let Some(t) = Local.timestamp_opt(secs, 0).single() else {
                return String::from("<NA>");
            };
            *l = (secs, t.format("%H:%M:%S").to_string());
        }
        format!("{}.{nanos:09}", l.1)
    })
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
