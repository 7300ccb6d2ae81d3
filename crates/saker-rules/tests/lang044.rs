//! The rules-language changes of Falco 0.42–0.44: the keys `override` can
//! replace, `oneof`/`anyof`/`allof` modifiers (conditions and exception
//! comps), `static.*` fields, `evt.dir` deprecation and unknown-key warnings.

mod common;
use common::*;
use saker_rules::engine::{Engine, LoadOptions};
use saker_rules::errors::{ErrorCode, WarningCode};
use saker_rules::ruleset::AlertOptions;
use saker_rules::{OutputValue, Priority};

const BASE: &str = "- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: WARNING\n  tags: [a]\n";

#[test]
fn override_replaces_every_0_44_target() {
    let text = format!(
        "{BASE}- rule: r\n  capture: true\n  capture_duration: 3000\n  tags: [b, c]\n  enabled: false\n  priority: ERROR\n  warn_evttypes: false\n  skip-if-unknown-filter: true\n  override:\n    capture: replace\n    capture_duration: replace\n    tags: replace\n    enabled: replace\n    priority: replace\n    warn_evttypes: replace\n    skip-if-unknown-filter: replace\n"
    );
    let (eng, res) = load_ok(&text);
    assert!(res.warnings.is_empty(), "{}", res.to_text());
    assert_eq!(res.schema_valid(), Some(true));
    let r = eng.collector().rule("r").unwrap();
    assert!(r.capture);
    assert_eq!(r.capture_duration, 3000);
    assert_eq!(r.tags.iter().collect::<Vec<_>>(), ["b", "c"]);
    assert!(!r.enabled);
    assert_eq!(r.priority, Priority::Error);
    assert!(!r.warn_evttypes);
    assert!(r.skip_if_unknown_filter);
    let rs = eng.ruleset();
    let info = rs.info(rs.find("r").unwrap());
    assert!(info.capture);
    assert_eq!(info.capture_duration, 3000);
    assert!(!info.enabled);
}

#[test]
fn replaced_flags_change_what_the_compiler_does() {
    // warn_evttypes: false silences LOAD_NO_EVTTYPE; skip-if-unknown-filter:
    // true turns the unknown field into LOAD_UNKNOWN_FILTER.
    let text = "- rule: broad\n  desc: d\n  condition: proc.name = sh\n  output: o\n  priority: INFO\n- rule: broad\n  warn_evttypes: false\n  override:\n    warn_evttypes: replace\n- rule: typo\n  desc: d\n  condition: evt.type = open and proc.nmae = sh\n  output: o\n  priority: INFO\n- rule: typo\n  skip-if-unknown-filter: true\n  override:\n    skip-if-unknown-filter: replace\n";
    let (eng, res) = load_ok(text);
    let codes: Vec<&str> = res.warnings.iter().map(|w| w.code.code()).collect();
    assert_eq!(codes, ["LOAD_UNKNOWN_FILTER"], "{}", res.to_text());
    assert_eq!(eng.ruleset().counts().0, 1);
    // Tags can be appended too; the set stays sorted.
    let (eng, _) = load_ok(&format!(
        "{BASE}- rule: r\n  tags: [0first, a]\n  override:\n    tags: append\n"
    ));
    let tags: Vec<&String> = eng.collector().rule("r").unwrap().tags.iter().collect();
    assert_eq!(tags, ["0first", "a"]);
    // Capture keys cannot be appended to.
    let (code, m) = load_err(&format!(
        "{BASE}- rule: r\n  capture: true\n  override:\n    capture: append\n"
    ));
    assert_eq!(
        (code, m.as_str()),
        (
            ErrorCode::YamlValidate,
            "Key 'capture' cannot be appended to, use 'replace' instead"
        )
    );
}

