//! stdout-free local outputs: syslog socket, file, program; priority filters
//! and rate limits.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use saker_outputs::{Metrics, Outputs};
use saker_rules::Priority;

#[test]
fn syslog_datagrams_carry_priority() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("log.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut cfg = quiet_config();
    cfg.syslog_output.enabled = true;
    cfg.syslog_output.path = path.clone();
    cfg.syslog_output.facility = 4;
    let out = Outputs::start(&cfg, Arc::new(Metrics::new())).unwrap();
    out.send(Arc::new(alert(1, "R1", Priority::Warning)));
    out.send(Arc::new(alert(2, "R2", Priority::Critical)));
    assert!(out.shutdown(Duration::from_secs(5)).in_time);
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    for _ in 0..2 {
        let n = sock.recv(&mut buf).unwrap();
        got.push(String::from_utf8_lossy(&buf[..n]).to_string());
    }
    // facility auth (4) * 8 + severity.
    assert!(got[0].starts_with("<36>"), "{}", got[0]);
    assert!(got[1].starts_with("<34>"), "{}", got[1]);
    let pid = std::process::id();
    assert!(got[0].contains(&format!(
        " saker[{pid}]: 12:00:00.000000001: Warning Alert number 1 (user=root proc=sh)"
    )));
    assert!(
        got[1].ends_with("Critical Alert number 2 (user=root proc=sh)"),
        "{}",
        got[1]
    );
    // "<36>May  1 12:00:00 " — month, space-padded day, time.
    assert_eq!(
        &got[0][4..5].chars().next().unwrap().is_ascii_uppercase(),
        &true
    );
    assert_eq!(&got[0][19..20], " ");
}

#[test]
fn syslog_without_daemon_counts_failures() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = quiet_config();
    cfg.syslog_output.enabled = true;
    cfg.syslog_output.path = dir.path().join("absent.sock");
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    out.send(Arc::new(alert(1, "R1", Priority::Warning)));
    assert!(out.shutdown(Duration::from_secs(5)).in_time);
    assert_eq!(
        metric_value(&metrics, "saker_output_failures_total{output=\"syslog\"}"),
        1.0
    );
}

fn file_lines(keep_alive: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.txt");
    let mut cfg = quiet_config();
    cfg.json_output = true;
    cfg.file_output.enabled = true;
    cfg.file_output.keep_alive = keep_alive;
    cfg.file_output.filename = path.display().to_string();
    cfg.file_output.min_priority = Some(Priority::Error);
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    for i in 0..3 {
        out.send(Arc::new(alert(i, "R", Priority::Critical)));
    }
    out.send(Arc::new(alert(9, "R", Priority::Warning)));
    assert!(out.shutdown(Duration::from_secs(5)).in_time);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    for (i, l) in lines.iter().enumerate() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert_eq!(v["output_fields"]["seq"], i as u64);
        assert_eq!(v["priority"], "Critical");
        assert!(l.starts_with("{\"hostname\":\"test-host\",\"output\":"));
    }
    // Three alerts were counted (matches), the Warning one too.
    assert_eq!(
        metric_value(
            &metrics,
            "saker_alerts_total{rule=\"R\",priority=\"Critical\"}"
        ),
        3.0
    );
    assert_eq!(
        metric_value(&metrics, "saker_output_sent_total{output=\"file\"}"),
        3.0
    );
}

#[test]
fn file_output_reopen_per_alert() {
    file_lines(false);
}

#[test]
fn file_output_keep_alive() {
    file_lines(true);
}

/// Alert text with shell metacharacters reaches the program on stdin only.
fn program_gets_stdin(keep_alive: bool) {
    let dir = tempfile::tempdir().unwrap();
    let sink = dir.path().join("out.txt");
    let pwned = dir.path().join("pwned");
    let mut cfg = quiet_config();
    cfg.program_output.enabled = true;
    cfg.program_output.keep_alive = keep_alive;
    cfg.program_output.program = format!("cat >> '{}'", sink.display());
    let out = Outputs::start(&cfg, Arc::new(Metrics::new())).unwrap();
    let mut a = alert(1, "R", Priority::Warning);
    a.output = format!(
        "12:00:00.000000001: Warning x $(touch {0}) `touch {0}`; touch {0}",
        pwned.display()
    );
    out.send(Arc::new(a.clone()));
    out.send(Arc::new(alert(2, "R", Priority::Warning)));
    assert!(out.shutdown(Duration::from_secs(5)).in_time);
    let text = std::fs::read_to_string(&sink).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        vec![
            a.output.as_str(),
            "12:00:00.000000001: Warning Alert number 2 (user=root proc=sh)"
        ]
    );
    assert!(!pwned.exists(), "alert text was executed");
}

#[test]
fn program_output_per_alert() {
    program_gets_stdin(false);
}

#[test]
fn program_output_keep_alive() {
    program_gets_stdin(true);
}

#[test]
fn per_rule_rate_limit_suppresses_and_counts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.txt");
    let mut cfg = quiet_config();
    cfg.file_output.enabled = true;
    cfg.file_output.filename = path.display().to_string();
    cfg.outputs.per_rule_rate = 0.001;
    cfg.outputs.per_rule_max_burst = 2;
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    for i in 0..10 {
        out.send(Arc::new(alert(i, "Noisy", Priority::Warning)));
    }
    out.send(Arc::new(alert(100, "Quiet", Priority::Warning)));
    assert!(out.shutdown(Duration::from_secs(5)).in_time);
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 3);
    assert_eq!(
        metric_value(&metrics, "saker_alerts_suppressed_total{rule=\"Noisy\"}"),
        8.0
    );
    // Matches are counted before the limit: the rule did fire 10 times.
    assert_eq!(
        metric_value(
            &metrics,
            "saker_alerts_total{rule=\"Noisy\",priority=\"Warning\"}"
        ),
        10.0
    );
}

/// After a rename (log rotation) and `reopen_files`, a kept-open file is
/// recreated at its path.
#[test]
fn file_keep_alive_reopens_on_request() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.txt");
    let rotated = dir.path().join("events.txt.1");
    let mut cfg = quiet_config();
    cfg.file_output.enabled = true;
    cfg.file_output.keep_alive = true;
    cfg.file_output.filename = path.display().to_string();
    let out = Outputs::start(&cfg, Arc::new(Metrics::new())).unwrap();
    out.send(Arc::new(alert(1, "R", Priority::Warning)));
    let t0 = std::time::Instant::now();
    while std::fs::read_to_string(&path)
        .map(|s| s.lines().count())
        .unwrap_or(0)
        < 1
    {
        assert!(t0.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(10));
    }
    std::fs::rename(&path, &rotated).unwrap();
    out.reopen_files();
    out.send(Arc::new(alert(2, "R", Priority::Warning)));
    assert!(out.shutdown(Duration::from_secs(5)).in_time);
    assert!(std::fs::read_to_string(&rotated)
        .unwrap()
        .contains("Alert number 1"));
    let new = std::fs::read_to_string(&path).unwrap();
    assert_eq!(new.lines().count(), 1);
    assert!(new.contains("Alert number 2"));
}
