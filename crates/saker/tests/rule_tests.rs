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
    let has = |want: &str| {
        assert!(
            lines.iter().any(|l| *l == want),
            "no line {want:?} in:\n{stdout}"
        )
    };
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
