//! Ruleset selection, matching order, event-type indexing and alerts.

mod common;
use common::*;
use saker_rules::engine::{LoadOptions, RuleMatching, Selection};
use saker_rules::ruleset::AlertOptions;
use saker_rules::{OutputValue, Priority};

const OPEN_ID: u16 = 3; // PPME_SYSCALL_OPEN_E in the event table

fn rules_text() -> String {
    let r = |name: &str, cond: &str, prio: &str, tags: &str| {
        format!("- rule: {name}\n  desc: d\n  condition: {cond}\n  output: \"{name} by %proc.name file=%fd.name\"\n  priority: {prio}\n  tags: [{tags}]\n")
    };
    [
        r(
            "Open any",
            "evt.type in (open, openat)",
            "NOTICE",
            "files, maturity_stable",
        ),
        r(
            "Open passwd",
            "evt.type = open and fd.name = /etc/passwd",
            "CRITICAL",
            "files, secrets",
        ),
        r(
            "Exec shell",
            "evt.type = execve and proc.name = bash",
            "WARNING",
            "process",
        ),
        r("Debug all opens", "evt.type = open", "DEBUG", "files"),
        r(
            "Shell tooling",
            "evt.type = execve and proc.name = sh",
            "INFO",
            "process, maturity_sandbox",
        ),
    ]
    .concat()
}

fn open_passwd() -> Ev {
    Ev::new("open", OPEN_ID)
        .s("proc.name", "cat")
        .s("fd.name", "/etc/passwd")
}

fn names(rs: &saker_rules::ruleset::Ruleset, ev: &Ev) -> Vec<String> {
    let mut out = Vec::new();
    rs.matches(ev, &mut out);
    out.into_iter().map(|i| rs.info(i).name.clone()).collect()
}

#[test]
fn rule_matching_first_vs_all() {
    let (eng, _) = load_ok(&rules_text());
    assert_eq!(names(&eng.ruleset(), &open_passwd()), ["Open any"]);
    let opts = LoadOptions {
        rule_matching: RuleMatching::All,
        ..Default::default()
    };
    let (eng, _) = load_with(&rules_text(), opts);
    assert_eq!(
        names(&eng.ruleset(), &open_passwd()),
        ["Open any", "Open passwd", "Debug all opens"]
    );
    assert_eq!(RuleMatching::parse("ALL"), Some(RuleMatching::All));
    assert_eq!(RuleMatching::parse("First"), Some(RuleMatching::First));
    assert_eq!(RuleMatching::parse("some"), None);
}

#[test]
fn only_rules_indexed_for_the_event_type_are_evaluated() {
    let opts = LoadOptions {
        rule_matching: RuleMatching::All,
        ..Default::default()
    };
    let (eng, _) = load_with(&rules_text(), opts);
    let rs = eng.ruleset();
    // An event whose fields would satisfy `fd.name = /etc/passwd` but of another type.
    let ev = Ev::new("execve", 293)
        .s("proc.name", "bash")
        .s("fd.name", "/etc/passwd");
    assert_eq!(names(&rs, &ev), ["Exec shell"]);
    let needed = rs.needed_event_types().unwrap();
    assert_eq!(
        needed.into_iter().collect::<Vec<_>>(),
        ["execve", "open", "openat"]
    );
    let ids = rs.needed_event_ids().unwrap();
    for id in saker_event::table::ids_for_name("openat") {
        assert!(ids.contains(id));
    }
}

#[test]
fn priority_threshold() {
    let opts = LoadOptions {
        min_priority: Priority::Warning,
        rule_matching: RuleMatching::All,
        ..Default::default()
    };
    let (eng, _) = load_with(&rules_text(), opts);
    let rs = eng.ruleset();
    assert_eq!(names(&rs, &open_passwd()), ["Open passwd"]);
    let all: Vec<&str> = rs.rules().map(|(_, r)| r.name.as_str()).collect();
    assert_eq!(all, ["Open passwd", "Exec shell"]);
}

