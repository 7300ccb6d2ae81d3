//! Loader semantics: lists, exceptions, append/override ordering and
//! visibility, duplicates, priorities, warnings.

mod common;
use common::*;
use saker_rules::engine::{Engine, LoadOptions};
use saker_rules::errors::{ErrorCode, WarningCode};
use saker_rules::Priority;

fn rule(name: &str, cond: &str) -> String {
    format!("- rule: {name}\n  desc: d\n  condition: {cond}\n  output: out %proc.name\n  priority: WARNING\n")
}

fn condition_of(eng: &Engine, name: &str) -> String {
    let rs = eng.ruleset();
    rs.info(rs.find(name).expect("rule")).condition.clone()
}

fn open_ev(proc: &str) -> Ev {
    Ev::new("open", 3)
        .s("proc.name", proc)
        .s("fd.name", "/etc/passwd")
}

// ---- lists ----

#[test]
fn lists_are_substituted_textually_in_rules_and_macros() {
    let text = format!(
        "- list: shells\n  items: [bash, sh]\n- list: empty\n  items: []\n- macro: m\n  condition: proc.name in (shells, empty)\n{}",
        rule("r", "evt.type = open and (m or proc.name in (zsh, empty, \"ksh93\"))")
    );
    let (eng, res) = load_ok(&text);
    assert!(res.warnings.is_empty(), "{}", res.to_text());
    assert_eq!(
        condition_of(&eng, "r"),
        "evt.type = open and (m or proc.name in (zsh  , \"ksh93\"))"
    );
    assert_eq!(matching(&eng, &open_ev("bash")), ["r"]);
    assert_eq!(matching(&eng, &open_ev("zsh")), ["r"]);
    assert!(matching(&eng, &open_ev("python")).is_empty());
}

#[test]
fn list_items_with_spaces_are_quoted_and_unknown_names_stay_literal() {
    let text = format!(
        "- list: l\n  items: [\"a b\", '\"(systemd)\"']\n{}",
        rule("r", "evt.type = open and proc.name in (l, not_a_list)")
    );
    let (eng, _) = load_ok(&text);
    assert_eq!(
        condition_of(&eng, "r"),
        "evt.type = open and proc.name in ( \"a b\", \"(systemd)\" , not_a_list)"
    );
    assert_eq!(matching(&eng, &open_ev("a b")), ["r"]);
    assert_eq!(matching(&eng, &open_ev("(systemd)")), ["r"]);
    assert_eq!(matching(&eng, &open_ev("not_a_list")), ["r"]);
}

#[test]
fn list_in_list_is_one_level_and_needs_earlier_definition() {
    let text = format!(
        "- list: inner\n  items: [a]\n- list: outer\n  items: [inner, later, b]\n- list: later\n  items: [c]\n{}",
        rule("r", "evt.type = open and proc.name in (outer)")
    );
    let (eng, res) = load_ok(&text);
    // `later` is defined after `outer`: it stays a literal item of `outer`, and
    // the substitution of `later` then expands it textually in the condition.
    assert!(!res.has_warning(WarningCode::UnusedList));
    assert_eq!(
        condition_of(&eng, "r"),
        "evt.type = open and proc.name in ( a, c , b )"
    );
    assert_eq!(matching(&eng, &open_ev("c")), ["r"]);
}

#[test]
fn list_append_and_replace() {
    let text = format!(
        "- list: l\n  items: [a]\n- list: l\n  items: [b]\n  override:\n    items: append\n- list: k\n  items: [x]\n- list: k\n  items: [y]\n{}",
        rule("r", "evt.type = open and proc.name in (l, k)")
    );
    let (eng, _) = load_ok(&text);
    assert_eq!(
        condition_of(&eng, "r"),
        "evt.type = open and proc.name in ( a, b , y )"
    );
}

// ---- exceptions ----

