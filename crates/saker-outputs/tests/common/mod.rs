#![allow(dead_code, unused_imports)]

pub mod cwproxy;
pub mod logs;
pub use saker_testkit::moto;

use saker_rules::{Alert, OutputValue, Priority};

pub fn alert(i: u64, rule: &str, priority: Priority) -> Alert {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    Alert {
        time_ns: now + i,
        rule: rule.to_string(),
        priority,
        source: "syscall".into(),
        hostname: "test-host".into(),
        output: format!(
            "12:00:00.000000001: {} Alert number {i} (user=root proc=sh)",
            priority.as_str()
        ),
        output_fields: vec![
            ("evt.time".into(), OutputValue::U64(now + i)),
            ("proc.name".into(), OutputValue::Str("sh".into())),
            ("seq".into(), OutputValue::U64(i)),
            ("user.name".into(), OutputValue::Str("root".into())),
        ],
        tags: vec!["shell".into(), "mitre_execution".into()],
    }
}

/// A config with every output off (stdout included).
pub fn quiet_config() -> saker_outputs::OutputsOptions {
    let mut c = saker_outputs::OutputsOptions::default();
    c.stdout_output.enabled = false;
    c
}

pub use saker_testkit::free_port;

pub fn test_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Value of one sample in the metrics text, e.g. `saker_output_drops_total{output="http"}`.
pub fn metric_value(metrics: &saker_outputs::Metrics, name_and_labels: &str) -> f64 {
    let text = metrics.encode();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix(name_and_labels) {
            if let Some(v) = rest.strip_prefix(' ') {
                return v.trim().parse().unwrap();
            }
        }
    }
    0.0
}
