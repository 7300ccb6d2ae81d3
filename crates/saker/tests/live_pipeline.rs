//! Issue #4 "Done when": `saker run` with the live probe sees real behaviour (a shell spawn, a
//! read of /etc/shadow, a write below /etc, a symlink to /etc, unshare, setns, chmod, connect)
//! and prints alerts with the right process, parent, file and user fields.

mod common;

use std::ffi::OsStr;

use common::*;

#[test]
#[ignore = "needs root"]
fn live_alerts_carry_process_parent_file_and_user() {
    require_live("live_alerts_carry_process_parent_file_and_user");
    let _g = probe_lock();
    let tok = token("live");
    let dir = Scratch::new(&tok);
    let port = tcp_listener();
    let rules = dir.file("e2e_rules.yaml");
    std::fs::write(&rules, behaviour_rules(&tok, port)).expect("write rules");
    let builtin = repo_root().join("rules/saker_rules.yaml");

    // The built-in rules plus the test's own, in one session; with Falco's default
    // `rule_matching: first` a built-in match would hide ours, so every match is reported.
    let s = Session::start(&[
        OsStr::new("run"),
        OsStr::new("-o"),
        OsStr::new("rule_matching=all"),
        OsStr::new("-o"),
        OsStr::new("json_output=true"),
        OsStr::new("-r"),
        builtin.as_os_str(),
        OsStr::new("-r"),
        rules.as_os_str(),
    ]);
    behave_and_wait(&s, &tok, &dir.path, port);
    let fin = s.stop();
    assert!(
        fin.status.success(),
        "saker run exited with {}:\n{}",
        fin.status,
        fin.stderr_text()
    );

    // Auto (engine.workers 0) keeps live detection on one thread.
    assert!(
        !fin.stderr
            .iter()
            .any(|l| l.contains("reading the probe on its own thread")),
        "{}",
        fin.stderr_text()
    );
    // Stats on stderr at shutdown, with a non-zero number of processed events.
    stop_counts(&fin);
    // Per-rule counts follow the stats line; our rules fired, so they are listed.
    assert!(
        fin.stderr.iter().any(|l| l.contains("E2E shadow opened")),
        "no per-rule count for 'E2E shadow opened':\n{}",
        fin.stderr_text()
    );

    let alerts = fin.alerts();
    let ours: Vec<&Alert> = alerts.iter().filter(|a| a.mentions(&tok)).collect();
    let dump = || {
        ours.iter()
            .map(|a| format!("  [{}] {:?}", a.rule, a.fields))
            .collect::<Vec<_>>()
            .join("\n")
    };
    for (rule, pname) in BEHAVIOURS {
        let hits: Vec<&&Alert> = ours.iter().filter(|a| a.rule == rule).collect();
        assert!(!hits.is_empty(), "'{rule}' did not fire; ours:\n{}", dump());
        for a in &hits {
            assert_eq!(
                a.field("proc.name").as_deref(),
                Some(pname),
                "{rule}: {a:?}"
            );
            assert_eq!(
                a.field("proc.pname").as_deref(),
                Some("sh"),
                "{rule}: {a:?}"
            );
            assert_eq!(
                a.field("user.name").as_deref(),
                Some("root"),
                "{rule}: {a:?}"
            );
            assert_eq!(a.priority, "Warning", "{rule}: {a:?}");
            assert_eq!(a.raw["source"], "syscall", "{rule}: {a:?}");
            assert_eq!(a.raw["tags"], serde_json::json!(["e2e"]), "{rule}: {a:?}");
        }
    }
    let one = |rule: &str| -> &Alert { ours.iter().find(|a| a.rule == rule).unwrap() };
    assert_eq!(
        one("E2E shadow opened").field("fd.name").as_deref(),
        Some("/etc/shadow")
    );
    assert_eq!(
        one("E2E write below etc").field("fd.name"),
        Some(format!("/etc/{tok}.conf"))
    );
    assert_eq!(
        one("E2E symlink to etc").field("evt.arg.target").as_deref(),
        Some("/etc/shadow")
    );
    assert_eq!(
        one("E2E chmod").field("evt.arg.filename"),
        Some(format!("{}/f", dir.path.display()))
    );
    let conn = one("E2E connect").field("fd.name").unwrap_or_default();
    assert!(
        conn.starts_with("127.0.0.1:") && conn.ends_with(&format!("->127.0.0.1:{port}")),
        "connect fd.name {conn:?}"
    );
    // Exactly one shell was spawned under the token (the inner `sh -c true`).
    assert_eq!(
        ours.iter()
            .filter(|a| a.rule == "E2E shell spawned")
            .count(),
        1,
        "{}",
        dump()
    );

    // The built-in ruleset catches the /etc/shadow read too.
    let builtin_hit = ours
        .iter()
        .find(|a| a.rule == "Sensitive file read by untrusted program")
        .unwrap_or_else(|| panic!("built-in rule did not fire; ours:\n{}", dump()));
    assert_eq!(builtin_hit.field("proc.name").as_deref(), Some("cat"));
    assert_eq!(builtin_hit.field("fd.name").as_deref(), Some("/etc/shadow"));
    assert_eq!(builtin_hit.field("user.name").as_deref(), Some("root"));
}