#[test]
fn exceptions_become_and_not_clauses() {
    let text = "- list: allowed\n  items: [vi, \"my editor\"]\n- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: info\n  exceptions:\n    - name: pairs\n      fields: [proc.name, fd.name]\n      values:\n        - [cat, /etc/passwd]\n    - name: editors\n      fields: proc.name\n      values: [allowed]\n    - name: dirs\n      fields: [proc.name, fd.name]\n      comps: [=, startswith]\n      values:\n        - [tail, /var/log]\n    - name: lists\n      fields: [proc.name]\n      comps: [in]\n      values:\n        - [[less, \"more x\"]]\n";
    let (eng, _) = load_ok(text);
    assert_eq!(
        condition_of(&eng, "r"),
        "(evt.type = open) and not (( proc.name = cat and  fd.name = /etc/passwd)) and not (proc.name in ( vi, \"my editor\" )) and not (( proc.name = tail and  fd.name startswith /var/log)) and not (( proc.name in (less, \"more x\")))"
    );
    let ev = |p: &str, f: &str| Ev::new("open", 3).s("proc.name", p).s("fd.name", f);
    assert!(matching(&eng, &ev("cat", "/etc/passwd")).is_empty());
    assert_eq!(matching(&eng, &ev("cat", "/etc/shadow")), ["r"]);
    assert!(matching(&eng, &ev("my editor", "/x")).is_empty());
    assert!(matching(&eng, &ev("tail", "/var/log/syslog")).is_empty());
    assert!(matching(&eng, &ev("more x", "/x")).is_empty());
    assert_eq!(matching(&eng, &ev("python", "/x")), ["r"]);
    // A missing field value makes the exception row false: the rule still fires.
    let no_fd = Ev::new("open", 3).s("proc.name", "cat");
    assert_eq!(matching(&eng, &no_fd), ["r"]);
    let rs = eng.ruleset();
    assert_eq!(
        rs.info(0).exception_fields,
        // A sorted set, as Falco keeps it.
        ["fd.name", "proc.name"]
    );
}

#[test]
fn exception_values_append_and_warnings() {
    let text = "- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: info\n  exceptions:\n    - name: e\n      fields: [proc.name]\n      values: [[a]]\n    - name: e\n      fields: [proc.name]\n- rule: r\n  exceptions:\n    - name: e\n      values: [[b]]\n    - name: new\n      fields: proc.name\n      values: [c]\n  override:\n    exceptions: append\n- rule: r\n  exceptions:\n    - name: e\n  append: true\n";
    let (eng, res) = load_ok(text);
    assert!(res.has_warning(WarningCode::ExceptionNameNotUnique));
    assert!(res.has_warning(WarningCode::AppendNoValues));
    assert!(
        res.has_warning(WarningCode::DeprecatedItem),
        "legacy append key"
    );
    assert_eq!(
        condition_of(&eng, "r"),
        "(evt.type = open) and not (( proc.name = a) or ( proc.name = b)) and not (proc.name in (c))"
    );
}

// ---- append / override ----

#[test]
fn rule_condition_append_is_textual() {
    let text = format!(
        "{}- rule: r\n  condition: or proc.name = b\n  override:\n    condition: append\n",
        rule("r", "evt.type = open and proc.name = a")
    );
    let (eng, _) = load_ok(&text);
    // No parentheses are added: `a and b or c`.
    assert_eq!(
        condition_of(&eng, "r"),
        "evt.type = open and proc.name = a or proc.name = b"
    );
    assert_eq!(
        matching(&eng, &Ev::new("execve", 293).s("proc.name", "b")),
        ["r"]
    );
}

