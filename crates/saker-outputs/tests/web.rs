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
                ..Default::default()
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
    assert!(out.shutdown(Duration::from_secs(2)).in_time);
}

/// Outputs with a web server on a free loopback port, `webserver.*` at its defaults.
fn serve_with_default_options() -> (Outputs, std::net::SocketAddr) {
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&quiet_config(), metrics).unwrap();
    let addr = out
        .spawn_web(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(AtomicBool::new(true)),
            WebOptions::default(),
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
    let addr = saker_outputs::web_addr("127.0.0.1", 8765).unwrap();
    assert_eq!(addr.to_string(), "127.0.0.1:8765");
}

fn get_with(
    rt: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
    accept: Option<&str>,
) -> (u16, String, String) {
    rt.block_on(async {
        let mut req = client.get(url);
        if let Some(a) = accept {
            req = req.header("accept", a);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let ct = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default();
        (status, ct, r.text().await.unwrap())
    })
}

/// Every series the official Falco Grafana dashboard queries (../shared/falco-chart), read from
/// the dashboard itself, is on /metrics in the Prometheus text format a scraper asking for
/// `text/plain` gets; OpenMetrics otherwise.
#[test]
fn dashboard_series_and_format_negotiation() {
    let metrics = Arc::new(Metrics::new());
    let mut a = alert(1, "Terminal shell in container", Priority::Warning);
    a.output_fields.push((
        "k8s.pod.name".into(),
        saker_rules::OutputValue::Str("web-1".into()),
    ));
    a.output_fields.push((
        "k8s.ns.name".into(),
        saker_rules::OutputValue::Str("prod".into()),
    ));
    metrics.record_alert(&a);
    metrics.record_kernel_totals(0, 100, 3);
    metrics
        .record_buffer_drop_totals(&[("n_drops_buffer_open_exit", 2), ("n_drops_buffer_total", 2)]);
    metrics.falco_n_evts.inc_by(10);
    metrics.set_engine("modern_bpf", "syscall");
    metrics.record_state(&saker_outputs::metrics::StateSample {
        threads: 12,
        drops_full_threadtable: 1,
        ..Default::default()
    });
    metrics.record_process(&saker_outputs::metrics::ProcessSample::read(
        std::path::Path::new("/"),
    ));
    let server = saker_outputs::web::WebServer::start(
        "127.0.0.1:0".parse().unwrap(),
        metrics.clone(),
        Arc::new(AtomicBool::new(true)),
        WebOptions {
            prometheus: true,
            threadiness: 1,
            ..Default::default()
        },
    )
    .unwrap();
    let url = format!("http://{}/metrics", server.addr());
    let rt = test_runtime();
    let client = reqwest::Client::new();
    let (status, ct, body) = get_with(&rt, &client, &url, Some("text/plain;version=0.0.4"));
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    assert!(!body.contains("# EOF"));
    assert!(
        body.contains("# TYPE falcosecurity_scap_n_evts_total counter"),
        "{body}"
    );
    let dash = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/falco-chart/falco-dashboard.json"),
    )
    .unwrap();
    let mut series: Vec<String> = dash
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("falcosecurity_"))
        .map(str::to_string)
        .collect();
    series.sort();
    series.dedup();
    assert_eq!(series.len(), 14, "{series:?}");
    for s in &series {
        assert!(
            body.lines()
                .any(|l| l.starts_with(&format!("{s}{{")) || l.starts_with(&format!("{s} "))),
            "{s} has no sample:\n{body}"
        );
    }
    let mem = body
        .lines()
        .find(|l| l.starts_with("falcosecurity_falco_memory_rss_bytes "))
        .unwrap();
    let rss: f64 = mem.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(rss > 1e6, "the test process uses more than 1 MB: {mem}");
    assert!(body.contains("k8s_pod_name=\"web-1\""), "pod label");
    assert!(body.contains("k8s_ns_name=\"prod\""), "namespace label");
    assert!(body.contains("falcosecurity_scap_n_drops_buffer_total{dir=\"exit\",drop=\"open\"} 2"));
    let (_, ct, body) = get_with(&rt, &client, &url, None);
    assert!(ct.starts_with("application/openmetrics-text"), "{ct}");
    assert!(body.ends_with("# EOF\n"));
    // Groups switched off disappear.
    metrics.set_groups(saker_outputs::metrics::MetricGroups {
        resource_utilization: false,
        ..Default::default()
    });
    let (_, _, body) = get_with(&rt, &client, &url, None);
    assert!(!body.contains("falcosecurity_falco_memory_rss_bytes"));
    assert!(body.contains("falcosecurity_scap_n_evts_total"));
    let (status, _, v) = get_with(
        &rt,
        &client,
        &format!("http://{}/versions", server.addr()),
        None,
    );
    assert_eq!(status, 200);
    let v: serde_json::Value = serde_json::from_str(&v).unwrap();
    assert!(v["saker_version"].is_string());
}

/// `webserver.ssl_enabled`: HTTPS with Falco's single PEM (certificate and key); plain HTTP
/// to the same port fails.
#[test]
fn https_with_one_pem_file() {
    let dir = tempfile::tempdir().unwrap();
    let tls = saker_testkit::tls::self_signed(dir.path());
    let (pem, crt) = (tls.combined.clone(), tls.cert.clone());
    let server = saker_outputs::web::WebServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Metrics::new()),
        Arc::new(AtomicBool::new(true)),
        WebOptions {
            ssl_certificate: Some(pem.clone()),
            ..Default::default()
        },
    )
    .unwrap();
    let rt = test_runtime();
    // The self-signed test certificate is its own CA, which webpki refuses as a server
    // certificate: skip verification, the handshake itself is what is tested.
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    let port = server.addr().port();
    let (status, _, body) = get_with(
        &rt,
        &client,
        &format!("https://localhost:{port}/healthz"),
        None,
    );
    assert_eq!((status, body.as_str()), (200, "{\"status\": \"ok\"}"));
    let plain = rt.block_on(reqwest::get(format!("http://127.0.0.1:{port}/healthz")));
    assert!(
        plain.is_err(),
        "plain HTTP must not be served on the TLS port"
    );
    // A PEM without its key is refused at start with the file named.
    let e = saker_outputs::web::WebServer::start(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(Metrics::new()),
        Arc::new(AtomicBool::new(true)),
        WebOptions {
            ssl_certificate: Some(crt.clone()),
            ..Default::default()
        },
    )
    .err()
    .unwrap();
    assert!(e.to_string().contains("no private key"), "{e}");
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
