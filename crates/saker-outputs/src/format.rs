//! Alert rendering: Falco's JSON document (keys in lexicographic order, as
//! Falco's JSON library emits them) and the text line.

use std::fmt::Write as _;

use saker_rules::{Alert, OutputValue};

/// Which optional keys the JSON document carries (falco.yaml `json_include_*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct JsonOptions {
    pub include_output: bool,
    pub include_message: bool,
    pub include_output_fields: bool,
    pub include_tags: bool,
}

impl Default for JsonOptions {
    fn default() -> Self {
        JsonOptions {
            include_output: true,
            include_message: false,
            include_output_fields: true,
            include_tags: true,
        }
    }
}

/// How every sink renders an alert.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Formatter {
    pub json: bool,
    pub opts: JsonOptions,
}

impl Formatter {
    /// The alert as one line, without the trailing newline.
    pub fn line(&self, a: &Alert) -> String {
        if self.json {
            to_json(a, &self.opts)
        } else {
            to_text(a)
        }
    }
}

/// `2024-05-01T12:34:56.123456789Z` from nanoseconds since the epoch (UTC).
pub fn rfc3339_nanos(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let nanos = ns % 1_000_000_000;
    let (y, mo, d, h, mi, s) = civil(secs);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{nanos:09}Z")
}

/// (year, month, day, hour, minute, second) in UTC; days-from-civil inverse
/// (Howard Hinnant's published algorithm).
pub(crate) fn civil(secs: u64) -> (i64, u32, u32, u32, u32, u32) {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (
        y,
        m,
        d,
        (rem / 3600) as u32,
        (rem % 3600 / 60) as u32,
        (rem % 60) as u32,
    )
}

fn push_json_str(out: &mut String, s: &str) {
    // serde_json's string encoder never fails on a &str.
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

fn push_value(out: &mut String, v: &OutputValue) {
    match v {
        OutputValue::Null => out.push_str("null"),
        OutputValue::Str(s) => push_json_str(out, s),
        OutputValue::U64(n) => {
            let _ = write!(out, "{n}");
        }
        OutputValue::I64(n) => {
            let _ = write!(out, "{n}");
        }
        OutputValue::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        OutputValue::List(items) => {
            out.push('[');
            for (i, s) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_json_str(out, s);
            }
            out.push(']');
        }
    }
}

/// The rule's message: the output without its `<time>: <Priority> ` prefix.
pub fn message(a: &Alert) -> &str {
    let marker = format!(": {} ", a.priority.as_str());
    match a.output.find(&marker) {
        Some(i) => &a.output[i + marker.len()..],
        None => &a.output,
    }
}

/// Falco's JSON alert: `hostname, [message], [output], [output_fields],
/// priority, rule, source, [tags], time`; output_fields sorted by key, tags
/// sorted and deduplicated; internal alerts (`source: internal`) carry no tags.
pub fn to_json(a: &Alert, o: &JsonOptions) -> String {
    let mut s = String::with_capacity(256 + a.output.len() * 2);
    s.push_str("{\"hostname\":");
    push_json_str(&mut s, &a.hostname);
    if o.include_message {
        s.push_str(",\"message\":");
        push_json_str(&mut s, message(a));
    }
    if o.include_output {
        s.push_str(",\"output\":");
        push_json_str(&mut s, &a.output);
    }
    if o.include_output_fields {
        s.push_str(",\"output_fields\":{");
        let mut fields: Vec<&(String, OutputValue)> = a.output_fields.iter().collect();
        fields.sort_by(|x, y| x.0.cmp(&y.0));
        fields.dedup_by(|x, y| x.0 == y.0);
        for (i, (k, v)) in fields.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            push_json_str(&mut s, k);
            s.push(':');
            push_value(&mut s, v);
        }
        s.push('}');
    }
    s.push_str(",\"priority\":");
    push_json_str(&mut s, a.priority.as_str());
    s.push_str(",\"rule\":");
    push_json_str(&mut s, &a.rule);
    s.push_str(",\"source\":");
    push_json_str(&mut s, &a.source);
    if o.include_tags && a.source != "internal" {
        let mut tags: Vec<&str> = a.tags.iter().map(String::as_str).collect();
        tags.sort_unstable();
        tags.dedup();
        s.push_str(",\"tags\":[");
        for (i, t) in tags.iter().enumerate() {
            if i > 0 {
                s.push(',');
            }
            push_json_str(&mut s, t);
        }
        s.push(']');
    }
    s.push_str(",\"time\":\"");
    s.push_str(&rfc3339_nanos(a.time_ns));
    s.push_str("\"}");
    s
}

/// The text line: the output through a JSON string encoder without the
/// surrounding quotes, so control characters cannot forge extra log lines.
pub fn to_text(a: &Alert) -> String {
    if a.source == "internal" {
        return internal_text(a);
    }
    let mut s = String::with_capacity(a.output.len() + 8);
    push_json_str(&mut s, &a.output);
    s[1..s.len() - 1].to_string()
}

