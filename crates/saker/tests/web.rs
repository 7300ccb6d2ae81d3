//! Issue #6: the web server answers `/healthz`, and `/metrics` is valid Prometheus text with
//! events by type and alerts by rule and priority as labels.

mod common;

use std::time::{Duration, Instant};

use common::*;

#[test]
#[ignore = "needs root"]
fn healthz_and_metrics_with_events_and_alerts_as_labels() {
    require_live("healthz_and_metrics_with_events_and_alerts_as_labels");
    let _g = probe_lock();
    let tok = token("web");
    let dir = Scratch::new(&tok);
    let trigger = dir.file("trigger");
    std::fs::write(&trigger, "x").expect("trigger file");
    let rules = dir.file("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: Web test open\n  desc: web test\n  condition: >\n    \
             evt.type in (open, openat, openat2) and fd.name = {}\n  \
             output: \"opened proc.name=%proc.name fd.name=%fd.name\"\n  priority: ERROR\n",
            trigger.display()
        ),
    )
    .expect("rules");
    let port = free_port();
    let port_opt = format!("webserver.listen_port={port}");
    let s = Session::run(
        &rules,
        &[
            "json_output=true",
            "webserver.enabled=true",
            "webserver.prometheus_metrics_enabled=true",
            "metrics.enabled=true",
            &port_opt,
        ],
    );
    assert!(
        s.stderr_has(&format!("saker: web server on http://127.0.0.1:{port}")),
        "{:?}",
        s.stderr_lines()
    );
    let (code, body) = http_get(port, "/healthz");
    assert_eq!(code, 200, "/healthz: {body}");
    let (code, _) = http_get(port, "/no-such-path");
    assert_eq!(code, 404);

    sh(&format!("cat {} >/dev/null; true", trigger.display()), &tok);
    s.wait_alerts("the alert", Duration::from_secs(30), |a| {
        a.iter()
            .any(|x| x.rule == "Web test open" && x.mentions(&tok))
    });
    // Event counters are flushed into the metrics once a second.
    let deadline = Instant::now() + Duration::from_secs(20);
    let samples = loop {
        let (code, body) = http_get(port, "/metrics");
        assert_eq!(code, 200, "/metrics: {body}");
        let samples =
            parse_metrics(&body).unwrap_or_else(|e| panic!("/metrics does not parse: {e}\n{body}"));
        let has_events = find(&samples, "saker_events_total", &[("type", "openat")])
            .iter()
            .any(|x| x.value >= 1.0);
        if has_events || Instant::now() > deadline {
            break samples;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    let ev = find(&samples, "saker_events_total", &[("type", "openat")]);
    assert!(
        ev.len() == 1 && ev[0].value >= 1.0,
        "no openat event counter: {ev:?}"
    );
    // Events by type are labels of one family, not one family per type.
    assert!(!samples
        .iter()
        .any(|x| x.name.starts_with("saker_events_openat")));
    let al = find(
        &samples,
        "saker_alerts_total",
        &[("rule", "Web test open"), ("priority", "Error")],
    );
    assert!(
        al.len() == 1 && al[0].value >= 1.0,
        "no alert counter for the rule: {al:?}"
    );
    let fm = find(
        &samples,
        "falcosecurity_falco_rules_matches_total",
        &[("rule_name", "Web test open"), ("source", "syscall")],
    );
    assert!(fm.len() == 1 && fm[0].value >= 1.0, "{fm:?}");
    assert_eq!(find(&samples, "saker_rules_loaded", &[])[0].value, 1.0);
    assert!(!find(&samples, "falcosecurity_scap_n_evts_total", &[]).is_empty());

    let fin = s.stop();
    assert!(fin.status.success(), "{}", fin.stderr_text());
}

#[test]
fn metrics_parser_accepts_good_and_rejects_bad_text() {
    let good = "# HELP a_total A.\n# TYPE a counter\na_total{rule=\"x \\\"y\\\"\",p=\"1\"} 3\n\
                # TYPE g gauge\ng 1.5e3\n# EOF\n";
    let s = parse_metrics(good).expect("valid exposition");
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].labels.get("rule").map(String::as_str), Some("x \"y\""));
    assert_eq!(s[1].value, 1500.0);
    for bad in [
        "a_total 1\n",
        "# TYPE a counter\na_total{rule=x} 1\n",
        "# TYPE a counter\na_total{rule=\"x\"} one\n",
        "# TYPE a counter\na_total{1x=\"x\"} 1\n",
        "# TYPE a counter\n# EOF\na_total 1\n",
        "# TYPE a counter\na_total 1 2 3\n",
    ] {
        assert!(parse_metrics(bad).is_err(), "accepted {bad:?}");
    }
}