/// (operator, field value, list) → (oneof, anyof, allof)
const MODIFIER_CASES: &[(&str, &str, &str, [bool; 3])] = &[
    ("=", "bash", "(bash, zsh)", [true, true, false]),
    ("==", "bash", "(bash, bash)", [false, true, true]),
    ("!=", "bash", "(zsh, sh)", [false, true, true]),
    ("contains", "bash", "(as, sh)", [false, true, true]),
    ("icontains", "bash", "(AS, xx)", [true, true, false]),
    ("startswith", "bash", "(ba, zs)", [true, true, false]),
    ("endswith", "bash", "(sh, zz)", [true, true, false]),
    ("glob", "bash", "(b*, *h)", [false, true, true]),
    ("iglob", "bash", "(B*, x*)", [true, true, false]),
    ("regex", "bash", "('b.*', 'z.*')", [true, true, false]),
    ("bcontains", "bash", "(6173, 7a)", [true, true, false]),
    ("bstartswith", "bash", "(6261, 62)", [false, true, true]),
];

#[test]
fn modifiers_work_for_every_string_operator() {
    for (op, value, list, want) in MODIFIER_CASES {
        for (m, expect) in ["oneof", "anyof", "allof"].iter().zip(want) {
            let field = if op.starts_with('b') {
                "evt.buffer"
            } else {
                "proc.name"
            };
            let text = format!("- rule: r\n  desc: d\n  condition: evt.type = open and {field} {op} {m} {list}\n  output: o\n  priority: INFO\n");
            let (eng, res) = load(&text);
            assert!(res.successful(), "{op} {m}: {}", res.to_text());
            let mut ev = Ev::new("open", 3).s("proc.name", value);
            ev.fields.insert(
                "evt.buffer".into(),
                saker_fields::Value::Buf(value.as_bytes().to_vec().into()),
            );
            assert_eq!(
                !matching(&eng, &ev).is_empty(),
                *expect,
                "{field} {op} {m} {list} on {value}"
            );
        }
    }
}

#[test]
fn modifiers_are_refused_for_other_operators() {
    for cond in [
        "evt.type = open and proc.pid > oneof (1, 2)",
        "evt.type = open and proc.name in oneof (a, b)",
        "evt.type = open and proc.name pmatch anyof (/a)",
    ] {
        let text =
            format!("- rule: r\n  desc: d\n  condition: {cond}\n  output: o\n  priority: INFO\n");
        let (code, _) = load_err(&text);
        assert_eq!(code, ErrorCode::CompileCondition, "{cond}");
    }
}

#[test]
fn exception_comps_take_modifiers() {
    let text = "- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: INFO\n  exceptions:\n    - name: shells\n      fields: proc.name\n      comps: startswith oneof\n      values: [ba, zs]\n    - name: pairs\n      fields: [proc.name, fd.name]\n      comps: [=, endswith anyof]\n      values:\n        - [cat, [.log, .txt]]\n";
    let (eng, res) = load_ok(text);
    assert!(res.warnings.is_empty(), "{}", res.to_text());
    let rs = eng.ruleset();
    assert_eq!(
        rs.info(0).condition,
        "(evt.type = open) and not (proc.name startswith oneof (ba, zs)) and not (( proc.name = cat and  fd.name endswith anyof (.log, .txt)))"
    );
    let ev = |p: &str, f: &str| Ev::new("open", 3).s("proc.name", p).s("fd.name", f);
    assert!(matching(&eng, &ev("bash", "/x")).is_empty());
    assert!(matching(&eng, &ev("zsh", "/x")).is_empty());
    assert!(matching(&eng, &ev("cat", "/var/a.log")).is_empty());
    assert_eq!(matching(&eng, &ev("cat", "/etc/passwd")), ["r"]);
    assert_eq!(matching(&eng, &ev("sh", "/x")), ["r"]);
    // A modifier on a comparison that does not take one is refused.
    let bad = text.replace("startswith oneof", "in oneof");
    let (code, m) = load_err(&bad);
    assert_eq!((code, m.as_str()), (ErrorCode::Validate, "When fields is a single value, comps must be one of (in, pmatch, intersects) or a modifier operator (e.g. startswith oneof)"));
}

