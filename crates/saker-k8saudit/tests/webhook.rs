//! The audit webhook on a real loopback listener, driven by a real HTTP client (reqwest):
//! single events, EventLists, arrays, oversized and malformed bodies, wrong methods and
//! content types, HTTPS with Falco's single-PEM certificate.

use std::path::Path;

use std::sync::atomic::AtomicU64;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use saker_k8saudit::webhook::{channel, Counters, Webhook, WebhookConfig};
use saker_k8saudit::AuditEvent;

fn ev(id: &str) -> String {
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"{id}","stage":"ResponseComplete","verb":"get","stageTimestamp":"2024-05-01T10:00:00Z"}}"#
    )
}

fn start(max_body: usize, tls_pem: Option<&Path>) -> (Webhook, Receiver<Vec<AuditEvent>>) {
    let (tx, rx) = channel();
    let w = Webhook::start(
        WebhookConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            path: "/k8s-audit".into(),
            tls_pem: tls_pem.map(Path::to_path_buf),
            max_body,
            max_event_size: 262_144,
        },
        tx,
    )
    .unwrap();
    (w, rx)
}

fn ids(rx: &Receiver<Vec<AuditEvent>>) -> Vec<String> {
    let batch = rx
        .recv_timeout(Duration::from_secs(5))
        .expect("a queued payload");
    batch
        .iter()
        .map(|e| e.audit_id().unwrap().to_string())
        .collect()
}

fn n(c: &AtomicU64) -> u64 {
    Counters::get(c)
}

fn post(
    client: &reqwest::blocking::Client,
    url: &str,
    ct: &str,
    body: impl Into<reqwest::blocking::Body>,
) -> (u16, String) {
    let r = client
        .post(url)
        .header("Content-Type", ct)
        .body(body)
        .send()
        .unwrap();
    (r.status().as_u16(), r.text().unwrap())
}

#[test]
fn bodies_of_every_form_and_the_refusals() {
    let (w, rx) = start(4096, None);
    let url = format!("http://{}/k8s-audit", w.addr());
    let c = reqwest::blocking::Client::new();
    let json = "application/json; charset=utf-8";

    // A single Event, an EventList (what the API server sends), a nested array.
    assert_eq!(post(&c, &url, json, ev("a")), (200, String::new()));
    assert_eq!(ids(&rx), ["a"]);
    let list = format!(
        r#"{{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[{},{}]}}"#,
        ev("b"),
        ev("c")
    );
    assert_eq!(post(&c, &url, "application/json", list).0, 200);
    assert_eq!(ids(&rx), ["b", "c"]);
    assert_eq!(
        post(&c, &url, json, format!("[{},[{}]]", ev("d"), ev("e"))).0,
        200
    );
    assert_eq!(ids(&rx), ["d", "e"]);
    // An event without time is dropped alone; the batch is accepted.
    let partial = format!(r#"[{},{{"kind":"Event","auditID":"x"}}]"#, ev("f"));
    assert_eq!(post(&c, &url, json, partial).0, 200);
    assert_eq!(ids(&rx), ["f"]);

    // Refusals, each with its status and text.
    let big = format!("[{}]", vec![ev("g"); 60].join(","));
    assert!(big.len() > 4096);
    assert_eq!(
        post(&c, &url, json, big),
        (413, "request body too large (webhookMaxBatchSize)".into())
    );
    let (code, text) = post(&c, &url, json, "{\"kind\": \"Event\", ");
    assert_eq!(code, 400);
    assert!(
        text.starts_with("malformed JSON: data not recognized as a k8s audit event: EOF"),
        "{text}"
    );
    assert_eq!(
        post(&c, &url, json, "{\"kind\": 0}"),
        (400, "data not recognized as a k8s audit event".into())
    );
    assert_eq!(post(&c, &url, json, "{\"kind\":\"Pod\"}").0, 400);
    assert_eq!(
        post(&c, &url, "text/plain", ev("h")),
        (415, "wrong Content Type: application/json expected".into())
    );
    let r = c.get(&url).send().unwrap();
    assert_eq!(
        (r.status().as_u16(), r.text().unwrap()),
        (405, "GET method not allowed".into())
    );
    assert_eq!(
        c.post(format!("http://{}/other", w.addr()))
            .header("Content-Type", json)
            .body(ev("i"))
            .send()
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    assert!(rx.try_recv().is_err(), "nothing refused reached the queue");

    let k = &w.counters;
    assert_eq!(
        (n(&k.accepted), n(&k.events), n(&k.dropped_events)),
        (4, 6, 1)
    );
    assert_eq!(
        (
            n(&k.too_large),
            n(&k.malformed),
            n(&k.unrecognized),
            n(&k.bad_request)
        ),
        (1, 1, 2, 2)
    );
    assert!(
        k.summary().contains("4 bodies accepted, 6 events"),
        "{}",
        k.summary()
    );
}

#[test]
fn a_full_queue_holds_the_request_until_the_loop_reads() {
    let (w, rx) = start(1 << 20, None);
    let url = format!("http://{}/k8s-audit", w.addr());
    let sender = std::thread::spawn(move || {
        let c = reqwest::blocking::Client::new();
        (0..60)
            .map(|i| post(&c, &url, "application/json", ev(&i.to_string())).0)
            .collect::<Vec<_>>()
    });
    std::thread::sleep(Duration::from_millis(500));
    // 50 payloads queued; the 51st request waits instead of being refused.
    assert!(!sender.is_finished());
    let mut got = Vec::new();
    while got.len() < 60 {
        got.extend(ids(&rx));
    }
    assert!(sender.join().unwrap().iter().all(|&c| c == 200));
    assert_eq!(
        got,
        (0..60).map(|i| i.to_string()).collect::<Vec<_>>(),
        "in order, none lost"
    );
}

#[test]
fn https_with_certificate_and_key_in_one_pem() {
    let dir = tempfile::tempdir().unwrap();
    let tls = saker_testkit::tls::self_signed(dir.path());
    let (cert, falco_pem) = (tls.cert_pem(), tls.combined.clone());
    let (w, rx) = start(1 << 20, Some(&falco_pem));
    let c = reqwest::blocking::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&cert).unwrap())
        .build()
        .unwrap();
    let url = format!("https://{}/k8s-audit", w.addr());
    assert_eq!(post(&c, &url, "application/json", ev("tls")).0, 200);
    assert_eq!(ids(&rx), ["tls"]);
    // Plain HTTP to the TLS port gets no answer.
    assert!(reqwest::blocking::Client::new()
        .post(format!("http://{}/k8s-audit", w.addr()))
        .timeout(Duration::from_secs(2))
        .body(ev("x"))
        .send()
        .is_err());
    // A PEM without the key is refused at start, naming the key.
    let (tx, _rx) = channel();
    let only_cert = dir.path().join("cert-only.pem");
    std::fs::write(&only_cert, &cert).unwrap();
    let e = Webhook::start(
        WebhookConfig {
            addr: "127.0.0.1:0".parse().unwrap(),
            path: "/k8s-audit".into(),
            tls_pem: Some(only_cert),
            max_body: 10,
            max_event_size: 10,
        },
        tx,
    )
    .err()
    .unwrap();
    assert!(
        e.starts_with("plugins[k8saudit].init_config.sslCertificate "),
        "{e}"
    );
    assert!(e.contains("no private key"), "{e}");
}