#[test]
fn override_append_and_replace_per_key() {
    let text = format!(
        "{}- rule: r\n  desc: more\n  output: extra=%fd.name\n  tags: [b, a]\n  priority: critical\n  enabled: false\n  override:\n    desc: append\n    output: append\n    tags: append\n    priority: replace\n    enabled: replace\n",
        rule("r", "evt.type = open").replace("priority: WARNING\n", "priority: WARNING\n  tags: [c, a]\n")
    );
    let (eng, res) = load_ok(&text);
    assert!(res.warnings.is_empty(), "{}", res.to_text());
    let rs = eng.ruleset();
    let info = rs.info(0);
    assert_eq!(info.desc, "d more");
    assert!(
        info.output
            .starts_with("out %proc.name extra=%fd.name container_id="),
        "{}",
        info.output
    );
    assert_eq!(info.tags, ["a", "b", "c"]);
    assert_eq!(info.priority, Priority::Critical);
    assert!(!info.enabled);
    assert!(rs.enabled().is_empty());
}

#[test]
fn override_replace_condition_and_exceptions() {
    let text = format!(
        "{}- rule: r\n  condition: evt.type = connect\n  exceptions:\n    - name: x\n      fields: [proc.name]\n      values: [[nc]]\n  override:\n    condition: replace\n    exceptions: replace\n",
        rule("r", "evt.type = open")
    );
    let (eng, _) = load_ok(&text);
    assert_eq!(
        condition_of(&eng, "r"),
        "(evt.type = connect) and not (( proc.name = nc))"
    );
}

#[test]
fn macro_append_and_subtree_substitution() {
    let text = format!(
        "- macro: m\n  condition: proc.name = a\n- macro: m\n  condition: or proc.name = b\n  override:\n    condition: append\n{}",
        rule("r", "evt.type = open and m")
    );
    let (eng, _) = load_ok(&text);
    // The macro body is a sub-tree: `open and (a or b)`.
    assert_eq!(matching(&eng, &open_ev("b")), ["r"]);
    assert!(matching(&eng, &Ev::new("execve", 293).s("proc.name", "b")).is_empty());
}

#[test]
fn enabled_only_items() {
    let text = format!(
        "{}- rule: r\n  enabled: false\n",
        rule("r", "evt.type = open")
    );
    let (eng, res) = load_ok(&text);
    assert!(res.has_warning(WarningCode::DeprecatedItem));
    assert!(eng.ruleset().enabled().is_empty());
    let text = format!(
        "{}- rule: r\n  enabled: false\n  override:\n    enabled: replace\n",
        rule("r", "evt.type = open")
    );
    let (eng, res) = load_ok(&text);
    assert!(res.warnings.is_empty());
    assert!(eng.ruleset().enabled().is_empty());
}

// ---- order and visibility ----

#[test]
fn rules_see_macros_defined_later_but_macros_do_not() {
    let text = format!(
        "{}- macro: later\n  condition: proc.name = a\n",
        rule("r", "evt.type = open and later")
    );
    let (eng, _) = load_ok(&text);
    assert_eq!(matching(&eng, &open_ev("a")), ["r"]);
    let (code, msg) = load_err(
        "- macro: first\n  condition: later\n- macro: later\n  condition: proc.name = a\n",
    );
    assert_eq!(
        (code, msg.as_str()),
        (
            ErrorCode::Validate,
            "Undefined macro 'later' used in filter."
        )
    );
    // Redefining `first` after `later` makes `later` visible to it.
    let (eng, _) = load_ok(&format!(
        "- macro: first\n  condition: evt.type = execve\n- macro: later\n  condition: proc.name = a\n- macro: first\n  condition: later\n{}",
        rule("r", "evt.type = open and first")
    ));
    assert_eq!(matching(&eng, &open_ev("a")), ["r"]);
}

#[test]
fn latest_macro_body_wins_for_every_user_across_files() {
    let mut eng = Engine::new(LoadOptions::default());
    let r1 = eng.load_text(
        "a.yaml",
        &format!(
            "- macro: m\n  condition: proc.name = a\n{}",
            rule("r", "evt.type = open and m")
        ),
    );
    assert!(r1.successful());
    let r2 = eng.load_text("b.yaml", "- macro: m\n  condition: proc.name = b\n");
    assert!(r2.successful(), "{}", r2.to_text());
    assert_eq!(matching(&eng, &open_ev("b")), ["r"]);
    assert!(matching(&eng, &open_ev("a")).is_empty());
}