#[test]
fn enable_and_disable_by_name_wildcard_and_tag() {
    let sel = |s: Vec<Selection>| {
        let opts = LoadOptions {
            rule_matching: RuleMatching::All,
            selections: s,
            ..Default::default()
        };
        let (eng, _) = load_with(&rules_text(), opts);
        let rs = eng.ruleset();
        rs.enabled()
            .iter()
            .map(|&i| rs.info(i).name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        sel(vec![Selection::DisableRule("Open*".into())]),
        ["Exec shell", "Debug all opens", "Shell tooling"]
    );
    assert_eq!(
        sel(vec![Selection::DisableTag("files".into())]),
        ["Exec shell", "Shell tooling"]
    );
    // Disable everything, then re-enable by tag: evaluation order follows enabling.
    assert_eq!(
        sel(vec![
            Selection::DisableRule("*".into()),
            Selection::EnableRule("Shell tooling".into()),
            Selection::EnableTag("secrets".into()),
        ]),
        ["Shell tooling", "Open passwd"]
    );
    // Exact names, not substrings, without wildcards.
    assert_eq!(
        sel(vec![
            Selection::DisableRule("*".into()),
            Selection::EnableRule("Open".into())
        ]),
        Vec::<String>::new()
    );
    // Falco's non-backtracking wildcard: `*l` tries only the first `l` of "Exec shell".
    assert_eq!(
        sel(vec![
            Selection::DisableRule("*".into()),
            Selection::EnableRule("*l".into())
        ]),
        Vec::<String>::new()
    );
    assert_eq!(
        sel(vec![
            Selection::DisableRule("*".into()),
            Selection::EnableRule("*ll".into())
        ]),
        ["Exec shell"]
    );
    assert_eq!(
        sel(vec![
            Selection::DisableRule("*".into()),
            Selection::EnableRule("*passwd".into())
        ]),
        ["Open passwd"]
    );
}

#[test]
fn runtime_enable_changes_evaluation_order() {
    let opts = LoadOptions {
        rule_matching: RuleMatching::All,
        ..Default::default()
    };
    let (eng, _) = load_with(&rules_text(), opts);
    let mut rs = eng.ruleset();
    let any = rs.find("Open any").unwrap();
    rs.set_enabled(any, false);
    assert_eq!(
        names(&rs, &open_passwd()),
        ["Open passwd", "Debug all opens"]
    );
    rs.set_enabled(any, true);
    assert_eq!(
        names(&rs, &open_passwd()),
        ["Open passwd", "Debug all opens", "Open any"]
    );
}

#[test]
fn alert_rendering() {
    let opts = LoadOptions {
        suggested_output: false,
        ..Default::default()
    };
    let (eng, _) = load_with(&rules_text(), opts);
    let rs = eng.ruleset();
    let idx = rs.find("Open passwd").unwrap();
    let t = 1_714_564_800_000_000_001u64; // 2024-05-01T12:00:00.000000001Z
    std::env::set_var("TZ", "UTC");
    let a = rs.alert(idx, &open_passwd(), t, "host1", &AlertOptions::default());
    assert_eq!(a.rule, "Open passwd");
    assert_eq!(a.priority, Priority::Critical);
    assert_eq!(a.source, "syscall");
    assert_eq!(a.hostname, "host1");
    assert_eq!(
        a.output,
        "12:00:00.000000001: Critical Open passwd by cat file=/etc/passwd"
    );
    assert_eq!(a.tags, ["files", "secrets"]);
    assert_eq!(
        a.output_fields,
        vec![
            ("evt.time".to_string(), OutputValue::U64(t)),
            ("proc.name".to_string(), OutputValue::Str("cat".into())),
            (
                "fd.name".to_string(),
                OutputValue::Str("/etc/passwd".into())
            ),
        ]
    );
    let iso = rs.alert(
        idx,
        &open_passwd(),
        t,
        "host1",
        &AlertOptions {
            time_format_iso_8601: true,
        },
    );
    assert_eq!(
        iso.output,
        "2024-05-01T12:00:00.000000001+0000: Critical Open passwd by cat file=/etc/passwd"
    );
    assert_eq!(iso.output_fields[0].0, "evt.time.iso8601");
}

#[test]
fn suggested_output_is_appended_and_missing_values_render_na() {
    let (eng, _) = load_ok(&rules_text());
    let rs = eng.ruleset();
    let idx = rs.find("Open passwd").unwrap();
    let a = rs.alert(idx, &open_passwd(), 0, "h", &AlertOptions::default());
    assert!(
        a.output.ends_with("file=/etc/passwd container_id=<NA> container_name=<NA> container_image_repository=<NA> container_image_tag=<NA> k8s_pod_name=<NA> k8s_ns_name=<NA>"),
        "{}",
        a.output
    );
    assert!(a
        .output_fields
        .contains(&("k8s.ns.name".to_string(), OutputValue::Null)));
}

#[test]
fn append_output_matches_by_source_tags_and_rule() {
    use saker_rules::engine::{AppendOutput, ExtraField};
    let opts = LoadOptions {
        suggested_output: false,
        append_output: vec![
            AppendOutput {
                match_tags: vec!["files".into(), "secrets".into()],
                extra_output: Some("secret!".into()),
                extra_fields: vec![
                    ExtraField::Format {
                        key: "who".into(),
                        format: "%proc.name/%user.name".into(),
                    },
                    ExtraField::Field("fd.name".into()),
                ],
                ..Default::default()
            },
            AppendOutput {
                match_rule: Some("Exec shell".into()),
                suggested_output: true,
                ..Default::default()
            },
            AppendOutput {
                match_source: Some("k8s_audit".into()),
                extra_output: Some("never".into()),
                ..Default::default()
            },
        ],
        extra_output: vec!["pid=%proc.pid".into()],
        ..Default::default()
    };
    let (eng, _) = load_with(&rules_text(), opts);
    let rs = eng.ruleset();
    let out = |n: &str| rs.info(rs.find(n).unwrap()).output.clone();
    assert_eq!(
        out("Open passwd"),
        "Open passwd by %proc.name file=%fd.name secret! pid=%proc.pid"
    );
    assert_eq!(
        out("Open any"),
        "Open any by %proc.name file=%fd.name pid=%proc.pid"
    );
    assert!(
        out("Exec shell").ends_with("k8s_ns_name=%k8s.ns.name pid=%proc.pid"),
        "{}",
        out("Exec shell")
    );
    let a = rs.alert(
        rs.find("Open passwd").unwrap(),
        &open_passwd(),
        0,
        "h",
        &AlertOptions::default(),
    );
    assert!(
        a.output_fields
            .contains(&("who".to_string(), OutputValue::Str("cat/<NA>".into()))),
        "{:?}",
        a.output_fields
    );
    assert!(a.output_fields.contains(&(
        "fd.name".to_string(),
        OutputValue::Str("/etc/passwd".into())
    )));
}

#[test]
fn ruleset_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync + Clone>() {}
    assert_send_sync::<saker_rules::ruleset::Ruleset>();
    let (eng, _) = load_ok(&rules_text());
    let rs = std::sync::Arc::new(eng.ruleset());
    let r2 = rs.clone();
    let got = std::thread::spawn(move || names(&r2, &open_passwd()))
        .join()
        .unwrap();
    assert_eq!(got, ["Open any"]);
}