/// Falco's text form of an internal message (drop alert, metrics snapshot): its `output` is
/// the bare message, so the line adds `<time>: <Priority> ` and `(k=v ...)` with the fields in
/// key order and their values as JSON.
fn internal_text(a: &Alert) -> String {
    let mut s = format!(
        "{}: {} ",
        saker_rules::format::evt_time_text(a.time_ns),
        a.priority.as_str()
    );
    let mut msg = String::new();
    push_json_str(&mut msg, &a.output);
    s.push_str(&msg[1..msg.len() - 1]);
    s.push_str(" (");
    let mut fields: Vec<&(String, OutputValue)> = a.output_fields.iter().collect();
    fields.sort_by(|x, y| x.0.cmp(&y.0));
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(k);
        s.push('=');
        push_value(&mut s, v);
    }
    s.push(')');
    s
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use saker_rules::Priority;

    pub(crate) fn alert() -> Alert {
        Alert {
            time_ns: 1_714_564_800_000_000_001,
            rule: "Terminal shell in container".into(),
            priority: Priority::Warning,
            source: "syscall".into(),
            hostname: "h1".into(),
            output: "12:00:00.000000001: Warning Shell spawned (user=root \"x\"\n)".into(),
            output_fields: vec![
                ("user.name".into(), OutputValue::Str("root".into())),
                ("proc.tty".into(), OutputValue::U64(34816)),
                ("container.id".into(), OutputValue::Str("host".into())),
                (
                    "evt.time".into(),
                    OutputValue::U64(1_714_564_800_000_000_001),
                ),
                ("fd.name".into(), OutputValue::Null),
                ("proc.is_exe_writable".into(), OutputValue::Bool(false)),
                ("proc.pid_neg".into(), OutputValue::I64(-3)),
            ],
            tags: vec![
                "shell".into(),
                "container".into(),
                "T1059".into(),
                "shell".into(),
            ],
        }
    }

    #[test]
    fn time_format() {
        assert_eq!(
            rfc3339_nanos(1_714_564_800_000_000_001),
            "2024-05-01T12:00:00.000000001Z"
        );
        assert_eq!(rfc3339_nanos(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_nanos(951_782_400_123_456_789),
            "2000-02-29T00:00:00.123456789Z"
        );
        assert_eq!(
            rfc3339_nanos(4_102_444_799_999_999_999),
            "2099-12-31T23:59:59.999999999Z"
        );
    }

    #[test]
    fn json_shape_and_order() {
        let j = to_json(&alert(), &JsonOptions::default());
        assert_eq!(
            j,
            r#"{"hostname":"h1","output":"12:00:00.000000001: Warning Shell spawned (user=root \"x\"\n)","output_fields":{"container.id":"host","evt.time":1714564800000000001,"fd.name":null,"proc.is_exe_writable":false,"proc.pid_neg":-3,"proc.tty":34816,"user.name":"root"},"priority":"Warning","rule":"Terminal shell in container","source":"syscall","tags":["T1059","container","shell"],"time":"2024-05-01T12:00:00.000000001Z"}"#
        );
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        assert_eq!(v["output_fields"]["proc.tty"], 34816);
    }

    #[test]
    fn json_switches() {
        let o = JsonOptions {
            include_output: false,
            include_message: true,
            include_output_fields: false,
            include_tags: false,
        };
        let j = to_json(&alert(), &o);
        assert_eq!(
            j,
            r#"{"hostname":"h1","message":"Shell spawned (user=root \"x\"\n)","priority":"Warning","rule":"Terminal shell in container","source":"syscall","time":"2024-05-01T12:00:00.000000001Z"}"#
        );
        let mut internal = alert();
        internal.source = "internal".into();
        assert!(!to_json(&internal, &JsonOptions::default()).contains("\"tags\""));
    }

    #[test]
    fn internal_alerts_in_falcos_text_and_json_shape() {
        let a = Alert {
            time_ns: 1_714_564_800_000_000_001,
            rule: "Falco internal: syscall event drop".into(),
            priority: Priority::Debug,
            source: "internal".into(),
            hostname: "h1".into(),
            output: "Falco internal: syscall event drop. 3 system calls dropped in last second."
                .into(),
            output_fields: vec![
                ("n_evts".into(), OutputValue::Str("10".into())),
                ("ebpf_enabled".into(), OutputValue::Str("1".into())),
            ],
            tags: vec![],
        };
        let t = to_text(&a);
        assert!(
            t.ends_with(": Debug Falco internal: syscall event drop. 3 system calls dropped in last second. (ebpf_enabled=\"1\" n_evts=\"10\")"),
            "{t}"
        );
        let j: serde_json::Value =
            serde_json::from_str(&to_json(&a, &JsonOptions::default())).unwrap();
        assert_eq!(
            j["output"],
            "Falco internal: syscall event drop. 3 system calls dropped in last second."
        );
        assert_eq!(j["source"], "internal");
        assert_eq!(j["output_fields"]["n_evts"], "10");
        assert!(j.get("tags").is_none());
    }

    #[test]
    fn text_line_escapes_controls() {
        assert_eq!(
            to_text(&alert()),
            r#"12:00:00.000000001: Warning Shell spawned (user=root \"x\"\n)"#
        );
        let f = Formatter {
            json: false,
            opts: JsonOptions::default(),
        };
        assert!(!f.line(&alert()).contains('\n'));
    }
}
