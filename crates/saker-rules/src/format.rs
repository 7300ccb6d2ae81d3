//! Rule output formats (§4.1–4.4): `%field` substitution, rendering and the
//! typed `output_fields` map.

use crate::ast::{Operand, TArg};
use crate::compile::transform::Extract;
use crate::compile::{field_exists, operand, resolve_field};
use crate::parse::parse_operand_prefix;
use crate::OutputValue;
use saker_fields::{flags, EventView, FieldRef, FieldType, Value};

/// An output format error (`LOAD_ERR_COMPILE_OUTPUT`). Displayed with its
/// detail, when there is one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}{}", detail.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
pub struct FormatError {
    /// libsinsp's message.
    pub message: String,
    pub pos: usize,
    /// What exactly is wrong, when libsinsp's message does not say it.
    pub detail: Option<String>,
    pub kind: crate::compile::ErrorKind,
}

/// libsinsp's message for any token that is not a field: it shrinks the
/// candidate down to one character and reports that last failure.
pub const UNKNOWN_TOKEN: &str = "unknown filter: unexpected token after '";

/// How a value is turned into text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    /// `evt.time`: local `HH:MM:SS.nnnnnnnnn`.
    Time,
    /// `evt.time.s`: `HH:MM:SS`.
    TimeS,
    /// `evt.time.iso8601`: `YYYY-MM-DDTHH:MM:SS.nnnnnnnnn+0000`.
    Iso8601,
    /// `evt.datetime`: `YYYY-MM-DD HH:MM:SS.nnnnnnnnn`.
    DateTime,
    DateTimeS,
    /// Filter-only fields comparing both connection sides render as missing.
    Na,
    /// Ancestor fields without index: names joined by spaces.
    SpaceJoined,
    /// List fields: `(a,b,c)`.
    Parenthesised,
}

#[derive(Debug)]
enum Part {
    Text(String),
    Value {
        x: Extract,
        width: Option<usize>,
        style: Style,
    },
}

/// A field listed in `output_fields`: its key as written and its reference.
#[derive(Debug, Clone, PartialEq)]
pub struct OutputField {
    pub key: String,
    pub source: FieldSource,
}

/// Where an `output_fields` value comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum FieldSource {
    Field(FieldRef),
    /// A `static.<name>` field: its configured value.
    Static(std::sync::Arc<[u8]>),
}

/// A parsed output format.
#[derive(Debug)]
pub struct OutputFormat {
    parts: Vec<Part>,
    fields: Vec<OutputField>,
}

fn style_of(f: &FieldRef) -> Style {
    let info = f.info();
    let no_arg = f.arg == saker_fields::FieldArg::None;
    match info.name {
        "evt.time" | "evt.outputtime" => Style::Time,
        "evt.time.s" => Style::TimeS,
        "evt.time.iso8601" => Style::Iso8601,
        "evt.datetime" => Style::DateTime,
        "evt.datetime.s" => Style::DateTimeS,
        _ if info.has(flags::ANY_SIDE) => Style::Na,
        _ if info.has(flags::ANY_ANCESTOR) && no_arg => Style::SpaceJoined,
        _ if crate::compile::is_list(f) => Style::Parenthesised,
        _ => Style::Plain,
    }
}

/// Plain fields inside a transformer expression (listed in `output_fields`).
fn inner_fields(a: &TArg, out: &mut Vec<crate::ast::FieldExpr>) {
    match a {
        TArg::Field(f) => out.push(f.clone()),
        TArg::Transform(t) => t.args.iter().for_each(|x| inner_fields(x, out)),
        TArg::List(items, _) => items.iter().for_each(|x| inner_fields(x, out)),
        TArg::Value(_) => {}
    }
}

