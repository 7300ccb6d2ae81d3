//! HTTP output against a real local listener.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use common::*;
use saker_outputs::{Metrics, Outputs};
use saker_rules::Priority;

#[derive(Default)]
struct Got {
    bodies: Vec<String>,
    headers: Vec<HeaderMap>,
}

async fn collect(State(g): State<Arc<Mutex<Got>>>, h: HeaderMap, body: String) -> &'static str {
    let mut g = g.lock().unwrap();
    g.bodies.push(body);
    g.headers.push(h);
    "ok"
}

fn start_listener(rt: &tokio::runtime::Runtime, port: u16) -> Arc<Mutex<Got>> {
    let got = Arc::new(Mutex::new(Got::default()));
    let app = Router::new()
        .route("/", post(collect))
        .with_state(got.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
        .unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    got
}

/// The checks Falcosidekick's `Check()` makes on `POST /`.
fn assert_sidekick_valid(body: &str) -> serde_json::Value {
    let v: serde_json::Value = serde_json::from_str(body).expect("valid JSON");
    let prio = v["priority"].as_str().unwrap().to_ascii_lowercase();
    assert!([
        "emergency",
        "alert",
        "critical",
        "error",
        "warning",
        "notice",
        "informational",
        "debug"
    ]
    .contains(&prio.as_str()));
    assert!(!v["rule"].as_str().unwrap().is_empty());
    let t = v["time"].as_str().unwrap();
    assert_eq!(t.len(), 30, "{t}");
    assert!(
        t.ends_with('Z') && &t[10..11] == "T" && &t[19..20] == ".",
        "{t}"
    );
    assert!(!v["output_fields"].as_object().unwrap().is_empty());
    assert_eq!(v["source"], "syscall");
    assert_eq!(v["hostname"], "test-host");
    v
}

#[test]
fn http_posts_falcosidekick_payloads() {
    let rt = test_runtime();
    let port = free_port();
    let got = start_listener(&rt, port);
    let mut cfg = quiet_config();
    cfg.json_output = true;
    cfg.http_output.enabled = true;
    cfg.http_output.url = format!("http://127.0.0.1:{port}/");
    cfg.http_output.user_agent = "saker-test/1".into();
    cfg.http_output
        .custom_headers
        .insert("X-Api-Key".into(), "k1".into());
    cfg.http_output.min_priority = Some(Priority::Notice);
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    assert_eq!(out.output_names(), vec!["http"]);
    for i in 0..5 {
        out.send(Arc::new(alert(i, "Shell in container", Priority::Warning)));
    }
    // Below min_priority: not posted.
    out.send(Arc::new(alert(99, "Debug rule", Priority::Debug)));
    assert!(out.shutdown(Duration::from_secs(10)).in_time);
    let g = got.lock().unwrap();
    assert_eq!(g.bodies.len(), 5);
    let mut seqs: Vec<u64> = g
        .bodies
        .iter()
        .map(|b| {
            assert_sidekick_valid(b)["output_fields"]["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    seqs.sort();
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    let v: serde_json::Value = serde_json::from_str(&g.bodies[0]).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["mitre_execution", "shell"]));
    let h = &g.headers[0];
    assert_eq!(h["content-type"], "application/json");
    assert_eq!(h["user-agent"], "saker-test/1");
    assert_eq!(h["x-api-key"], "k1");
    assert_eq!(
        metric_value(&metrics, "saker_output_sent_total{output=\"http\"}"),
        5.0
    );
}

/// The sink is down, then comes back: queued alerts are retried and
/// delivered, the overflow is counted as dropped, and `send` never waited.
#[test]
fn http_down_then_up_retries_and_counts_drops() {
    let rt = test_runtime();
    let port = free_port();
    let mut cfg = quiet_config();
    cfg.json_output = true;
    cfg.outputs_queue.capacity = 5;
    cfg.http_output.enabled = true;
    cfg.http_output.url = format!("http://127.0.0.1:{port}/");
    cfg.http_output.retries = 50;
    cfg.http_output.backoff_ms = 20;
    cfg.http_output.timeout_ms = 500;
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    for i in 0..50 {
        out.send(Arc::new(alert(i, "Flood", Priority::Error)));
    }
    // All 50 sends returned while nothing listens: at most the queue (5) plus
    // the one alert in flight can be pending, the rest was dropped.
    let drops = metric_value(&metrics, "saker_output_drops_total{output=\"http\"}");
    assert!(drops >= 44.0, "drops {drops}");
    assert_eq!(
        metric_value(
            &metrics,
            "falcosecurity_falco_outputs_queue_num_drops_total"
        ),
        drops
    );
    std::thread::sleep(Duration::from_millis(300));
    let got = start_listener(&rt, port);
    assert!(out.shutdown(Duration::from_secs(20)).in_time);
    let delivered = got.lock().unwrap().bodies.len() as f64;
    assert!(delivered >= 1.0);
    assert_eq!(delivered + drops, 50.0);
    assert!(metric_value(&metrics, "saker_output_retries_total{output=\"http\"}") >= 1.0);
    assert_eq!(
        metric_value(&metrics, "saker_output_failures_total{output=\"http\"}"),
        0.0
    );
}

/// Retries exhausted: the alert is dropped and counted as a failure.
#[test]
fn http_gives_up_after_retries() {
    let port = free_port();
    let mut cfg = quiet_config();
    cfg.http_output.enabled = true;
    cfg.http_output.url = format!("http://127.0.0.1:{port}/");
    cfg.http_output.retries = 2;
    cfg.http_output.backoff_ms = 10;
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    out.send(Arc::new(alert(1, "R", Priority::Error)));
    assert!(out.shutdown(Duration::from_secs(10)).in_time);
    assert_eq!(
        metric_value(&metrics, "saker_output_failures_total{output=\"http\"}"),
        1.0
    );
    assert_eq!(
        metric_value(&metrics, "saker_output_drops_total{output=\"http\"}"),
        1.0
    );
    assert_eq!(
        metric_value(&metrics, "saker_output_retries_total{output=\"http\"}"),
        2.0
    );
}

#[test]
fn http_bad_mtls_files_are_setup_errors() {
    let mut cfg = quiet_config();
    cfg.http_output.enabled = true;
    cfg.http_output.url = "https://127.0.0.1:1/".into();
    cfg.http_output.mtls = true;
    cfg.http_output.client_cert = "/nonexistent/c.crt".into();
    let e = Outputs::start(&cfg, Arc::new(Metrics::new()))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("http output: reading client_cert /nonexistent/c.crt"),
        "{e}"
    );
}

/// Requests received by the gzip test listener: headers and raw body.
type Gzipped = Arc<Mutex<Vec<(HeaderMap, Vec<u8>)>>>;

async fn collect_raw(
    State(g): State<Gzipped>,
    h: HeaderMap,
    body: axum::body::Bytes,
) -> &'static str {
    g.lock().unwrap().push((h, body.to_vec()));
    "ok"
}

