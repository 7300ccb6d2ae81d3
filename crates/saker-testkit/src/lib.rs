//! Test scaffolding shared by the workspace's integration tests (a dev-dependency only).
//!
//! Root and kernel tests are marked `#[ignore = "needs root"]`, so a plain `cargo test` reports
//! them as ignored instead of passing them silently; `make test` runs them with
//! `--include-ignored`. Such a test starts with [`require_root`] (or [`require_live`]), which
//! fails it with the reason when the machine cannot run it. A test that needs an optional tool
//! may skip through [`skip_without_tools`], but never in CI or under `make test` ([`strict`]).

pub mod containerd;
pub mod moto;
pub mod podman;
pub mod tls;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The repository's root (this crate sits at crates/saker-testkit).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The big reference fixtures beside the checkout (`../shared`: upstream rules, captures...).
pub fn shared_dir() -> PathBuf {
    repo_root().join("../shared")
}

/// The effective user id, from /proc (no libc needed).
pub fn euid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("")
        .to_string()
}

pub fn is_root() -> bool {
    euid() == "0"
}

/// Fails the calling test unless it runs as root: root tests are `#[ignore]`d, so reaching
/// here without root means someone asked for them (`--ignored`) on a machine that cannot.
pub fn require_root(test: &str) {
    if !is_root() {
        panic!(
            "{test} needs root (euid is {}): run `make test` or \
             `cargo test --release -- --include-ignored` as root",
            euid()
        );
    }
}

/// [`require_root`], plus kernel BTF (the probe's CO-RE relocations need it).
pub fn require_live(test: &str) {
    require_root(test);
    assert!(
        Path::new("/sys/kernel/btf/vmlinux").exists(),
        "{test} needs kernel BTF (/sys/kernel/btf/vmlinux is missing)"
    );
}

/// True in CI and under `make test` (which sets SAKER_TEST_STRICT=1): nothing may skip there.
pub fn strict() -> bool {
    std::env::var_os("CI").is_some() || std::env::var_os("SAKER_TEST_STRICT").is_some()
}

/// Whether `bin --version` runs.
pub fn have(bin: &str) -> bool {
    Command::new(bin)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// True (after printing why) when one of `tools` is missing and the test may skip; fails the
/// test instead when [`strict`].
pub fn skip_without_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools.iter().copied().filter(|t| !have(t)).collect();
    if missing.is_empty() {
        return false;
    }
    assert!(
        !strict(),
        "{test}: {} not installed, and CI/make test must not skip (scripts/setup-debian.sh installs it)",
        missing.join(", ")
    );
    eprintln!("SKIPPED {test}: {} not installed", missing.join(", "));
    true
}

/// One live probe session at a time per test binary: concurrent sessions would see each
/// other's behaviour and double the kernel load on the 2 shared cores.
pub fn probe_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// A unique token (letters, digits and dashes only, so it is safe inside rule conditions and
/// file names).
pub fn token(label: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "saker-rstest-{label}-{}-{}-{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// A scratch directory below /tmp named after a token, removed on drop.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(tok: &str) -> Scratch {
        let path = PathBuf::from("/tmp").join(tok);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        Scratch { path }
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Removes a file on drop (files the tests create in system directories such as /etc).
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("local addr").port()
}

/// Waits until something accepts connections on the loopback `port`; fails after `within`.
pub fn wait_for_port(port: u16, what: &str, within: std::time::Duration) {
    let t0 = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            t0.elapsed() < within,
            "{what} did not listen on port {port} within {within:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// POSTs a JSON body with curl (a real HTTP client); returns the HTTP status code as text.
pub fn curl_post_json(url: &str, body: &str) -> String {
    // "000" is no HTTP answer at all (connection refused or reset): on a loaded machine a
    // listener that just came up can miss one; a status code is never retried.
    for _ in 0..3 {
        let code = curl_post_json_once(url, body);
        if code != "000" {
            return code;
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
    }
    curl_post_json_once(url, body)
}

fn curl_post_json_once(url: &str, body: &str) -> String {
    use std::io::Write;
    let o = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args([
            "-H",
            "Content-Type: application/json",
            "--data-binary",
            "@-",
            url,
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            c.stdin.take().expect("stdin").write_all(body.as_bytes())?;
            c.wait_with_output()
        })
        .expect("curl");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Asserts that a command succeeded, with its output in the message.
pub fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// One JSON alert as printed with `json_output=true`.
#[derive(Debug, Clone)]
pub struct Alert {
    pub rule: String,
    pub priority: String,
    pub output: String,
    pub fields: serde_json::Map<String, Value>,
    pub tags: Vec<String>,
    pub raw: Value,
}

impl Alert {
    /// None for a line that is not a JSON alert (logs, text output).
    pub fn parse(line: &str) -> Option<Alert> {
        let raw: Value = serde_json::from_str(line.trim()).ok()?;
        let o = raw.as_object()?;
        let text = |k: &str| o.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        Some(Alert {
            rule: o.get("rule")?.as_str()?.to_string(),
            priority: text("priority"),
            output: text("output"),
            fields: o
                .get("output_fields")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            tags: o
                .get("tags")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
            raw: raw.clone(),
        })
    }

    /// A field rendered as text (numbers and booleans too); None when absent or null.
    pub fn field(&self, key: &str) -> Option<String> {
        match self.fields.get(key)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }

    /// Whether a string field contains `tok`.
    pub fn mentions(&self, tok: &str) -> bool {
        self.fields
            .values()
            .any(|v| v.as_str().is_some_and(|s| s.contains(tok)))
    }
}
