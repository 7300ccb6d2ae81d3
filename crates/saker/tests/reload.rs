//! Issue #6 "Done when": a bad SIGHUP reload leaves the old rules firing; a good one swaps them.
//! The reloads are visible on `/metrics`.

mod common;

use std::ffi::OsStr;
use std::path::Path;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);

fn rule(name: &str, trigger: &Path) -> String {
    format!(
        "- rule: {name}\n  desc: reload test\n  condition: >\n    \
         evt.type in (open, openat, openat2) and fd.name = {}\n  \
         output: \"{name} proc.name=%proc.name fd.name=%fd.name\"\n  priority: NOTICE\n",
        trigger.display()
    )
}

fn count(s: &Session, rule: &str, tok: &str) -> usize {
    s.alerts()
        .iter()
        .filter(|a| a.rule == rule && a.mentions(tok))
        .count()
}

fn metrics(port: u16) -> Vec<Sample> {
    let (code, body) = http_get(port, "/metrics");
    assert_eq!(code, 200, "/metrics: {body}");
    parse_metrics(&body).unwrap_or_else(|e| panic!("/metrics does not parse: {e}\n{body}"))
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    match find(samples, name, labels).as_slice() {
        [one] => one.value,
        other => panic!("expected one {name}{labels:?}, found {other:?}"),
    }
}

#[test]
#[ignore = "needs root"]
fn bad_sighup_reload_keeps_the_old_rules_and_a_good_one_swaps_them() {
    require_live("bad_sighup_reload_keeps_the_old_rules_and_a_good_one_swaps_them");
    let _g = probe_lock();
    let tok = token("reload");
    let dir = Scratch::new(&tok);
    let trigger = dir.file("trigger");
    std::fs::write(&trigger, "x").expect("trigger file");
    let rules = dir.file("rules.yaml");
    std::fs::write(&rules, rule("Reload rule A", &trigger)).expect("rules");
    let port = free_port();
    let cfg = dir.file("saker.yaml");
    std::fs::write(
        &cfg,
        format!(
            "rules_files:\n  - {}\njson_output: true\nwatch_config_files: false\n\
             metrics:\n  enabled: true\nwebserver:\n  enabled: true\n  \
             listen_port: {port}\n  prometheus_metrics_enabled: true\n",
            rules.display()
        ),
    )
    .expect("config");
    let fire = || sh(&format!("cat {} >/dev/null; true", trigger.display()), &tok);

    let s = Session::start(&[OsStr::new("run"), OsStr::new("-c"), cfg.as_os_str()]);
    fire();
    s.wait_alerts("rule A", WAIT, |_| count(&s, "Reload rule A", &tok) >= 1);
    let m0 = metrics(port);
    assert_eq!(value(&m0, "saker_reloads_total", &[("result", "ok")]), 1.0);
    assert!(find(&m0, "saker_reloads_total", &[("result", "error")]).is_empty());
    let ts0 = value(&m0, "falcosecurity_falco_reload_timestamp_nanoseconds", &[]);
    assert!(ts0 > 0.0);

    // A broken condition: the reload fails and rule A keeps firing.
    std::fs::write(
        &rules,
        "- rule: Broken\n  desc: x\n  condition: evt.type = open and (fd.name = \n  \
         output: x\n  priority: NOTICE\n",
    )
    .expect("break rules");
    s.signal("HUP");
    s.wait_stderr(
        "saker: error: reload failed, keeping the running rules",
        1,
        WAIT,
    );
    let a_before = count(&s, "Reload rule A", &tok);
    fire();
    s.wait_alerts("rule A after the bad reload", WAIT, |_| {
        count(&s, "Reload rule A", &tok) > a_before
    });
    let m1 = metrics(port);
    assert_eq!(value(&m1, "saker_reloads_total", &[("result", "ok")]), 1.0);
    assert_eq!(
        value(&m1, "saker_reloads_total", &[("result", "error")]),
        1.0
    );
    assert_eq!(value(&m1, "saker_rules_loaded", &[]), 1.0);
    assert_eq!(
        value(&m1, "falcosecurity_falco_reload_timestamp_nanoseconds", &[]),
        ts0,
        "a failed reload must not move the reload timestamp"
    );

    // A good file with a different rule: B replaces A.
    std::fs::write(&rules, rule("Reload rule B", &trigger)).expect("fix rules");
    s.signal("HUP");
    s.wait_stderr("saker: reloaded: 1 rules", 1, WAIT);
    let a_after = count(&s, "Reload rule A", &tok);
    fire();
    s.wait_alerts("rule B after the good reload", WAIT, |_| {
        count(&s, "Reload rule B", &tok) >= 1
    });
    let m2 = metrics(port);
    assert_eq!(
        value(&m2, "saker_reloads_total", &[("result", "ok")]),
        1.0 + 1.0
    );
    assert_eq!(
        value(&m2, "saker_reloads_total", &[("result", "error")]),
        1.0
    );
    assert!(value(&m2, "falcosecurity_falco_reload_timestamp_nanoseconds", &[]) > ts0);

    let fin = s.stop();
    assert!(fin.status.success(), "{}", fin.stderr_text());
    let ours = fin.alerts_mentioning(&tok);
    assert_eq!(
        ours.iter().filter(|a| a.rule == "Reload rule A").count(),
        a_after,
        "rule A fired after it was replaced: {ours:#?}"
    );
    let b = ours.iter().find(|a| a.rule == "Reload rule B").unwrap();
    assert_eq!(b.field("proc.name").as_deref(), Some("cat"));
    assert_eq!(b.field("fd.name"), Some(trigger.display().to_string()));
    assert_eq!(b.priority, "Notice");
}