#[test]
fn forward_reference_into_a_later_file_fails() {
    let mut eng = Engine::new(LoadOptions::default());
    let r1 = eng.load_text("a.yaml", &rule("r", "evt.type = open and from_b"));
    assert_eq!(
        r1.errors[0].message,
        "Undefined macro 'from_b' used in filter."
    );
    assert_eq!(r1.errors[0].ctx.locations[0].name, "a.yaml");
}

#[test]
fn append_before_definition_is_an_error_even_if_defined_later() {
    let text = format!(
        "- rule: r\n  condition: and proc.name = a\n  override:\n    condition: append\n{}",
        rule("r", "evt.type = open")
    );
    let (code, msg) = load_err(&text);
    assert_eq!(code, ErrorCode::Validate);
    assert!(msg.starts_with("Rule uses 'append'"));
}

#[test]
fn duplicates_replace_silently_and_keep_position() {
    let text = format!(
        "{}{}{}",
        rule("a", "evt.type = open"),
        rule("b", "evt.type = open"),
        rule("a", "evt.type = open and proc.name = x")
    );
    let (eng, res) = load_ok(&text);
    assert!(res.warnings.is_empty());
    let rs = eng.ruleset();
    let names: Vec<&str> = rs.rules().map(|(_, r)| r.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(matching(&eng, &open_ev("x")), ["a"]);
    assert_eq!(matching(&eng, &open_ev("y")), ["b"]);
}

// ---- priorities ----

#[test]
fn priorities_are_case_insensitive_with_info_alias() {
    for (p, want) in [
        ("INFO", Priority::Informational),
        ("info", Priority::Informational),
        ("Informational", Priority::Informational),
        ("eMeRgEnCy", Priority::Emergency),
        ("debug", Priority::Debug),
    ] {
        let (eng, _) = load_ok(&rule("r", "evt.type = open").replace("WARNING", p));
        assert_eq!(eng.ruleset().info(0).priority, want, "{p}");
    }
}

// ---- warnings ----

#[test]
fn loader_warnings() {
    let text = "- list: unused_l\n  items: [a]\n- list: \"bad name\"\n  items: [a]\n- macro: unused_m\n  condition: proc.name = a\n- macro: bad.name\n  condition: proc.name = a\n- something: else\n- rule: r\n  desc: d\n  condition: proc.name = a\n  output: o\n  priority: info\n  colour: blue\n- rule: k\n  desc: d\n  condition: ct.name = get\n  output: o\n  priority: info\n  source: aws_cloudtrail\n- rule: q\n  desc: d\n  condition: proc.name = a\n  output: o\n  priority: info\n  warn_evttypes: false\n";
    let (_, res) = load_ok(text);
    let codes: Vec<&str> = res.warnings.iter().map(|w| w.code.code()).collect();
    for c in [
        "LOAD_UNUSED_LIST",
        "LOAD_INVALID_LIST_NAME",
        "LOAD_UNUSED_MACRO",
        "LOAD_INVALID_MACRO_NAME",
        "LOAD_UNKNOWN_ITEM",
        "LOAD_UNKNOWN_KEY",
        "LOAD_UNKNOWN_SOURCE",
        "LOAD_NO_EVTTYPE",
    ] {
        assert!(codes.contains(&c), "{c} missing from {codes:?}");
    }
    // `warn_evttypes: false` silences LOAD_NO_EVTTYPE for rule q only.
    assert_eq!(codes.iter().filter(|c| **c == "LOAD_NO_EVTTYPE").count(), 1);
    let w = res
        .warnings
        .iter()
        .find(|w| w.code == WarningCode::UnknownKey)
        .unwrap();
    assert_eq!(w.message, "Unknown key 'colour'. The key will be ignored.");
    let w = res
        .warnings
        .iter()
        .find(|w| w.code == WarningCode::UnknownSource)
        .unwrap();
    assert_eq!(w.message, "Unknown source aws_cloudtrail, skipping");
    assert_eq!(res.summary(), "test.yaml: Ok, with warnings");
    let json = saker_rules::errors::results_to_json(std::slice::from_ref(&res));
    assert!(json.contains("\"codedesc\":\"A macro is defined in the rules content but is not used by any other macro or rule.\""), "{json}");
}

#[test]
fn deprecated_fields_warn_with_the_field_name() {
    let (_, res) = load_ok(&rule("r", "evt.type = open and evt.dir = <"));
    let w = res
        .warnings
        .iter()
        .find(|w| w.code == WarningCode::DeprecatedItem)
        .expect("warning");
    assert_eq!(w.deprecated_field.as_deref(), Some("evt.dir"));
    let json = saker_rules::errors::results_to_json(std::slice::from_ref(&res));
    assert!(json.contains("\"deprecated_field\":\"evt.dir\""));
}

#[test]
fn rules_below_min_priority_are_compiled_but_not_loaded() {
    let text = format!(
        "{}{}",
        rule("warn", "evt.type = open"),
        rule("dbg", "evt.type = open").replace("WARNING", "debug")
    );
    let opts = LoadOptions {
        min_priority: Priority::Notice,
        ..Default::default()
    };
    let (eng, _) = load_with(&text, opts.clone());
    let rs = eng.ruleset();
    assert_eq!(rs.counts().0, 1);
    assert!(rs.find("dbg").is_none());
    // Still validated: a broken debug rule fails the load.
    let (_, res) = load_with(
        &rule("dbg", "evt.type = open and proc.nmae = x").replace("WARNING", "debug"),
        opts,
    );
    assert!(!res.successful());
}

#[test]
fn exception_fields_of_unknown_sources_are_not_checked() {
    let text = "- rule: k\n  desc: d\n  condition: ct.name = get\n  output: o\n  priority: info\n  source: aws_cloudtrail\n  exceptions:\n    - name: e\n      fields: [ct.user]\n      values: [[admin]]\n";
    let (eng, res) = load_ok(text);
    assert!(res.has_warning(WarningCode::UnknownSource));
    assert_eq!(eng.ruleset().counts().0, 0);
}

#[test]
fn multiple_documents_anchors_and_optional_keys() {
    let text = "- list: l\n  items: &names [a, b]\n---\n# comment-only document follows\n---\n- rule: r\n  desc: d\n  condition: evt.type = open and proc.name in (l, c)\n  output: \"  spaced %proc.name  \"\n  priority: Notice\n  capture: true\n  capture_duration: 2500\n  warn_evttypes: false\n  skip-if-unknown-filter: true\n  enabled: yes\n  tags: [z, a, z]\n- list: k\n  items: *names\n- rule: s\n  desc: d\n  condition: evt.type = open and proc.name in (k)\n  output: o\n  priority: info\n";
    let (eng, res) = load_ok(text);
    assert!(res.warnings.is_empty(), "{}", res.to_text());
    let rs = eng.ruleset();
    let r = rs.info(rs.find("r").unwrap());
    assert!(r.capture);
    assert_eq!(r.capture_duration, 2500);
    assert_eq!(r.tags, ["a", "z"]);
    assert_eq!(r.priority, Priority::Notice);
    assert!(
        r.output.starts_with("spaced %proc.name container_id="),
        "output is trimmed: {}",
        r.output
    );
    assert_eq!(matching(&eng, &open_ev("b")), ["r"]);
    assert_eq!(matching(&eng, &open_ev("c")), ["r"]);
    let s = rs.info(rs.find("s").unwrap());
    assert_eq!(s.condition, "evt.type = open and proc.name in ( a, b )");
}
