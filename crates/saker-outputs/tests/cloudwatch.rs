//! CloudWatch Logs output against a real moto server (started here), seen
//! through a small recording proxy that can also answer ThrottlingException.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::cwproxy::{Proxy, PutCall};
use common::moto::{dummy_credentials, Moto};
use common::*;
use saker_outputs::{Metrics, Outputs};
use saker_rules::Priority;

#[derive(Debug, Clone)]
struct Put {
    stream: String,
    events: usize,
    bytes: usize,
    sorted: bool,
    emf: bool,
    throttled: bool,
}

/// What the tests check of one PutLogEvents call.
fn put_of(c: &PutCall) -> Put {
    let evs = c.events();
    let ts: Vec<i64> = evs
        .iter()
        .map(|e| e["timestamp"].as_i64().unwrap())
        .collect();
    Put {
        stream: c.stream().to_string(),
        events: evs.len(),
        bytes: evs
            .iter()
            .map(|e| e["message"].as_str().unwrap().len() + 26)
            .sum(),
        sorted: ts.windows(2).all(|w| w[0] <= w[1]),
        emf: c.format.as_deref() == Some("json/emf"),
        throttled: c.throttled,
    }
}

fn puts(proxy: &Proxy) -> Vec<Put> {
    proxy.calls().iter().map(put_of).collect()
}

fn cw_config(endpoint_port: u16, group: &str) -> saker_outputs::OutputsOptions {
    let mut cfg = quiet_config();
    cfg.json_output = true;
    cfg.outputs_queue.capacity = 30_000;
    let cw = &mut cfg.cloudwatch_output;
    cw.enabled = true;
    cw.log_group = group.into();
    cw.log_stream = "node-1".into();
    cw.region = "us-east-1".into();
    cw.endpoint = format!("http://127.0.0.1:{endpoint_port}");
    // Only the API limits and shutdown cut batches, so batch sizes are deterministic.
    cw.flush_interval_ms = 600_000;
    cw.backoff_ms = 20;
    cfg
}

/// Reads a whole stream back through the SDK (GetLogEvents, paginated).
fn read_stream(
    rt: &tokio::runtime::Runtime,
    moto_port: u16,
    group: &str,
    stream: &str,
) -> Vec<String> {
    rt.block_on(async {
        let sdk = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_cloudwatchlogs::config::Region::new("us-east-1"))
            .endpoint_url(format!("http://127.0.0.1:{moto_port}"))
            .load()
            .await;
        let c = aws_sdk_cloudwatchlogs::Client::new(&sdk);
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let r = c
                .get_log_events()
                .log_group_name(group)
                .log_stream_name(stream)
                .start_from_head(true)
                .set_next_token(token.clone())
                .send()
                .await
                .unwrap();
            let evs = r.events();
            out.extend(evs.iter().map(|e| e.message().unwrap_or("").to_string()));
            let next = r.next_forward_token().map(str::to_string);
            if evs.is_empty() || next == token {
                break;
            }
            token = next;
        }
        out
    })
}