/// The counts of the `stopped.` line (seen, dropped, processed, kept in the kernel), checked
/// for consistency: events were seen and processed, never more processed than seen.
fn stop_counts(fin: &Finished) -> [u64; 4] {
    let stats = fin
        .stderr
        .iter()
        .find(|l| l.starts_with("saker: stopped. Syscall events: "))
        .unwrap_or_else(|| panic!("no stats line:\n{}", fin.stderr_text()));
    let nums: Vec<u64> = stats
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let nums: [u64; 4] = nums
        .try_into()
        .unwrap_or_else(|n| panic!("stats line {stats:?}: {n:?}"));
    assert!(nums[0] > 0 && nums[2] > 0, "no events counted: {stats:?}");
    assert!(nums[2] <= nums[0] + nums[1], "processed > seen: {stats:?}");
    nums
}

/// `engine.workers: 2` live: the probe is built and read on a thread of its own (said on
/// stderr), and every behaviour still alerts with its process, parent and file, which the
/// state on the main thread can only give when the split hands it every event in order. The
/// stop line's counts come through the probe's control handle after that thread is gone.
#[test]
#[ignore = "needs root"]
fn live_run_with_engine_workers_2_reads_the_probe_on_its_own_thread() {
    require_live("live_run_with_engine_workers_2_reads_the_probe_on_its_own_thread");
    let _g = probe_lock();
    let tok = token("live2");
    let dir = Scratch::new(&tok);
    let port = tcp_listener();
    let rules = dir.file("e2e_rules.yaml");
    std::fs::write(&rules, behaviour_rules(&tok, port)).expect("write rules");
    let s = Session::run(
        &rules,
        &["engine.workers=2", "rule_matching=all", "json_output=true"],
    );
    assert!(
        s.stderr_has("saker: reading the probe on its own thread; state and rules on this one (engine.workers=2)"),
        "{}",
        s.stderr_lines().join("\n")
    );
    behave_and_wait(&s, &tok, &dir.path, port);
    let fin = s.stop();
    assert!(fin.status.success(), "{}", fin.stderr_text());
    let [_, _, processed, _] = stop_counts(&fin);
    let alerts = fin.alerts();
    let ours: Vec<&Alert> = alerts.iter().filter(|a| a.mentions(&tok)).collect();
    assert!(processed >= ours.len() as u64, "{}", fin.stderr_text());
    for (rule, pname) in BEHAVIOURS {
        let a = ours
            .iter()
            .find(|a| a.rule == rule)
            .unwrap_or_else(|| panic!("'{rule}' did not fire"));
        assert_eq!(a.field("proc.name").as_deref(), Some(pname), "{a:?}");
        assert_eq!(a.field("proc.pname").as_deref(), Some("sh"), "{a:?}");
    }
    let shadow = ours.iter().find(|a| a.rule == "E2E shadow opened").unwrap();
    assert_eq!(shadow.field("fd.name").as_deref(), Some("/etc/shadow"));
}

