//! Issue #4 "Done when": a record→replay round trip of a live session gives the same alerts as
//! the live run. `saker run` and `saker capture` watch the same behaviour at the same time with
//! the same rules; `saker replay` of the capture must then report the same alerts.

mod common;

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::process::Command;
use std::time::Duration;

use common::*;

/// (rule, proc.name, proc.pname, fd.name, user.name) of the alerts that belong to the test.
type Key = (String, String, String, String, String);

fn keys(alerts: &[Alert], tok: &str) -> BTreeSet<Key> {
    let f = |a: &Alert, k: &str| a.field(k).unwrap_or_default();
    alerts
        .iter()
        .filter(|a| a.mentions(tok))
        .map(|a| {
            (
                a.rule.clone(),
                f(a, "proc.name"),
                f(a, "proc.pname"),
                f(a, "fd.name"),
                f(a, "user.name"),
            )
        })
        .collect()
}

#[test]
#[ignore = "needs root"]
fn replay_of_a_live_capture_gives_the_live_alerts() {
    require_live("replay_of_a_live_capture_gives_the_live_alerts");
    let _g = probe_lock();
    let tok = token("rt");
    let dir = Scratch::new(&tok);
    let port = tcp_listener();
    let rules = dir.file("e2e_rules.yaml");
    std::fs::write(&rules, behaviour_rules(&tok, port)).expect("write rules");
    let scap = dir.file("live.scap");

    let live = Session::start(&[
        OsStr::new("run"),
        OsStr::new("-o"),
        OsStr::new("json_output=true"),
        OsStr::new("-r"),
        rules.as_os_str(),
    ]);
    let cap = Session::start(&[
        OsStr::new("capture"),
        OsStr::new("-w"),
        scap.as_os_str(),
        OsStr::new("-r"),
        rules.as_os_str(),
    ]);
    perform_behaviours(&tok, &dir.path, port);
    live.wait_alerts("every behaviour alert", Duration::from_secs(30), |a| {
        BEHAVIOURS
            .iter()
            .all(|(r, _)| a.iter().any(|x| x.rule == *r && x.mentions(&tok)))
    });
    let cap_fin = cap.stop();
    let live_fin = live.stop();
    assert!(cap_fin.status.success(), "{}", cap_fin.stderr_text());
    assert!(live_fin.status.success(), "{}", live_fin.stderr_text());
    assert!(
        cap_fin
            .stderr
            .iter()
            .any(|l| l.starts_with("saker: captured ") && l.contains(" (0 dropped)")),
        "capture did not report a drop-free capture:\n{}",
        cap_fin.stderr_text()
    );

    let out = Command::new(saker_bin())
        .args(["replay", "-o", "json_output=true", "-r"])
        .arg(&rules)
        .arg(&scap)
        .output()
        .expect("run saker replay");
    let replay_err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "saker replay failed: {replay_err}");
    let replayed: Vec<Alert> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(Alert::parse)
        .collect();

    let live_keys = keys(&live_fin.alerts(), &tok);
    let replay_keys = keys(&replayed, &tok);
    // Every behaviour is in the live set, so equality below is not vacuous.
    for (rule, _) in BEHAVIOURS {
        assert!(
            live_keys.iter().any(|k| k.0 == rule),
            "live run missed '{rule}': {live_keys:#?}"
        );
    }
    assert_eq!(
        replay_keys, live_keys,
        "replayed alerts (left) differ from the live ones (right); replay stderr:\n{replay_err}"
    );
}
