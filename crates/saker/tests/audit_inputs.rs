//! The k8s_audit inputs of `saker run` (syscall source off, no root needed): the webhook fed
//! by a real HTTP client (curl), and EKS polling against moto's CloudWatch Logs with a
//! restart in the middle: nothing lost, nothing duplicated.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use saker_testkit::moto::Moto;
use saker_testkit::{free_port, wait_for_port};

const RULE: &str = "- rule: Every audit event\n  desc: d\n  condition: ka.auditid exists\n  output: id=%ka.auditid verb=%ka.verb\n  priority: NOTICE\n  source: k8s_audit\n";

struct Saker {
    child: Child,
    alerts: Receiver<serde_json::Value>,
}

impl Saker {
    fn start(dir: &Path, config: &str, env: &[(&str, String)]) -> Saker {
        std::fs::write(dir.join("rules.yaml"), RULE).unwrap();
        std::fs::write(dir.join("saker.yaml"), config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_saker"))
            .args(["--disable-source", "syscall", "-c"])
            .arg(dir.join("saker.yaml"))
            .arg("-r")
            .arg(dir.join("rules.yaml"))
            .args(["-o", "json_output=true", "-o", "webserver.enabled=false"])
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                let v: serde_json::Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
                if tx.send(v).is_err() {
                    return;
                }
            }
        });
        Saker { child, alerts: rx }
    }

    /// The audit ids of `n` alerts (fails after `within`).
    fn ids(&self, n: usize, within: Duration) -> Vec<String> {
        let t0 = Instant::now();
        let mut out = Vec::new();
        while out.len() < n {
            let left = within
                .checked_sub(t0.elapsed())
                .unwrap_or_else(|| panic!("only {} of {n} alerts: {out:?}", out.len()));
            let v = self
                .alerts
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("only {} of {n} alerts: {out:?}", out.len()));
            assert_eq!(v["source"], "k8s_audit");
            assert_eq!(v["rule"], "Every audit event");
            out.push(
                v["output_fields"]["ka.auditid"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        out
    }

    /// SIGTERM, then everything it printed after the alerts already read.
    fn stop(mut self) -> Vec<String> {
        let st = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "saker exited with {status}");
        let mut rest = Vec::new();
        while let Ok(v) = self.alerts.recv_timeout(Duration::from_millis(500)) {
            rest.push(
                v["output_fields"]["ka.auditid"]
                    .as_str()
                    .unwrap()
                    .to_string(),
            );
        }
        rest
    }
}

impl Drop for Saker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn event(id: &str, ts_ms: i64) -> String {
    let secs = ts_ms / 1000;
    let t = chrono_like(secs, (ts_ms % 1000) as u32);
    format!(
        r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","auditID":"{id}","stage":"ResponseComplete","verb":"get","requestURI":"/api/v1/pods","stageTimestamp":"{t}"}}"#
    )
}

/// RFC 3339 UTC from epoch seconds (civil-from-days), to keep the test free of a date crate.
fn chrono_like(secs: i64, ms: u32) -> String {
    let days = secs.div_euclid(86400);
    let sod = secs.rem_euclid(86400);
    let z = days + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

#[test]
fn webhook_input_of_saker_run() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = format!("plugins:\n  - name: k8saudit\n    library_path: libk8saudit.so\n    init_config:\n      webhookMaxBatchSize: 100000\n    open_params: \"http://127.0.0.1:{port}/k8s-audit\"\n  - name: json\n    library_path: libjson.so\n    init_config: \"\"\nload_plugins: [k8saudit, json]\n");
    let s = Saker::start(dir.path(), &cfg, &[]);
    let url = format!("http://127.0.0.1:{port}/k8s-audit");
    wait_for_port(port, "the webhook", Duration::from_secs(20));
    let now = 1_714_557_600_000;
    let list = format!(
        r#"{{"kind":"EventList","items":[{},{}]}}"#,
        event("w1", now),
        event("w2", now + 1)
    );
    let curl = |body: &str| saker_testkit::curl_post_json(&url, body);
    assert_eq!(curl(&list), "200");
    assert_eq!(curl(&event("w3", now + 2)), "200");
    assert_eq!(curl("{oops"), "400");
    assert_eq!(curl(&"x".repeat(200_000)), "413");
    assert_eq!(s.ids(3, Duration::from_secs(20)), ["w1", "w2", "w3"]);
    assert!(s.stop().is_empty());
}

