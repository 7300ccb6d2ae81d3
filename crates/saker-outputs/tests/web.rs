//! /metrics parsed with a Prometheus text parser; /healthz.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use saker_outputs::{Metrics, Outputs, WebOptions};
use saker_rules::Priority;

fn get(rt: &tokio::runtime::Runtime, url: &str) -> (u16, String, String) {
    rt.block_on(async {
        let r = reqwest::get(url).await.unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, ct, r.text().await.unwrap())
    })
}

#[test]
fn metrics_endpoint_parses_and_has_families() {
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&quiet_config(), metrics.clone()).unwrap();
    let health = Arc::new(AtomicBool::new(true));
    let addr = out
        .spawn_web(
            "127.0.0.1:0".parse().unwrap(),
            health.clone(),
            WebOptions {
                healthz_path: "/healthz".into(),
                prometheus: true,
            },
        )
        .unwrap();
    assert!(addr.ip().is_loopback());
    let mut a = alert(1, "Terminal shell in container", Priority::Warning);
    a.tags = vec!["container".into(), "T1059.004".into()];
    out.send(Arc::new(a.clone()));
    out.send(Arc::new(a));
    let open = metrics.event_counter("openat");
    open.inc();
    open.inc();
    metrics.inc_event("execve");
    metrics.record_kernel_totals(0, 100, 3);
    metrics.record_kernel_totals(0, 150, 5);
    metrics.add_kernel_drops(1, "main", 7);
    metrics.record_reload(true, 42, 1_700_000_000_000_000_000);
    metrics.record_reload(false, 0, 0);
    metrics.output_drop_counter("http").inc();
    metrics.add_buffer_drops("enter", "execve", 4);

    let rt = test_runtime();
    let (status, ct, body) = get(&rt, &format!("http://{addr}/metrics"));
    assert_eq!(status, 200);
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    let lines = body.lines().map(|l| Ok(l.to_string()));
    let scrape = prometheus_parse::Scrape::parse(lines).unwrap();
    let find = |name: &str, labels: &[(&str, &str)]| -> f64 {
        let s = scrape
            .samples
            .iter()
            .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .unwrap_or_else(|| panic!("no sample {name} {labels:?} in\n{body}"));
        match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("unexpected type"),
        }
    };
    assert_eq!(
        find(
            "falcosecurity_falco_rules_matches_total",
            &[
                ("rule_name", "Terminal shell in container"),
                ("priority", "4"),
                ("source", "syscall"),
                ("tag_container", "true"),
                ("tag_T1059_004", "true"),
            ]
        ),
        2.0
    );
    assert_eq!(
        find(
            "saker_alerts_total",
            &[
                ("rule", "Terminal shell in container"),
                ("priority", "Warning")
            ]
        ),
        2.0
    );
    assert_eq!(find("saker_events_total", &[("type", "openat")]), 2.0);
    assert_eq!(find("saker_events_total", &[("type", "execve")]), 1.0);
    assert_eq!(find("falcosecurity_scap_n_evts_total", &[]), 150.0);
    assert_eq!(
        find("falcosecurity_scap_n_drops_cpu_total", &[("cpu", "0")]),
        5.0
    );
    assert_eq!(
        find(
            "saker_kernel_drops_total",
            &[("cpu", "1"), ("buffer", "main")]
        ),
        7.0
    );
    assert_eq!(find("saker_rules_loaded", &[]), 42.0);
    assert_eq!(
        find(
            "falcosecurity_scap_n_drops_buffer_total",
            &[("dir", "enter"), ("drop", "execve")]
        ),
        4.0
    );
    assert_eq!(find("saker_reloads_total", &[("result", "ok")]), 1.0);
    assert_eq!(find("saker_reloads_total", &[("result", "error")]), 1.0);
    assert_eq!(find("saker_output_drops_total", &[("output", "http")]), 1.0);
    assert_eq!(
        find(
            "falcosecurity_falco_version_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );
    assert_eq!(
        find("falcosecurity_falco_reload_timestamp_nanoseconds", &[]),
        1_700_000_000_000_000_000f64
    );

    let (status, _, body) = get(&rt, &format!("http://{addr}/healthz"));
    assert_eq!((status, body.as_str()), (200, "{\"status\": \"ok\"}"));
    health.store(false, Ordering::Relaxed);
    let (status, _, _) = get(&rt, &format!("http://{addr}/healthz"));
    assert_eq!(status, 503);
    assert!(out.shutdown(Duration::from_secs(2)));
}

/// Outputs with a web server on a free loopback port, `webserver.*` at its defaults.
fn serve_with_default_options() -> (Outputs, std::net::SocketAddr) {
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&quiet_config(), metrics).unwrap();
    let addr = out
        .spawn_web(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(AtomicBool::new(true)),
            WebOptions::from_config(&saker_config::Config::default().webserver),
        )
        .unwrap();
    (out, addr)
}

#[test]
fn metrics_endpoint_off_unless_enabled() {
    let (_out, addr) = serve_with_default_options();
    let rt = test_runtime();
    assert_eq!(get(&rt, &format!("http://{addr}/metrics")).0, 404);
    assert_eq!(get(&rt, &format!("http://{addr}/healthz")).0, 200);
    let addr = saker_outputs::web_addr(&saker_config::Config::default().webserver).unwrap();
    assert_eq!(addr.to_string(), "127.0.0.1:8765");
}

#[test]
fn versions_endpoint_states_the_engine_version_for_falcoctl() {
    let (_out, addr) = serve_with_default_options();
    let rt = test_runtime();
    let (status, ct, body) = get(&rt, &format!("http://{addr}/versions"));
    assert_eq!(status, 200);
    assert_eq!(ct, "application/json");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    let (major, minor, patch) = saker_rules::load::ENGINE_VERSION;
    // falcoctl compares a rules artifact's `engine_version_semver` requirement with this value
    // (and the older integer `engine_version` with the minor); both must be strings.
    assert_eq!(
        v["engine_version_semver"],
        format!("{major}.{minor}.{patch}").as_str()
    );
    assert_eq!(v["engine_version"], minor.to_string().as_str());
    assert_eq!(v["saker_version"], env!("CARGO_PKG_VERSION"));
    // Falco's default rules need at least engine 0.57.0 (their required_engine_version).
    assert!((major, minor) >= (0, 57));
}
