//! Per-event cost of the k8s_audit source on one core: parse one audit event (as a webhook
//! body or a file line arrives) and run the upstream k8saudit rules over it.
//! `cargo bench -p saker-k8saudit --bench audit`

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use saker_rules::engine::Engine;
use std::hint::black_box;
use std::path::Path;

fn shared() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

/// A pod create (the heaviest common event: containers, volumes, security contexts) and an
/// exec; most rules read both.
const EVENTS: [&str; 2] = [
    include_str!("../tests/events/create_privileged_pod.json"),
    include_str!("../tests/events/exec_pod.json"),
];

fn bench(c: &mut Criterion) {
    let mut eng = Engine::new(Default::default());
    let falco = shared().join("falco-rules/falco_rules.yaml");
    assert!(eng.load_file(&falco).successful());
    let r = eng.load_file(&shared().join("k8s-audit/k8s_audit_rules.yaml"));
    assert!(r.successful(), "{}", r.to_text());
    let rs = eng.ruleset();
    let lines: Vec<Vec<u8>> = EVENTS
        .iter()
        .map(|e| saker_k8saudit::payload::compact(e).into_bytes())
        .collect();
    let mut g = c.benchmark_group("k8s_audit");
    g.throughput(Throughput::Elements(lines.len() as u64));
    g.bench_function("parse+rules", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            for l in &lines {
                let p = saker_k8saudit::parse_payload(
                    black_box(l),
                    saker_k8saudit::DEFAULT_MAX_EVENT_SIZE,
                );
                for ev in &p.events {
                    out.clear();
                    rs.matches_source("k8s_audit", &ev.view("host", 0), &mut out);
                    black_box(&out);
                }
            }
        })
    });
    g.bench_function("parse", |b| {
        b.iter(|| {
            for l in &lines {
                black_box(saker_k8saudit::parse_payload(
                    black_box(l),
                    saker_k8saudit::DEFAULT_MAX_EVENT_SIZE,
                ));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