fn aws_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", format!("http://127.0.0.1:{port}")),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
    ]
}

/// Runs boto3 against moto: `put(stream, [(id, ts_ms)])` lines after the setup.
fn boto(port: u16, code: &str) {
    let script = format!(
        "import boto3\nc = boto3.client('logs', endpoint_url='http://127.0.0.1:{port}', region_name='us-east-1', aws_access_key_id='testing', aws_secret_access_key='testing')\nG = '/aws/eks/prod/cluster'\ndef put(stream, evs):\n    c.put_log_events(logGroupName=G, logStreamName=stream, logEvents=[{{'timestamp': ts, 'message': m}} for (m, ts) in evs])\n{code}\n"
    );
    let o = Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "boto3: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

fn puts(stream: &str, evs: &[(&str, i64)]) -> String {
    let items: Vec<String> = evs
        .iter()
        .map(|(id, ts)| format!("({:?}, {ts})", event(id, *ts)))
        .collect();
    format!("put('{stream}', [{}])", items.join(", "))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[test]
fn eks_polling_resumes_after_a_restart_without_loss_or_duplicates() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let a = "kube-apiserver-audit-0a1b";
    let b = "kube-apiserver-audit-9f8e";
    let t = now_ms();
    boto(
        moto.port,
        &format!(
            "c.create_log_group(logGroupName=G)\nfor s in ['{a}', '{b}', 'authenticator-0a1b']:\n    c.create_log_stream(logGroupName=G, logStreamName=s)\n{}\n{}\n{}\n",
            puts(a, &[("a1", t - 3000), ("a2", t - 2000), ("a3", t - 2000)]),
            puts(b, &[("b1", t - 2500)]),
            // Another EKS log type in the same group: not audit, never read.
            puts("authenticator-0a1b", &[("auth1", t - 2000)]),
        ),
    );
    let ckpt = dir.path().join("state/ckpt.json");
    let cfg = format!(
        "plugins:\n  - name: k8saudit-eks\n    library_path: libk8saudit-eks.so\n    init_config:\n      polling_interval: 1\n      shift: 30\n      buffer_size: 4\n      checkpoint_file: {}\n    open_params: prod\n  - name: json\n    library_path: libjson.so\nload_plugins: [k8saudit-eks, json]\n",
        ckpt.display()
    );
    let env = aws_env(moto.port);
    let s = Saker::start(dir.path(), &cfg, &env);
    let mut seen = s.ids(4, Duration::from_secs(30));
    // A few more polls see the same events again (the boundary upstream re-sends).
    std::thread::sleep(Duration::from_millis(2500));
    boto(moto.port, &puts(b, &[("b2", t - 1000)]));
    seen.extend(s.ids(1, Duration::from_secs(20)));
    seen.extend(s.stop());
    assert!(ckpt.exists(), "the checkpoint is written");

    // Down: events keep arriving, some at the very millisecond of the last one seen.
    boto(
        moto.port,
        &format!(
            "{}\n{}\n",
            puts(a, &[("a4", t - 2000), ("a5", t + 500)]),
            puts(b, &[("b3", t - 1000), ("b4", t + 600)])
        ),
    );
    let s = Saker::start(dir.path(), &cfg, &env);
    seen.extend(s.ids(4, Duration::from_secs(30)));
    boto(moto.port, &puts(a, &[("a6", t + 1000)]));
    seen.extend(s.ids(1, Duration::from_secs(20)));
    std::thread::sleep(Duration::from_millis(2500));
    seen.extend(s.stop());

    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        ["a1", "a2", "a3", "a4", "a5", "a6", "b1", "b2", "b3", "b4"],
        "alerts in order seen: {seen:?}"
    );
}
