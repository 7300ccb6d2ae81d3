//! Output formats and end-to-end language checks through the public API.

use saker_fields::Value;
use saker_rules::eval::MapView;
use saker_rules::format::{iso8601_utc, OutputFormat};
use saker_rules::OutputValue;

fn s(v: &str) -> Value<'static> {
    Value::string(v.to_string())
}

fn view() -> MapView {
    MapView::new()
        .with("proc.name", s("bash"))
        .with("proc.pid", Value::I64(42))
        .with("user.uid", Value::U64(0))
        .with("evt.time", Value::U64(1_714_564_800_000_000_001))
        .with("evt.time.iso8601", Value::U64(1_714_564_800_000_000_001))
        .with("proc.aname", Value::List(vec![s("sshd"), s("systemd")]))
        .with("proc.aname[2]", s("systemd"))
        .with("fd.types", Value::List(vec![s("file"), s("ipv4")]))
        .with("fd.sip", Value::Ip("10.0.0.1".parse().unwrap()))
        .with(
            "fd.ip",
            Value::List(vec![Value::Ip("10.0.0.1".parse().unwrap())]),
        )
        .with("evt.is_open_read", Value::Bool(true))
        .with("evt.arg[flags]", s("O_RDONLY"))
        .with("evt.buffer", Value::Buf(b"ab\x00\ncd".to_vec().into()))
}

fn render(fmt: &str) -> String {
    OutputFormat::parse(fmt)
        .unwrap_or_else(|e| panic!("{fmt}: {e}"))
        .render_string(&view())
}

fn ferr(fmt: &str) -> String {
    OutputFormat::parse(fmt).expect_err(fmt).message
}

#[test]
fn substitution_and_missing_values() {
    assert_eq!(
        render("shell %proc.name (pid=%proc.pid uid=%user.uid)"),
        "shell bash (pid=42 uid=0)"
    );
    assert_eq!(render("user=%user.name"), "user=<NA>");
    assert_eq!(render("%proc.name)"), "bash)");
    // Longest valid prefix: `proc.namex` is unknown, `proc.name` is.
    assert_eq!(render("%proc.namex"), "bashx");
    assert_eq!(render("%proc.name[1]"), "bash[1]");
    assert_eq!(render("*%proc.name"), "bash");
    assert_eq!(render("no fields"), "no fields");
    assert_eq!(render("%evt.arg.flags|%proc.aname[2]"), "O_RDONLY|systemd");
}

#[test]
fn value_rendering() {
    // Tests run with TZ=UTC (set below) so local time is predictable.
    std::env::set_var("TZ", "UTC");
    assert_eq!(render("%evt.time"), "12:00:00.000000001");
    assert_eq!(
        render("%evt.time.iso8601"),
        "2024-05-01T12:00:00.000000001+0000"
    );
    assert_eq!(render("%proc.aname"), "sshd systemd");
    assert_eq!(render("%fd.types"), "(file,ipv4)");
    assert_eq!(render("%fd.sip %fd.ip"), "10.0.0.1 <NA>");
    assert_eq!(render("%evt.is_open_read"), "true");
    assert_eq!(render("%evt.buffer"), "ab..cd");
    assert_eq!(
        iso8601_utc(1_714_564_800_000_000_001),
        "2024-05-01T12:00:00.000000001Z"
    );
}

#[test]
fn widths_and_transformers() {
    assert_eq!(render("[%6proc.name]"), "[bash  ]");
    assert_eq!(render("[%2proc.name]"), "[ba]");
    assert_eq!(render("%toupper(proc.name)!"), "BASH!");
}

#[test]
fn format_errors() {
    assert_eq!(
        ferr("abc %"),
        "invalid formatting syntax: formatting cannot end with a %"
    );
    assert_eq!(
        ferr("width %12"),
        "invalid formatting syntax: formatting cannot end with a number"
    );
    // libsinsp reports every unknown token with the failure of its last,
    // one-character candidate; the detail says what was wrong.
    let e = OutputFormat::parse("50% off").unwrap_err();
    assert_eq!(e.message, "unknown filter: unexpected token after '");
    assert_eq!(e.detail.as_deref(), Some("'%' is not followed by a field"));
    let e = OutputFormat::parse("%foo.bar").unwrap_err();
    assert_eq!(e.message, "unknown filter: unexpected token after '");
    assert_eq!(
        e.detail.as_deref(),
        Some("filter_check called with nonexistent field foo.bar")
    );
    let e = OutputFormat::parse("%tolower(proc.aname)").unwrap_err();
    assert_eq!(e.message, "unknown filter: unexpected token after '");
    assert!(e
        .detail
        .unwrap()
        .starts_with("field 'proc.aname' does not support"));
}

#[test]
fn output_fields_are_typed_and_ordered() {
    let f = OutputFormat::parse("%proc.name %proc.pid %user.name %evt.time %toupper(proc.name) %proc.pid %evt.is_open_read %fd.sip")
        .unwrap();
    let keys: Vec<&str> = f.fields().iter().map(|x| x.key.as_str()).collect();
    assert_eq!(
        keys,
        [
            "proc.name",
            "proc.pid",
            "user.name",
            "evt.time",
            "evt.is_open_read",
            "fd.sip"
        ]
    );
    let vals = f.render_fields(&view());
    assert_eq!(vals[0].1, OutputValue::Str("bash".into()));
    assert_eq!(vals[1].1, OutputValue::I64(42));
    assert_eq!(vals[2].1, OutputValue::Null);
    assert_eq!(vals[3].1, OutputValue::U64(1_714_564_800_000_000_001));
    assert_eq!(vals[4].1, OutputValue::Bool(true));
    assert_eq!(vals[5].1, OutputValue::Str("10.0.0.1".into()));
}
