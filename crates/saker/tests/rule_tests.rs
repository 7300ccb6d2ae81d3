//! `saker test` (issue 17): the built-in rules' fixtures pass and cover every built-in rule, a
//! broken built-in rule makes them fail and names it (mutation check), the upstream rules pass
//! their fixtures, explanations show macros, appends and exceptions, and reports/exit codes are
//! what CI relies on. No root, no kernel: everything runs on synthetic events and captures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn shared() -> PathBuf {
    repo().join("../shared")
}

fn saker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_saker"))
        .args(args)
        .output()
        .expect("saker runs")
}

fn text(o: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

fn tmp(name: &str, body: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saker-rule-tests-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

/// A rule with a macro that an append extends, a rule-level append and an exception.
const EXPLAIN_RULES: &str = r#"
- macro: etc_file
  condition: fd.name startswith /etc/
- macro: etc_file
  condition: or fd.name startswith /usr/local/etc/
  override:
    condition: append
- rule: Etc write
  desc: a write below /etc
  condition: evt.type = openat and evt.is_open_write = true and etc_file
  output: "write %fd.name by %proc.name"
  priority: WARNING
  exceptions:
    - name: editors
      fields: [proc.name, fd.name]
      comps: [=, startswith]
      values:
        - [vim, /etc/]
- rule: Etc write
  condition: and proc.name != dpkg
  override:
    condition: append
"#;

const EXPLAIN_FIXTURE: &str = r#"
rule: Etc write
cases:
  - name: vim writes /etc/hosts
    processes: [{name: vim, user: alice}]
    events:
      - openat: {name: /etc/hosts, flags: O_WRONLY|O_TRUNC}
    expect: fire
  - name: sed writes /usr/local/etc/app.conf
    processes: [{name: sed}]
    events:
      - openat: {name: /usr/local/etc/app.conf, flags: [O_WRONLY, O_CREAT]}
    expect: fire
"#;

#[test]
fn explanation_names_macros_appends_and_the_exception_that_matched() {
    let rules = tmp("explain-rules.yaml", EXPLAIN_RULES);
    let fx = tmp("explain-fixture.yaml", EXPLAIN_FIXTURE);
    let out = saker(&["test", "-r", rules.to_str().unwrap(), fx.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("FAIL  "), "{stdout}");
    assert!(stdout.contains(":: vim writes /etc/hosts\n"), "{stdout}");
    assert!(stdout.contains("PASS  "), "{stdout}");
    assert!(
        stdout.contains("'Etc write' did not fire, expected an alert"),
        "{stdout}"
    );
    let lines: Vec<&str> = stdout.lines().map(str::trim).collect();
    let has = |want: &str| assert!(lines.contains(&want), "no line {want:?} in:\n{stdout}");
    let file = rules.display().to_string();
    has("does not fire: the condition holds but an exception matched");
    has(&format!("condition [defined at {file}:8]:"));
    has(&format!("true   macro etc_file [defined at {file}:2]"));
    has("true   fd.name startswith /etc/    [fd.name=/etc/hosts]");
    has(&format!(
        "false  fd.name startswith /usr/local/etc/    [fd.name=/etc/hosts] [appended at {file}:4]"
    ));
    has(&format!(
        "true   proc.name != dpkg    [proc.name=vim] [appended at {file}:19]"
    ));
    has(&format!("MATCHED   exception 'editors' [{file}:14]"));
    has("true   proc.name = vim    [proc.name=vim]");
    // Only the failing case is explained.
    assert_eq!(stdout.matches("why 'Etc write'").count(), 1, "{stdout}");
}

#[test]
fn explain_flag_explains_passing_cases_and_the_exception_that_did_not_match() {
    let rules = tmp("explain2-rules.yaml", EXPLAIN_RULES);
    let fx = tmp("explain2-fixture.yaml", EXPLAIN_FIXTURE);
    let out = saker(&[
        "test",
        "--explain",
        "-r",
        rules.to_str().unwrap(),
        fx.to_str().unwrap(),
    ]);
    let (stdout, _) = text(&out);
    let sed = &stdout[stdout.find(":: sed writes").expect("sed case")..];
    assert!(
        sed.contains("FIRES: the condition holds and no exception matched"),
        "{sed}"
    );
    assert!(sed.contains("no match  exception 'editors'"), "{sed}");
    assert!(
        sed.contains("false  proc.name = vim    [proc.name=sed]"),
        "{sed}"
    );
}

#[test]
fn replay_explain_prints_why_each_alert_fired() {
    let rules = tmp(
        "replay-explain.yaml",
        r#"
- macro: below_etc
  condition: fd.name startswith /etc/
- rule: Open below etc
  desc: d
  condition: evt.type = open and evt.dir = < and below_etc
  output: "open %fd.name"
  priority: WARNING
  exceptions:
    - name: not_this
      fields: [proc.name]
      values: [[no-such-program]]
"#,
    );
    let cap = shared().join("captures/cat_write.scap");
    let out = saker(&[
        "replay",
        "--no-progress",
        "--explain",
        "-r",
        rules.to_str().unwrap(),
        cap.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let alerts = stdout.lines().filter(|l| l.contains("open /etc/")).count();
    assert!(alerts > 0, "{stdout}");
    assert_eq!(
        stderr
            .matches("explain 'Open below etc' at event #")
            .count(),
        alerts,
        "{stderr}"
    );
    assert!(stderr.contains("FIRES: the condition holds and no exception matched"));
    assert!(
        stderr.contains("true   macro below_etc [defined at"),
        "{stderr}"
    );
    assert!(
        stderr.contains("no match  exception 'not_this'"),
        "{stderr}"
    );
}

/// The built-in rules' names, from the rules file.
fn builtin_rule_names() -> Vec<String> {
    std::fs::read_to_string(repo().join("rules/saker_rules.yaml"))
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("- rule: "))
        .map(|n| n.trim().to_string())
        .collect()
}

/// Rules the per-rule summary marks as failed.
fn failed_rules(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .filter(|l| !l.contains(" :: "))
        .filter_map(|l| l.trim_start().strip_prefix("FAIL "))
        .filter_map(|l| l.rsplit_once(": ").map(|(n, _)| n.trim().to_string()))
        .collect()
}

#[test]
fn builtin_fixtures_pass_and_cover_every_builtin_rule() {
    let out = saker(&["test", "--coverage"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("Coverage: 0 enabled rule(s) without a case that fires them"),
        "{stdout}"
    );
    let names = builtin_rule_names();
    assert_eq!(names.len(), 32);
    for n in &names {
        let line = stdout
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("ok   {n}: ")))
            .unwrap_or_else(|| panic!("no summary line for {n}:\n{stdout}"));
        // At least one case that fires and one near-miss per rule.
        assert!(!line.contains("(0 must fire"), "{line}");
        assert!(!line.contains(", 0 must not)"), "{line}");
    }
    // The same fixtures from the repository directory, against the repository's rules file.
    let rules = repo().join("rules/saker_rules.yaml");
    let dir = repo().join("rules/tests");
    let out = saker(&["test", "-r", rules.to_str().unwrap(), dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out).0);
}

/// Mutation check: breaking any one built-in rule's condition makes `saker test` fail and name
/// exactly that rule.
#[test]
fn breaking_any_builtin_rule_fails_its_fixtures_and_names_it() {
    let rules = repo().join("rules/saker_rules.yaml");
    let dir = repo().join("rules/tests");
    for (i, name) in builtin_rule_names().iter().enumerate() {
        let m = tmp(
            &format!("mutant-{i}.yaml"),
            &format!(
                "- rule: {name}\n  condition: evt.num < 0\n  override:\n    condition: replace\n"
            ),
        );
        let out = saker(&[
            "test",
            "-r",
            rules.to_str().unwrap(),
            "-r",
            m.to_str().unwrap(),
            dir.to_str().unwrap(),
        ]);
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(1),
            "mutant of {name}:\n{stdout}\n{stderr}"
        );
        assert_eq!(
            failed_rules(&stdout),
            vec![name.clone()],
            "mutant of {name}:\n{stdout}"
        );
        assert!(
            stdout.contains(&format!("'{name}' did not fire, expected an alert"))
                || stdout.contains(&format!("'{name}' fired 0 time(s), expected ")),
            "{stdout}"
        );
    }
}

#[test]
fn upstream_rules_pass_their_fixtures() {
    let rules = shared().join("falco-rules/falco_rules.yaml");
    let dir = repo().join("tests/rules/upstream");
    let out = saker(&[
        "test",
        "--coverage",
        "-r",
        rules.to_str().unwrap(),
        dir.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // fd.sip.name needs DNS resolution, which synthetic events do not model.
    assert!(
        stdout.contains("Coverage: 1 enabled rule(s) without a case that fires them\n  uncovered: Contact K8S API Server From Container\n"),
        "{stdout}"
    );
}

#[test]
fn json_and_junit_reports() {
    let rules = tmp("report-rules.yaml", EXPLAIN_RULES);
    let fx = tmp("report-fixture.yaml", EXPLAIN_FIXTURE);
    let junit = std::env::temp_dir().join(format!("saker-junit-{}.xml", std::process::id()));
    let out = saker(&[
        "test",
        "--json",
        "--junit",
        junit.to_str().unwrap(),
        "-r",
        rules.to_str().unwrap(),
        fx.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["passed"], 1);
    assert_eq!(doc["failed"], 1);
    assert_eq!(doc["cases"][0]["case"], "vim writes /etc/hosts");
    assert_eq!(doc["cases"][0]["passed"], false);
    assert_eq!(
        doc["cases"][0]["problems"][0],
        "'Etc write' did not fire, expected an alert"
    );
    assert_eq!(doc["cases"][1]["alerts"]["Etc write"], 1);
    assert_eq!(doc["rules"][0]["rule"], "Etc write");
    assert_eq!(doc["rules"][0]["failed"], 1);
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuites name=\"saker test\" tests=\"2\" failures=\"1\">"),
        "{xml}"
    );
    assert!(xml.contains("name=\"vim writes /etc/hosts\""), "{xml}");
    assert!(
        xml.contains("<failure message=\"&apos;Etc write&apos; did not fire, expected an alert\">"),
        "{xml}"
    );
    assert!(
        xml.contains("name=\"sed writes /usr/local/etc/app.conf\" time="),
        "{xml}"
    );
}

#[test]
fn bad_fixtures_are_load_errors_naming_the_problem() {
    let cases = [
        (
            "rule: X\ncases:\n  - name: c\n    processes: [{name: a}]\n    events:\n      - openat: {nmae: /etc/x}\n    expect: fire\n",
            "openat has no parameter 'nmae'",
        ),
        (
            "rule: X\ncases:\n  - name: c\n    processes: [{name: a, colour: red}]\n    events: []\n    expect: fire\n",
            "unknown field `colour`",
        ),
        (
            "cases:\n  - name: c\n    scap: {file: x.scap}\n    events: [{close: {}}]\n    expect: fire\n",
            "are exclusive",
        ),
        (
            "cases:\n  - name: c\n    processes: [{name: a}]\n    events: [{close: {}}]\n    expect: fire\n",
            "`expect: fire`/`no_fire` needs a top-level `rule:`",
        ),
        (
            "rule: X\ncases:\n  - name: c\n    processes: [{name: a}]\n    events:\n      - frobnicate: {}\n    expect: fire\n",
            "unknown syscall or event 'frobnicate'",
        ),
        (
            "rule: X\ncases:\n  - name: c\n    processes: [{name: a, parent: nobody}]\n    events: []\n    expect: fire\n",
            "no process named 'nobody'",
        ),
    ];
    let rules = tmp("bad-rules.yaml", EXPLAIN_RULES);
    for (i, (body, want)) in cases.iter().enumerate() {
        let f = tmp(
            &format!("bad-{i}.yaml"),
            &body.replace("rule: X", "rule: Etc write"),
        );
        let out = saker(&["test", "-r", rules.to_str().unwrap(), f.to_str().unwrap()]);
        let (stdout, stderr) = text(&out);
        let all = format!("{stdout}{stderr}");
        assert!(all.contains(want), "case {i}: want {want:?} in:\n{all}");
        // Structural problems stop the run (2); an event that cannot be built fails its case (1).
        assert!(
            matches!(out.status.code(), Some(1) | Some(2)),
            "case {i}: {all}"
        );
    }
    let out = saker(&["test", "/nonexistent/fixtures.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out)
        .1
        .contains("/nonexistent/fixtures.yaml: does not exist"));
}

#[test]
fn a_capture_slice_is_a_case_input() {
    let cap = shared().join("captures/cat_write.scap");
    let rules = tmp(
        "scap-rules.yaml",
        "- rule: Open below etc\n  desc: d\n  condition: evt.type = open and evt.dir = < and fd.name startswith /etc/\n  output: \"open %fd.name num=%evt.num\"\n  priority: WARNING\n",
    );
    // Where the capture's open below /etc is, from a replay of the same rule.
    let out = saker(&[
        "replay",
        "--no-progress",
        "-r",
        rules.to_str().unwrap(),
        cap.to_str().unwrap(),
    ]);
    let stdout = text(&out).0;
    let nums: Vec<u64> = stdout
        .lines()
        .filter_map(|l| l.split("num=").nth(1))
        .map(|n| n.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(nums.len(), 1, "{stdout}");
    let n = nums[0];
    let c = cap.display();
    let slice = tmp(
        "scap-slice.yaml",
        &format!(
            "rule: Open below etc\ncases:\n\
             \x20 - name: the event itself\n    scap: {{file: {c}, from: {n}, to: {n}}}\n    expect:\n      fire: [{{rule: Open below etc, count: 1, output_contains: \"num={n}\"}}]\n\
             \x20 - name: everything after it\n    scap: {{file: {c}, from: {}}}\n    expect: no_fire\n\
             \x20 - name: everything before it\n    scap: {{file: {c}, to: {}}}\n    expect: no_fire\n",
            n + 1,
            n - 1
        ),
    );
    let out = saker(&[
        "test",
        "-r",
        rules.to_str().unwrap(),
        slice.to_str().unwrap(),
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert_eq!(stdout.matches("PASS  ").count(), 3, "{stdout}");
}