/// `compress_uploads`: the body on the wire is gzip and decodes to the alert JSON.
#[test]
fn http_compress_uploads_sends_gzip() {
    use std::io::Read as _;
    let rt = test_runtime();
    let port = free_port();
    let got: Gzipped = Arc::default();
    let app = Router::new()
        .route("/", post(collect_raw))
        .with_state(got.clone());
    let listener = rt
        .block_on(tokio::net::TcpListener::bind(("127.0.0.1", port)))
        .unwrap();
    rt.spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut cfg = quiet_config();
    cfg.json_output = true;
    cfg.http_output.enabled = true;
    cfg.http_output.url = format!("http://127.0.0.1:{port}/");
    cfg.http_output.compress_uploads = true;
    let out = Outputs::start(&cfg, Arc::new(Metrics::new())).unwrap();
    out.send(Arc::new(alert(7, "Shell in container", Priority::Warning)));
    assert!(out.shutdown(Duration::from_secs(10)).in_time);
    let g = got.lock().unwrap();
    assert_eq!(g.len(), 1);
    let (h, body) = &g[0];
    assert_eq!(h["content-encoding"], "gzip");
    assert_eq!(&body[..2], &[0x1f, 0x8b], "gzip magic");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_string(&mut text)
        .unwrap();
    let v = assert_sidekick_valid(&text);
    assert_eq!(v["rule"], "Shell in container");
    assert_eq!(v["output_fields"]["seq"], 7);
}

#[test]
fn http_bad_ca_path_is_a_setup_error() {
    let mut cfg = quiet_config();
    cfg.http_output.enabled = true;
    cfg.http_output.url = "https://127.0.0.1:1/".into();
    cfg.http_output.ca_path = "/nonexistent/certs".into();
    let e = Outputs::start(&cfg, Arc::new(Metrics::new()))
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.starts_with("http output: http_output.ca_path /nonexistent/certs: "),
        "{e}"
    );
    // A directory without certificates is refused too.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("readme.txt"), "not a certificate").unwrap();
    cfg.http_output.ca_path = dir.path().display().to_string();
    let e = Outputs::start(&cfg, Arc::new(Metrics::new()))
        .err()
        .unwrap()
        .to_string();
    assert!(e.ends_with(": no PEM certificate in the directory"), "{e}");
}
