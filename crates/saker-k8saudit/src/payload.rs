//! The payload grammar shared by every input (a file line, a webhook body, a CloudWatch
//! message): an `Event`, an `EventList`, or a JSON array of those (arrays may nest).

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Value as Json;

use crate::AuditEvent;

/// k8saudit's `maxEventSize` default.
pub const DEFAULT_MAX_EVENT_SIZE: usize = 262_144;

/// The message upstream logs for a payload that is no audit event (Falco's tests expect it).
pub const NOT_RECOGNIZED: &str = "data not recognized as a k8s audit event";

/// What one payload gave: its events, and one message per dropped event or payload.
#[derive(Debug, Default)]
pub struct Parsed {
    pub events: Vec<AuditEvent>,
    pub errors: Vec<String>,
    /// Why the whole payload was dropped, if it was.
    pub rejected: Option<Rejected>,
}

/// A payload dropped as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// Not JSON (or not UTF-8).
    Malformed,
    /// JSON, but no `Event`/`EventList` (or an array holding something else).
    Unrecognized,
}

#[derive(Deserialize)]
struct Head<'a> {
    #[serde(default)]
    kind: Option<Json>,
    #[serde(borrow, default)]
    items: Option<&'a RawValue>,
}

/// Parses one payload. A structural problem anywhere drops the whole payload (one error);
/// an event with a missing or bad `stageTimestamp`, or larger than `max_event_size` once
/// compacted, is dropped alone.
pub fn parse_payload(data: &[u8], max_event_size: usize) -> Parsed {
    let mut out = Parsed::default();
    let text = match std::str::from_utf8(data) {
        Ok(t) => t,
        Err(_) => {
            out.errors.push(format!("{NOT_RECOGNIZED}: invalid UTF-8"));
            out.rejected = Some(Rejected::Malformed);
            return out;
        }
    };
    let raw: &RawValue = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            out.errors.push(format!("{NOT_RECOGNIZED}: {e}"));
            out.rejected = Some(Rejected::Malformed);
            return out;
        }
    };
    let mut items = Vec::new();
    if let Err(e) = collect(raw, &mut items, 0) {
        out.errors.push(e);
        out.rejected = Some(Rejected::Unrecognized);
        return out;
    }
    for item in items {
        match event(item.get(), max_event_size) {
            Ok(ev) => out.events.push(ev),
            Err(e) => out.errors.push(e),
        }
    }
    out
}

/// Collects the event objects of a payload, in order.
fn collect<'a>(raw: &'a RawValue, out: &mut Vec<&'a RawValue>, depth: u32) -> Result<(), String> {
    // serde_json refuses nesting past 128 levels anyway; this keeps recursion bounded too.
    if depth > 64 {
        return Err(format!("{NOT_RECOGNIZED}: arrays nested too deeply"));
    }
    let t = raw.get().trim_start();
    if t.starts_with('[') {
        let elems: Vec<&RawValue> =
            serde_json::from_str(raw.get()).map_err(|e| format!("{NOT_RECOGNIZED}: {e}"))?;
        for e in elems {
            collect(e, out, depth + 1)?;
        }
        return Ok(());
    }
    if !t.starts_with('{') {
        return Err(NOT_RECOGNIZED.to_string());
    }
    let head: Head =
        serde_json::from_str(raw.get()).map_err(|e| format!("{NOT_RECOGNIZED}: {e}"))?;
    match head.kind.as_ref().and_then(Json::as_str) {
        Some("EventList") => {
            let items = head
                .items
                .filter(|i| i.get().trim_start().starts_with('['))
                .ok_or_else(|| format!("{NOT_RECOGNIZED}: EventList without items"))?;
            let elems: Vec<&RawValue> =
                serde_json::from_str(items.get()).map_err(|e| format!("{NOT_RECOGNIZED}: {e}"))?;
            // Items are not checked for `kind`, as upstream.
            out.extend(elems);
            Ok(())
        }
        Some("Event") => {
            out.push(raw);
            Ok(())
        }
        _ => Err(NOT_RECOGNIZED.to_string()),
    }
}

fn event(raw: &str, max: usize) -> Result<AuditEvent, String> {
    let payload = compact(raw);
    if payload.len() > max {
        return Err(format!(
            "event larger than maxEventSize: size={}",
            payload.len()
        ));
    }
    let json: Json =
        serde_json::from_str(&payload).map_err(|e| format!("{NOT_RECOGNIZED}: {e}"))?;
    let ts = json
        .get("stageTimestamp")
        .and_then(Json::as_str)
        .ok_or_else(|| "can't read stageTimestamp".to_string())?;
    let time_ns = parse_time(ts).ok_or_else(|| format!("invalid stageTimestamp format: {ts}"))?;
    Ok(AuditEvent::new(json, payload, time_ns))
}

/// RFC 3339 with optional fraction and a mandatory zone, as ns since the epoch.
pub fn parse_time(s: &str) -> Option<u64> {
    let t = chrono::DateTime::parse_from_rfc3339(s).ok()?;
    u64::try_from(t.timestamp_nanos_opt()?).ok()
}