#[test]
fn static_fields_work_in_conditions_and_outputs() {
    let text = "- rule: prod shell\n  desc: d\n  condition: evt.type = open and static.env = prod and toupper(static.env) = PROD\n  output: shell in %static.env (%proc.name)\n  priority: INFO\n";
    let mut eng = Engine::new(LoadOptions::default());
    eng.register_static_fields([("env", "prod"), ("cluster.name", "eu-1")]);
    let res = eng.load_text("static.yaml", text);
    assert!(res.successful(), "{}", res.to_text());
    let ev = Ev::new("open", 3).s("proc.name", "bash");
    assert_eq!(matching(&eng, &ev), ["prod shell"]);
    let rs = eng.ruleset();
    let a = rs.alert(0, &ev, 1, "h", &AlertOptions::default());
    // Static fields are suggested output fields: they come before the
    // container plugin's.
    assert!(
        a.output.ends_with("shell in prod (bash) static_cluster_name=eu-1 static_env=prod container_id=<NA> container_name=<NA> container_image_repository=<NA> container_image_tag=<NA> k8s_pod_name=<NA> k8s_ns_name=<NA>"),
        "{}",
        a.output
    );
    assert!(a
        .output_fields
        .contains(&("static.env".to_string(), OutputValue::Str("prod".into()))));

    // Another value: the rule no longer matches.
    let mut eng = Engine::new(LoadOptions::default());
    eng.register_static_fields([("env", "staging")]);
    assert!(eng.load_text("static.yaml", text).successful());
    assert!(matching(&eng, &ev).is_empty());

    // Unregistered names are unknown fields, like any other: the output is
    // checked first, then the condition.
    let (_, res) = load(text);
    assert_eq!(res.errors[0].code, ErrorCode::CompileOutput);
    assert_eq!(
        res.errors[0].message,
        "unknown filter: unexpected token after '"
    );
    let (_, res) = load(&text.replace("%static.env", "x"));
    assert_eq!(res.errors[0].code, ErrorCode::CompileCondition);
    assert_eq!(
        res.errors[0].message,
        "filter_check called with nonexistent field static.env"
    );
}

#[test]
fn evt_dir_is_deprecated_and_only_exit_events_exist() {
    let text = "- rule: enter\n  desc: d\n  condition: evt.type = open and evt.dir = >\n  output: o\n  priority: INFO\n- rule: exit\n  desc: d\n  condition: evt.type = open and evt.dir = <\n  output: '%evt.dir'\n  priority: INFO\n";
    let (eng, res) = load_ok(text);
    let dep: Vec<(&str, Option<&str>)> = res
        .warnings
        .iter()
        .filter(|w| w.code == WarningCode::DeprecatedItem)
        .map(|w| (w.message.as_str(), w.deprecated_field.as_deref()))
        .collect();
    let cond_msg = "due to the drop of enter events, 'evt.dir = <' always evaluates to true, and 'evt.dir = >' always evaluates to false. The rule expression can be simplified by removing the condition on 'evt.dir'";
    assert_eq!(
        dep,
        [
            (cond_msg, Some("evt.dir")),
            (
                "usage of deprecated field 'evt.dir' has been detected in the rule output",
                Some("evt.dir")
            ),
            (cond_msg, Some("evt.dir")),
        ]
    );
    // Live events are exit events (the open exit id): `evt.dir = >` never matches.
    assert_eq!(matching(&eng, &Ev::new("open", 3)), ["exit"]);
}

#[test]
fn unknown_keys_are_warnings_at_their_item() {
    let text = "- required_engine_version: 0.57.0\n  note: x\n- list: l\n  items: [a]\n  descr: x\n- macro: m\n  condition: proc.name in (l)\n  enable: true\n- rule: r\n  desc: d\n  condition: evt.type = open and m\n  output: o\n  priority: INFO\n  capture_secs: 5\n  tag: [x]\n";
    let (_, res) = load_ok(text);
    let got: Vec<(String, String, String)> = res
        .warnings
        .iter()
        .map(|w| {
            let item = w.ctx.locations.last().unwrap();
            (
                w.message.clone(),
                item.item_type.clone(),
                item.item_name.clone(),
            )
        })
        .collect();
    let want = [
        ("note", "required_engine_version", ""),
        ("descr", "list", "l"),
        ("enable", "macro", "m"),
        ("capture_secs", "rule", "r"),
        ("tag", "rule", "r"),
    ];
    assert_eq!(
        got,
        want.map(|(k, t, n)| (
            format!("Unknown key '{k}'. The key will be ignored."),
            t.to_string(),
            n.to_string()
        ))
    );
    assert!(res
        .warnings
        .iter()
        .all(|w| w.code == WarningCode::UnknownKey));
}