impl OutputFormat {
    /// Parses a format. A leading `*` (print `<NA>` for missing values) is
    /// consumed: Saker, like Falco for rule outputs, always prints `<NA>`.
    pub fn parse(text: &str) -> Result<OutputFormat, FormatError> {
        let body = text.strip_prefix('*').unwrap_or(text);
        let base = text.len() - body.len();
        let b = body.as_bytes();
        let mut parts = Vec::new();
        let mut fields: Vec<OutputField> = Vec::new();
        let mut lit = String::new();
        let mut i = 0;
        while i < b.len() {
            let Some(off) = body[i..].find('%') else {
                lit.push_str(&body[i..]);
                break;
            };
            lit.push_str(&body[i..i + off]);
            let pct = i + off;
            i = pct + 1;
            let err = |message: String| FormatError {
                message,
                pos: base + pct,
                detail: None,
                kind: crate::compile::ErrorKind::Other,
            };
            let unknown = |detail: String| FormatError {
                message: UNKNOWN_TOKEN.into(),
                pos: base + pct,
                detail: Some(detail),
                kind: crate::compile::ErrorKind::UnknownToken,
            };
            if i >= b.len() {
                return Err(err(
                    "invalid formatting syntax: formatting cannot end with a %".into(),
                ));
            }
            let digits = b[i..].iter().take_while(|c| c.is_ascii_digit()).count();
            if digits > 0 && i + digits >= b.len() {
                return Err(err(
                    "invalid formatting syntax: formatting cannot end with a number".into(),
                ));
            }
            let width = if digits > 0 {
                body[i..i + digits].parse().ok()
            } else {
                None
            };
            i += digits;
            let (op, used) = Self::longest_field(&body[i..]).map_err(unknown)?;
            i += used;
            let (x, _) = operand(&op).map_err(|e| unknown(e.message))?;
            let mut listed = Vec::new();
            let style = match &op {
                Operand::Field(f) => {
                    listed.push(f.clone());
                    x.field().map_or(Style::Plain, style_of)
                }
                Operand::Transform(t) => {
                    t.args.iter().for_each(|a| inner_fields(a, &mut listed));
                    Style::Plain
                }
            };
            for f in listed {
                let key = f.text();
                if !fields.iter().any(|o| o.key == key) {
                    if let Ok((Extract::Static(_, v), _)) = operand(&Operand::Field(f.clone())) {
                        fields.push(OutputField {
                            key,
                            source: FieldSource::Static(v),
                        });
                    } else if let Ok(field) = resolve_field(&f) {
                        fields.push(OutputField {
                            key,
                            source: FieldSource::Field(field),
                        });
                    }
                }
            }
            if !lit.is_empty() {
                parts.push(Part::Text(std::mem::take(&mut lit)));
            }
            parts.push(Part::Value { x, width, style });
        }
        if !lit.is_empty() {
            parts.push(Part::Text(lit));
        }
        Ok(OutputFormat { parts, fields })
    }

    /// The longest prefix of `rest` that is a known field (or a transformer call).
    fn longest_field(rest: &str) -> Result<(Operand, usize), String> {
        let (op, used) = match parse_operand_prefix(rest) {
            Ok(x) => x,
            Err(_) => {
                let tok: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                if tok.is_empty() {
                    return Err("'%' is not followed by a field".into());
                }
                return Err(format!("'{tok}' is not a field"));
            }
        };
        let Operand::Field(f) = op else {
            return Ok((op, used));
        };
        if field_exists(&f).is_ok() {
            return Ok((Operand::Field(f), used));
        }
        // Shrink one character at a time; `[arg]` only belongs to the full name.
        let mut n = f.name.len();
        while n > 0 {
            let cand = crate::ast::FieldExpr {
                name: f.name[..n].to_string(),
                arg: None,
                pos: 0,
            };
            if field_exists(&cand).is_ok() {
                return Ok((Operand::Field(cand), n));
            }
            n -= 1;
        }
        Err(format!(
            "filter_check called with nonexistent field {}",
            f.text()
        ))
    }

    /// Fields for `output_fields`, in order of first appearance, without
    /// transformer tokens (their inner plain fields are listed instead).
    pub fn fields(&self) -> &[OutputField] {
        &self.fields
    }

    /// Renders the format for an event, appending to `out`.
    pub fn render(&self, ev: &dyn EventView, out: &mut String) {
        for p in &self.parts {
            match p {
                Part::Text(t) => out.push_str(t),
                Part::Value { x, width, style } => {
                    let v = if *style == Style::Na {
                        None
                    } else {
                        x.eval(ev)
                    };
                    let s = render_value(v.as_ref(), *style);
                    match width {
                        Some(w) => {
                            let mut n = 0;
                            for ch in s.chars().take(*w) {
                                out.push(ch);
                                n += 1;
                            }
                            out.extend(std::iter::repeat_n(' ', w.saturating_sub(n)));
                        }
                        None => out.push_str(&s),
                    }
                }
            }
        }
    }

    /// Renders to a new string.
    pub fn render_string(&self, ev: &dyn EventView) -> String {
        let mut s = String::new();
        self.render(ev, &mut s);
        s
    }

    /// Typed values for the JSON `output_fields` map.
    pub fn render_fields(&self, ev: &dyn EventView) -> Vec<(String, OutputValue)> {
        self.fields
            .iter()
            .map(|f| {
                let v = match &f.source {
                    FieldSource::Field(field) => typed_value(field, ev.extract(field).as_ref()),
                    FieldSource::Static(v) => {
                        OutputValue::Str(String::from_utf8_lossy(v).into_owned())
                    }
                };
                (f.key.clone(), v)
            })
            .collect()
    }
}