/// Removes the whitespace between JSON tokens, keeping key order and number spelling.
pub fn compact(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut in_str = false;
    let mut esc = false;
    for c in raw.chars() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            if c == '"' {
                in_str = true;
            }
            out.push(c);
        }
    }
    out
}

/// Indents compact JSON by two spaces per level (`json.obj`), keeping key order.
pub fn pretty(compact: &str) -> String {
    let b = compact.as_bytes();
    let mut out = String::with_capacity(compact.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.extend(std::iter::repeat_n("  ", depth));
    };
    let mut i = 0;
    for c in compact.chars() {
        let n = c.len_utf8();
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else {
            match c {
                '"' => {
                    in_str = true;
                    out.push(c);
                }
                '{' | '[' => {
                    out.push(c);
                    let close = if c == '{' { b'}' } else { b']' };
                    if b.get(i + 1) != Some(&close) {
                        depth += 1;
                        newline(&mut out, depth);
                    }
                }
                '}' | ']' => {
                    let open = if c == '}' { b'{' } else { b'[' };
                    if i > 0 && b[i - 1] != open {
                        depth = depth.saturating_sub(1);
                        newline(&mut out, depth);
                    }
                    out.push(c);
                }
                ',' => {
                    out.push(c);
                    newline(&mut out, depth);
                }
                ':' => out.push_str(": "),
                _ => out.push(c),
            }
        }
        i += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EV: &str = r#"{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"a1","stage":"ResponseComplete","stageTimestamp":"2018-10-25T13:58:49.730588Z"}"#;

    #[test]
    fn forms_of_a_payload() {
        assert_eq!(
            parse_payload(EV.as_bytes(), DEFAULT_MAX_EVENT_SIZE)
                .events
                .len(),
            1
        );
        let list = format!(r#"{{"kind":"EventList","items":[{EV},{EV}]}}"#);
        assert_eq!(
            parse_payload(list.as_bytes(), DEFAULT_MAX_EVENT_SIZE)
                .events
                .len(),
            2
        );
        let nested = format!("[{EV},[{list}]]");
        assert_eq!(
            parse_payload(nested.as_bytes(), DEFAULT_MAX_EVENT_SIZE)
                .events
                .len(),
            3
        );
        // One bad element drops the whole array.
        let bad = format!(r#"[{EV},{{"kind":0}}]"#);
        let p = parse_payload(bad.as_bytes(), DEFAULT_MAX_EVENT_SIZE);
        assert_eq!(
            (p.events.len(), p.errors.as_slice()),
            (0, &[NOT_RECOGNIZED.to_string()][..])
        );
        let p = parse_payload(b"{\"kind\": 0}", DEFAULT_MAX_EVENT_SIZE);
        assert_eq!(p.errors, vec![NOT_RECOGNIZED.to_string()]);
        assert!(
            parse_payload(b"{not json", DEFAULT_MAX_EVENT_SIZE).errors[0]
                .starts_with(NOT_RECOGNIZED)
        );
    }

    #[test]
    fn events_without_time_or_too_large_are_dropped_alone() {
        let no_ts = r#"{"kind":"Event","auditID":"x"}"#;
        let p = parse_payload(format!("[{EV},{no_ts}]").as_bytes(), DEFAULT_MAX_EVENT_SIZE);
        assert_eq!(p.events.len(), 1);
        assert_eq!(p.errors, vec!["can't read stageTimestamp".to_string()]);
        let p = parse_payload(EV.as_bytes(), 20);
        assert_eq!(
            p.errors,
            vec![format!("event larger than maxEventSize: size={}", EV.len())]
        );
        let bad_ts = EV.replace("2018-10-25T13:58:49.730588Z", "2018-10-25 13:58");
        assert!(
            parse_payload(bad_ts.as_bytes(), DEFAULT_MAX_EVENT_SIZE).errors[0]
                .starts_with("invalid stageTimestamp")
        );
    }

    #[test]
    fn time_and_text_forms() {
        let p = parse_payload(EV.as_bytes(), DEFAULT_MAX_EVENT_SIZE);
        assert_eq!(p.events[0].time_ns, 1_540_475_929_730_588_000);
        assert_eq!(
            parse_time("2018-10-25T15:58:49+02:00"),
            Some(1_540_475_929_000_000_000)
        );
        assert_eq!(
            parse_time("2018-10-25T13:58:49"),
            None,
            "a zone is mandatory"
        );
        assert_eq!(
            compact("{ \"b\" : [1, 2.50] ,\n \"a\": \"x y\" }"),
            r#"{"b":[1,2.50],"a":"x y"}"#
        );
        assert_eq!(
            pretty(r#"{"b":[1,{}],"a":"x,:y","c":[]}"#),
            "{\n  \"b\": [\n    1,\n    {}\n  ],\n  \"a\": \"x,:y\",\n  \"c\": []\n}"
        );
    }
}