/// A reload with the probe on its own thread: the new rules replace the old, and the kernel's
/// prefilter follows them through the control handle (the new rule's path was kept in the
/// kernel before the reload: without the update its open would never arrive).
#[test]
#[ignore = "needs root"]
fn live_reload_with_engine_workers_2_updates_rules_and_prefilter() {
    require_live("live_reload_with_engine_workers_2_updates_rules_and_prefilter");
    let _g = probe_lock();
    let tok = token("reload2");
    let dir = Scratch::new(&tok);
    let rule = |name: &str, path: &std::path::Path| {
        format!(
            "- rule: {name}\n  desc: reload test\n  condition: >\n    \
             evt.type in (open, openat, openat2) and fd.name = {}\n  \
             output: \"{name} proc.name=%proc.name fd.name=%fd.name\"\n  priority: NOTICE\n",
            path.display()
        )
    };
    let (ta, tb) = (dir.file("trigger-a"), dir.file("trigger-b"));
    std::fs::write(&ta, "a").expect("trigger a");
    std::fs::write(&tb, "b").expect("trigger b");
    let rules = dir.file("rules.yaml");
    std::fs::write(&rules, rule("Reload2 rule A", &ta)).expect("rules");
    let count = |s: &Session, r: &str| {
        s.alerts()
            .iter()
            .filter(|a| a.rule == r && a.mentions(&tok))
            .count()
    };
    let cat = |p: &std::path::Path| sh(&format!("cat {} >/dev/null; true", p.display()), &tok);
    let wait = std::time::Duration::from_secs(30);

    let s = Session::run(
        &rules,
        &[
            "engine.workers=2",
            "json_output=true",
            "watch_config_files=false",
        ],
    );
    assert!(s.stderr_has("reading the probe on its own thread"));
    assert!(
        s.stderr_has("prefilter on, 1 path patterns"),
        "{}",
        s.stderr_lines().join("\n")
    );
    cat(&ta);
    s.wait_alerts("rule A", wait, |_| count(&s, "Reload2 rule A") >= 1);

    std::fs::write(&rules, rule("Reload2 rule B", &tb)).expect("rules B");
    s.signal("HUP");
    s.wait_stderr("saker: reloaded: 1 rules", 1, wait);
    cat(&ta);
    cat(&tb);
    s.wait_alerts("rule B after the reload", wait, |_| {
        count(&s, "Reload2 rule B") >= 1
    });
    let fin = s.stop();
    assert!(fin.status.success(), "{}", fin.stderr_text());
    assert!(
        !fin.stderr_text().contains("prefilter not updated"),
        "{}",
        fin.stderr_text()
    );
    let ours = fin.alerts_mentioning(&tok);
    assert_eq!(
        ours.iter().filter(|a| a.rule == "Reload2 rule A").count(),
        1,
        "rule A fired after it was replaced: {ours:#?}"
    );
    let b = ours.iter().find(|a| a.rule == "Reload2 rule B").unwrap();
    assert_eq!(b.field("proc.name").as_deref(), Some("cat"));
    assert_eq!(b.field("fd.name"), Some(tb.display().to_string()));
    stop_counts(&fin);
}

/// Performs every behaviour and waits for each one's alert (naming `tok`).
fn behave_and_wait(s: &Session, tok: &str, dir: &std::path::Path, port: u16) {
    perform_behaviours(tok, dir, port);
    s.wait_alerts(
        "every behaviour alert",
        std::time::Duration::from_secs(30),
        |a| {
            BEHAVIOURS
                .iter()
                .all(|(r, _)| a.iter().any(|x| x.rule == *r && x.mentions(tok)))
        },
    );
}