/// The JSON-typed value of one field: integers as numbers, missing as null,
/// `evt.time*` as integer nanoseconds, everything else as rendered text.
pub fn typed_value(f: &FieldRef, v: Option<&Value>) -> OutputValue {
    let style = style_of(f);
    match (v, style) {
        (None, _) | (_, Style::Na) => OutputValue::Null,
        (Some(Value::U64(n)), _) => OutputValue::U64(*n),
        (Some(Value::I64(n)), _) => OutputValue::I64(*n),
        (Some(Value::Bool(b)), _) => OutputValue::Bool(*b),
        (Some(Value::List(items)), Style::Parenthesised) => OutputValue::List(
            items
                .iter()
                .map(|x| render_value(Some(x), Style::Plain))
                .collect(),
        ),
        (Some(v), st) => OutputValue::Str(render_value(Some(v), st)),
    }
}

fn render_value(v: Option<&Value>, style: Style) -> String {
    let Some(v) = v else {
        return "<NA>".into();
    };
    match (v, style) {
        (Value::U64(ns), Style::Time) => time_text(*ns, true, true),
        (Value::U64(ns), Style::TimeS) => time_text(*ns, true, false),
        (Value::U64(ns), Style::Iso8601) => {
            format!("{}T{}+0000", date_text(*ns), time_text(*ns, false, true))
        }
        (Value::U64(ns), Style::DateTime) => {
            format!("{} {}", local_date_text(*ns), time_text(*ns, true, true))
        }
        (Value::U64(ns), Style::DateTimeS) => {
            format!("{} {}", local_date_text(*ns), time_text(*ns, true, false))
        }
        (Value::List(items), Style::Parenthesised) => {
            let parts: Vec<String> = items
                .iter()
                .map(|x| render_value(Some(x), Style::Plain))
                .collect();
            format!("({})", parts.join(","))
        }
        (Value::List(items), _) => {
            let parts: Vec<String> = items
                .iter()
                .map(|x| render_value(Some(x), Style::Plain))
                .collect();
            parts.join(" ")
        }
        (Value::Str(s), _) => String::from_utf8_lossy(s).into_owned(),
        (Value::Buf(b), _) => b
            .iter()
            .map(|&c| {
                if c.is_ascii_graphic() || c == b' ' {
                    c as char
                } else {
                    '.'
                }
            })
            .collect(),
        (Value::U64(n), _) => n.to_string(),
        (Value::I64(n), _) => n.to_string(),
        (Value::Bool(b), _) => b.to_string(),
        (Value::Ip(ip), _) => ip.to_string(),
        (Value::Net(a, p), _) => format!("{a}/{p}"),
    }
}

/// `HH:MM:SS.nnnnnnnnn` in local time, as `%evt.time` and Falco's internal messages print it.
pub fn evt_time_text(ns: u64) -> String {
    time_text(ns, true, true)
}

/// `HH:MM:SS[.nnnnnnnnn]` of a nanosecond epoch timestamp, in local time or UTC.
fn time_text(ns: u64, local: bool, with_ns: bool) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let offset = if local { local_offset_secs(secs) } else { 0 };
    let day_s = (secs + offset).rem_euclid(86_400);
    let (h, m, s) = (day_s / 3600, (day_s / 60) % 60, day_s % 60);
    if with_ns {
        format!("{h:02}:{m:02}:{s:02}.{:09}", ns % 1_000_000_000)
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// The local UTC offset at `secs` (Falco prints `evt.time` in local time).
fn local_offset_secs(secs: i64) -> i64 {
    use chrono::{Local, Offset, TimeZone};
    match Local.timestamp_opt(secs, 0) {
        chrono::LocalResult::Single(t) | chrono::LocalResult::Ambiguous(t, _) => {
            i64::from(t.offset().fix().local_minus_utc())
        }
        chrono::LocalResult::None => 0,
    }
}

/// `YYYY-MM-DD` of a nanosecond epoch timestamp, local time.
fn local_date_text(ns: u64) -> String {
    let secs = (ns / 1_000_000_000) as i64;
    let shifted = secs + local_offset_secs(secs);
    date_text((shifted.max(0) as u64) * 1_000_000_000)
}

/// `YYYY-MM-DD` (UTC) of a nanosecond epoch timestamp.
pub fn date_text(ns: u64) -> String {
    let days = (ns / 1_000_000_000 / 86_400) as i64;
    // Civil-from-days (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`: the JSON `time` key.
pub fn iso8601_utc(ns: u64) -> String {
    format!("{}T{}Z", date_text(ns), time_text(ns, false, true))
}

/// True if the type renders as a JSON number in `output_fields`.
pub fn is_json_number(ty: FieldType) -> bool {
    ty.is_numeric()
}