#[test]
fn cloudwatch_batches_within_limits_and_publishes_emf_metrics() {
    dummy_credentials();
    let moto = Moto::start();
    let rt = test_runtime();
    let (proxy, pport) = Proxy::start(&rt, moto.port, 0);
    let mut cfg = cw_config(pport, "/saker/batching");
    cfg.cloudwatch_output.metrics.enabled = true;
    cfg.cloudwatch_output.metrics.namespace = "SakerTest".into();
    cfg.cloudwatch_output.metrics.interval_s = 3600;
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    // 12,000 small alerts (more than one call's 10,000 events) ...
    let n_small = 12_000u64;
    for i in 0..n_small {
        let prio = if i % 3 == 0 {
            Priority::Critical
        } else {
            Priority::Warning
        };
        out.send(Arc::new(alert(i, &format!("Rule {}", i % 3), prio)));
    }
    // ... and 20 alerts of ~100 KB (more than one call's 1 MiB).
    for i in 0..20u64 {
        let mut a = alert(n_small + i, "Big", Priority::Error);
        a.output.push_str(&"x".repeat(100_000));
        out.send(Arc::new(a));
    }
    assert!(out.shutdown(Duration::from_secs(120)).in_time);
    let total = n_small + 20;
    assert_eq!(
        metric_value(&metrics, "saker_output_sent_total{output=\"cloudwatch\"}"),
        total as f64
    );
    assert_eq!(
        metric_value(&metrics, "saker_output_drops_total{output=\"cloudwatch\"}"),
        0.0
    );

    let puts = puts(&proxy);
    let alert_puts: Vec<&Put> = puts.iter().filter(|p| p.stream == "node-1").collect();
    // ~350-byte JSON alerts: the 1 MiB limit cuts the batches.
    assert!(
        alert_puts.len() >= 6,
        "expected several batches: {alert_puts:?}"
    );
    assert!(
        alert_puts.iter().filter(|p| p.bytes > 1_000_000).count() >= 5,
        "{alert_puts:?}"
    );
    for p in &alert_puts {
        assert!(
            p.events <= 10_000 && p.bytes <= 1_048_576 && p.sorted && !p.emf,
            "{p:?}"
        );
    }
    assert_eq!(
        alert_puts.iter().map(|p| p.events).sum::<usize>(),
        total as usize
    );

    let msgs = read_stream(&rt, moto.port, "/saker/batching", "node-1");
    assert_eq!(msgs.len(), total as usize);
    let mut seqs: Vec<u64> = msgs
        .iter()
        .map(|m| {
            let v: serde_json::Value = serde_json::from_str(m).unwrap();
            assert_eq!(v["hostname"], "test-host");
            assert_eq!(v["source"], "syscall");
            v["output_fields"]["seq"].as_u64().unwrap()
        })
        .collect();
    seqs.sort();
    assert_eq!(seqs, (0..total).collect::<Vec<_>>());

    // EMF: one record per (rule, priority), flagged for metric extraction.
    let emf_puts: Vec<&Put> = puts
        .iter()
        .filter(|p| p.stream == "node-1-metrics")
        .collect();
    assert!(!emf_puts.is_empty() && emf_puts.iter().all(|p| p.emf));
    let recs = read_stream(&rt, moto.port, "/saker/batching", "node-1-metrics");
    let mut per_rule = std::collections::BTreeMap::new();
    for r in &recs {
        let v: serde_json::Value = serde_json::from_str(r).unwrap();
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Namespace"], "SakerTest");
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0],
            serde_json::json!(["Rule", "Priority"])
        );
        *per_rule
            .entry(format!(
                "{}/{}",
                v["Rule"].as_str().unwrap(),
                v["Priority"].as_str().unwrap()
            ))
            .or_insert(0) += v["Alerts"].as_u64().unwrap();
    }
    assert_eq!(per_rule.get("Rule 0/Critical"), Some(&4000));
    assert_eq!(per_rule.get("Rule 1/Warning"), Some(&4000));
    assert_eq!(per_rule.get("Rule 2/Warning"), Some(&4000));
    assert_eq!(per_rule.get("Big/Error"), Some(&20));
}

#[test]
fn cloudwatch_retries_throttling_and_respects_min_priority() {
    dummy_credentials();
    let moto = Moto::start();
    let rt = test_runtime();
    let (proxy, pport) = Proxy::start(&rt, moto.port, 3);
    let mut cfg = cw_config(pport, "/saker/throttle");
    cfg.cloudwatch_output.min_priority = Some(Priority::Warning);
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    for i in 0..50 {
        out.send(Arc::new(alert(i, "R", Priority::Error)));
        out.send(Arc::new(alert(1000 + i, "R", Priority::Informational)));
    }
    assert!(out.shutdown(Duration::from_secs(60)).in_time);
    let puts = puts(&proxy);
    assert_eq!(puts.iter().filter(|p| p.throttled).count(), 3);
    assert!(puts.iter().any(|p| !p.throttled), "{puts:?}");
    assert!(
        metric_value(
            &metrics,
            "saker_output_retries_total{output=\"cloudwatch\"}"
        ) >= 3.0
    );
    assert_eq!(
        metric_value(
            &metrics,
            "saker_output_failures_total{output=\"cloudwatch\"}"
        ),
        0.0
    );
    let msgs = read_stream(&rt, moto.port, "/saker/throttle", "node-1");
    assert_eq!(msgs.len(), 50);
    assert!(msgs.iter().all(|m| m.contains("\"priority\":\"Error\"")));
}

/// Short text lines: the 10,000-events limit cuts the batch, not the bytes.
#[test]
fn cloudwatch_caps_batches_at_10000_events() {
    dummy_credentials();
    let moto = Moto::start();
    let rt = test_runtime();
    let (proxy, pport) = Proxy::start(&rt, moto.port, 0);
    let mut cfg = cw_config(pport, "/saker/count");
    cfg.json_output = false;
    let metrics = Arc::new(Metrics::new());
    let out = Outputs::start(&cfg, metrics.clone()).unwrap();
    for i in 0..12_000u64 {
        let mut a = alert(i, "R", Priority::Notice);
        a.output = format!("t: Notice n={i}");
        out.send(Arc::new(a));
    }
    assert!(out.shutdown(Duration::from_secs(60)).in_time);
    let puts = puts(&proxy);
    let sizes: Vec<usize> = puts.iter().map(|p| p.events).collect();
    assert_eq!(sizes, vec![10_000, 2_000]);
    assert!(
        puts.iter().all(|p| p.events <= 10_000 && p.sorted),
        "{puts:?}"
    );
    let msgs = read_stream(&rt, moto.port, "/saker/count", "node-1");
    assert_eq!(msgs.len(), 12_000);
    let mut ns: Vec<u64> = msgs
        .iter()
        .map(|m| m.strip_prefix("t: Notice n=").unwrap().parse().unwrap())
        .collect();
    ns.sort();
    assert_eq!(ns, (0..12_000).collect::<Vec<_>>());
}
