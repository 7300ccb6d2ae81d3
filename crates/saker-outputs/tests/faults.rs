//! Output faults against real endpoints on loopback (an HTTP listener, moto
//! for CloudWatch, a tmpfs): what is delivered, what is counted as dropped,
//! and the lines a user sees (captured from `tracing`).

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use common::cwproxy::{Proxy, PutCall};
use common::moto::{dummy_credentials, Moto};
use common::*;
use saker_outputs::{Metrics, Outputs, Reason};
use saker_rules::Priority;

type Bodies = Arc<Mutex<Vec<String>>>;

async fn collect(State(b): State<Bodies>, body: String) -> &'static str {
    b.lock().unwrap().push(body);
    "ok"
}

/// A webhook on `port` that records the bodies in arrival order.
fn http_sink(rt: &tokio::runtime::Runtime, port: u16) -> Bodies {
    let b = Bodies::default();
    let app = Router::new()
        .route("/", post(collect))
        .with_state(b.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
        .unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    b
}

fn seqs(bodies: &[String]) -> Vec<u64> {
    bodies
        .iter()
        .map(|b| {
            let v: serde_json::Value = serde_json::from_str(b).unwrap();
            v["output_fields"]["seq"].as_u64().unwrap()
        })
        .collect()
}

fn http_cfg(port: u16) -> saker_outputs::OutputsOptions {
    let mut cfg = quiet_config();
    cfg.json_output = true;
    cfg.http_output.enabled = true;
    cfg.http_output.url = format!("http://127.0.0.1:{port}/");
    cfg.http_output.retries = 2;
    cfg.http_output.backoff_ms = 10;
    cfg.http_output.timeout_ms = 1000;
    cfg
}

fn m(metrics: &Metrics, name: &str, output: &str) -> f64 {
    metric_value(metrics, &format!("{name}{{output=\"{output}\"}}"))
}

fn by_reason(metrics: &Metrics, output: &str, reason: &str) -> f64 {
    metric_value(
        metrics,
        &format!("saker_output_drops_by_reason_total{{output=\"{output}\",reason=\"{reason}\"}}"),
    )
}

/// Sum of N over the "<output> output: N alert(s) dropped (<why>)" lines.
fn logged_drops(output: &str, why: &str) -> u64 {
    let prefix = format!("{output} output: ");
    logs::lines()
        .iter()
        .filter(|l| l.contains(&format!("dropped ({why})")))
        .filter_map(|l| {
            let rest = &l[l.find(&prefix)? + prefix.len()..];
            let n: String = rest.chars().take_while(char::is_ascii_digit).collect();
            n.parse::<u64>().ok()
        })
        .sum()
}

/// Issue 14, point 3: each network output pointed at a closed port (syslog at a
/// missing socket) logs a line naming the output and the count, and counts it.
#[test]
fn every_network_output_at_a_closed_port_logs_and_counts() {
    let _l = logs::capture();
    dummy_credentials();
    let closed = free_port();
    let mut cfg = http_cfg(closed);
    let cw = &mut cfg.cloudwatch_output;
    cw.enabled = true;
    cw.log_group = "/saker/closed".into();
    cw.log_stream = "n1".into();
    cw.region = "us-east-1".into();
    cw.endpoint = format!("http://127.0.0.1:{closed}");
    cw.retries = 2;
    cw.backoff_ms = 10;
    cw.flush_interval_ms = 50;
    cw.metrics.enabled = true;
    cw.metrics.interval_s = 3600;
    cfg.syslog_output.enabled = true;
    cfg.syslog_output.path = "/nonexistent/saker-test/log".into();
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    for i in 0..3 {
        out.send(Arc::new(alert(i, "R", Priority::Error)));
    }
    let report = out.shutdown(Duration::from_secs(30));
    assert!(report.in_time);

    // http: each alert tried 3 times, then given up.
    assert_eq!(m(&metrics, "saker_output_failures_total", "http"), 3.0);
    assert_eq!(m(&metrics, "saker_output_drops_total", "http"), 3.0);
    assert_eq!(m(&metrics, "saker_output_retries_total", "http"), 6.0);
    assert_eq!(by_reason(&metrics, "http", "gave_up"), 3.0);
    assert!(
        !logs::matching(&["http output: delivery failing", "Connection refused"]).is_empty(),
        "{:#?}",
        logs::lines()
    );
    assert!(
        !logs::matching(&["http output: 1 alert dropped (delivery failed): 3 attempts"]).is_empty()
    );
    assert_eq!(logged_drops("http", "delivery failed"), 3);

    // cloudwatch: one batch of 3, given up once.
    assert_eq!(
        m(&metrics, "saker_output_failures_total", "cloudwatch"),
        1.0
    );
    assert_eq!(m(&metrics, "saker_output_drops_total", "cloudwatch"), 3.0);
    assert_eq!(by_reason(&metrics, "cloudwatch", "gave_up"), 3.0);
    assert_eq!(logged_drops("cloudwatch", "delivery failed"), 3);
    assert!(
        !logs::matching(&["cloudwatch output: delivery failing", "Connection refused"]).is_empty(),
        "{:#?}",
        logs::lines()
    );

    // The EMF stream: one record (rule R, Error) written at shutdown, given up.
    assert_eq!(
        m(&metrics, "saker_output_drops_total", "cloudwatch_metrics"),
        1.0
    );
    assert_eq!(logged_drops("cloudwatch_metrics", "delivery failed"), 1);

    // syslog: no daemon socket.
    assert_eq!(m(&metrics, "saker_output_failures_total", "syslog"), 3.0);
    assert_eq!(logged_drops("syslog", "delivery failed"), 3);
    assert!(!logs::matching(&[
        "syslog output:",
        "/nonexistent/saker-test/log",
        "No such file"
    ])
    .is_empty());

    // The exit summary has the same counts.
    let text = report.to_string();
    assert!(
        text.contains("saker: output http: 0 delivered, 3 dropped (3 delivery failed)\n"),
        "{text}"
    );
    assert!(
        text.contains("saker: output cloudwatch: 0 delivered, 3 dropped (3 delivery failed)\n"),
        "{text}"
    );
}

/// A full queue drops new alerts: counted in Falco's metric and per reason,
/// logged once at once and then with the count, and nothing waits.
#[test]
fn queue_full_drops_are_counted_and_logged_rate_limited() {
    let _l = logs::capture();
    let closed = free_port();
    let mut cfg = http_cfg(closed);
    cfg.outputs_queue.capacity = 5;
    cfg.http_output.retries = 1000;
    cfg.http_output.backoff_ms = 50;
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    let t0 = Instant::now();
    for i in 0..200 {
        out.send(Arc::new(alert(i, "Flood", Priority::Error)));
    }
    assert!(t0.elapsed() < Duration::from_millis(500), "send waited");
    let qf = by_reason(&metrics, "http", "queue_full");
    assert!(qf >= 190.0, "{qf}");
    assert_eq!(
        metric_value(
            &metrics,
            "falcosecurity_falco_outputs_queue_num_drops_total"
        ),
        qf
    );
    // The first drop is logged at once; the rest wait for the next report.
    assert_eq!(
        logs::matching(&["http output: 1 alert dropped (queue full)"]).len(),
        1
    );
    assert_eq!(logged_drops("http", "queue full"), 1);

    let t1 = Instant::now();
    let report = out.shutdown(Duration::from_millis(300));
    assert!(!report.in_time);
    assert!(t1.elapsed() < Duration::from_secs(2), "{:?}", t1.elapsed());
    let r = report.output("http").unwrap();
    assert_eq!(r.delivered, 0);
    assert_eq!(r.dropped[&Reason::QueueFull] as f64, qf);
    // What was queued or in flight at the deadline is dropped and said so.
    assert_eq!(r.dropped[&Reason::Shutdown] as f64, 200.0 - qf);
    assert_eq!(logged_drops("http", "queue full") as f64, qf);
    assert_eq!(
        logged_drops("http", "not delivered by the shutdown deadline") as f64,
        200.0 - qf
    );
    assert_eq!(m(&metrics, "saker_output_drops_total", "http"), 200.0);
}

/// With a spool the queue is on disk: an outage loses nothing (retries are
/// unlimited for a spooled output) and alerts arrive in the order raised.
#[test]
fn spool_keeps_alerts_through_an_outage_in_order() {
    let _l = logs::capture();
    let rt = test_runtime();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = http_cfg(port);
    cfg.outputs_queue.capacity = 5;
    cfg.outputs_queue.spool_dir = dir.path().display().to_string();
    cfg.http_output.retries = 0;
    cfg.http_output.backoff_ms = 20;
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    for i in 0..300 {
        out.send(Arc::new(alert(i, "R", Priority::Warning)));
    }
    assert!(m(&metrics, "saker_output_spool_bytes", "http") > 10_000.0);
    std::thread::sleep(Duration::from_millis(1500));
    let got = http_sink(&rt, port);
    let report = out.shutdown(Duration::from_secs(30));
    assert!(report.in_time);
    assert_eq!(seqs(&got.lock().unwrap()), (0..300).collect::<Vec<_>>());
    assert_eq!(m(&metrics, "saker_output_drops_total", "http"), 0.0);
    assert_eq!(m(&metrics, "saker_output_sent_total", "http"), 300.0);
    assert_eq!(m(&metrics, "saker_output_queue_depth", "http"), 0.0);
    assert_eq!(m(&metrics, "saker_output_spool_bytes", "http"), 0.0);
    assert!(!logs::matching(&["http output: delivery failing", "Connection refused"]).is_empty());
    assert_eq!(
        logs::matching(&["http output: delivering again after"]).len(),
        1,
        "{:#?}",
        logs::lines()
    );
    assert_eq!(
        report.to_string(),
        "saker: output http: 300 delivered, 0 dropped\n"
    );
}

/// What the spool holds at exit stays there and goes out first after a restart.
#[test]
fn spool_outlives_a_restart() {
    let _l = logs::capture();
    let rt = test_runtime();
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = http_cfg(port);
    cfg.outputs_queue.spool_dir = dir.path().display().to_string();
    {
        let out = Outputs::start(&cfg, Arc::new(Metrics::new())).unwrap();
        for i in 0..50 {
            out.send(Arc::new(alert(i, "R", Priority::Warning)));
        }
        let report = out.shutdown(Duration::from_millis(300));
        assert!(!report.in_time);
        let r = report.output("http").unwrap();
        assert_eq!((r.delivered, r.dropped_total(), r.spooled), (0, 0, 50));
        assert!(
            report
                .to_string()
                .ends_with("0 dropped, 50 kept in the spool for the next start\n"),
            "{report}"
        );
    }
    let got = http_sink(&rt, port);
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    assert_eq!(
        logs::matching(&[
            "http output: 50 alerts (",
            "left in the spool",
            "by a previous run"
        ])
        .len(),
        1,
        "{:#?}",
        logs::lines()
    );
    for i in 50..60 {
        out.send(Arc::new(alert(i, "R", Priority::Warning)));
    }
    assert!(out.shutdown(Duration::from_secs(30)).in_time);
    assert_eq!(seqs(&got.lock().unwrap()), (0..60).collect::<Vec<_>>());
    assert_eq!(m(&metrics, "saker_output_sent_total", "http"), 60.0);
}

/// The spool's size cap holds; alerts beyond it are dropped, counted and logged.
#[test]
fn spool_cap_drops_are_counted() {
    let _l = logs::capture();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = http_cfg(free_port());
    cfg.outputs_queue.spool_dir = dir.path().display().to_string();
    cfg.outputs_queue.spool_max_bytes = 65_536;
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    for i in 0..2000 {
        out.send(Arc::new(alert(i, "R", Priority::Warning)));
    }
    let full = by_reason(&metrics, "http", "spool_full");
    assert!(full > 1000.0, "{full}");
    assert!(m(&metrics, "saker_output_spool_bytes", "http") <= 65_536.0);
    assert_eq!(
        metric_value(
            &metrics,
            "falcosecurity_falco_outputs_queue_num_drops_total"
        ),
        full
    );
    let report = out.shutdown(Duration::from_millis(200));
    let r = report.output("http").unwrap();
    assert_eq!(r.dropped[&Reason::SpoolFull] as f64, full);
    assert_eq!(r.spooled as f64, 2000.0 - full);
    assert_eq!(logged_drops("http", "spool full") as f64, full);
    let on_disk: u64 = std::fs::read_dir(dir.path().join("http"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert!(on_disk <= 65_536 + 100, "{on_disk}");
}

/// The `seq` output field of each alert in a PutLogEvents call.
fn put_seqs(c: &PutCall) -> Vec<u64> {
    c.events()
        .iter()
        .map(|e| {
            let a: serde_json::Value =
                serde_json::from_str(e["message"].as_str().unwrap()).unwrap();
            a["output_fields"]["seq"].as_u64().unwrap()
        })
        .collect()
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !f() {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// CloudWatch throttles, then moto is stopped (connection errors) and started
/// again empty (the log group is gone): every alert is delivered, the
/// failures are on the log, and the stream is recreated.
#[test]
fn cloudwatch_survives_throttling_and_a_moto_restart() {
    let _l = logs::capture();
    dummy_credentials();
    let mut moto = Moto::start();
    let rt = test_runtime();
    let (proxy, pport) = Proxy::start(&rt, moto.port, 3);
    let mut cfg = quiet_config();
    cfg.json_output = true;
    let cw = &mut cfg.cloudwatch_output;
    cw.enabled = true;
    cw.log_group = "/saker/restart".into();
    cw.log_stream = "n1".into();
    cw.region = "us-east-1".into();
    cw.endpoint = format!("http://127.0.0.1:{pport}");
    cw.flush_interval_ms = 100;
    cw.backoff_ms = 50;
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    let sent = || m(&metrics, "saker_output_sent_total", "cloudwatch");
    for i in 0..20 {
        out.send(Arc::new(alert(i, "R", Priority::Error)));
    }
    wait_for("the first 20 alerts", Duration::from_secs(60), || {
        sent() == 20.0
    });
    assert!(
        !logs::matching(&["cloudwatch output: delivery failing", "ThrottlingException"]).is_empty(),
        "{:#?}",
        logs::lines()
    );

    moto.stop();
    for i in 20..40 {
        out.send(Arc::new(alert(i, "R", Priority::Error)));
    }
    wait_for(
        "a failed attempt while moto is down",
        Duration::from_secs(30),
        || proxy.calls().iter().any(|c| c.status == 502),
    );
    std::thread::sleep(Duration::from_secs(2));
    moto.restart();
    let report = out.shutdown(Duration::from_secs(60));
    assert!(report.in_time);
    assert_eq!(sent(), 40.0);
    assert_eq!(m(&metrics, "saker_output_drops_total", "cloudwatch"), 0.0);
    assert!(m(&metrics, "saker_output_retries_total", "cloudwatch") >= 4.0);
    let delivered: Vec<u64> = proxy
        .calls()
        .iter()
        .filter(|c| c.status == 200)
        .flat_map(put_seqs)
        .collect();
    assert_eq!(delivered, (0..40).collect::<Vec<_>>());
    assert!(!logs::matching(&["cloudwatch output: delivering again after"]).is_empty());
    assert_eq!(
        report.to_string(),
        "saker: output cloudwatch: 40 delivered, 0 dropped\n"
    );
}
