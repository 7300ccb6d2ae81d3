//! Helpers for the live rule tests: start `saker run` with JSON output, perform real behaviour in
//! attributable processes, stop it and look at the alerts.
//!
//! The machine is shared (other tests, builds and containers run at the same time), so every
//! alert is *attributed* before assertions: it belongs to a test when its process group is one we
//! created, when one of its string fields contains the test's unique token, or when it comes from
//! one of the test's containers.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// Only one probe session at a time per test binary: concurrent sessions would see each other's
/// behaviour and double the kernel load.
static LIVE_LOCK: Mutex<()> = Mutex::new(());

pub fn live_lock() -> MutexGuard<'static, ()> {
    LIVE_LOCK
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn builtin_rules() -> PathBuf {
    repo_root().join("rules/saker_rules.yaml")
}

pub fn custom_rules_example() -> PathBuf {
    repo_root().join("examples/custom-rules.yaml")
}

pub fn saker_bin() -> PathBuf {
    std::env::var_os("SAKER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_saker")))
}

/// Why live tests cannot run here, if they cannot. Only missing root or BTF count.
pub fn skip_reason() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("");
    if euid != "0" {
        return Some(format!("not running as root (euid {euid})"));
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        return Some("kernel has no BTF (/sys/kernel/btf/vmlinux missing)".into());
    }
    None
}

/// Returns true (after printing why) when the calling test must be skipped.
pub fn should_skip(test: &str) -> bool {
    match skip_reason() {
        Some(why) => {
            eprintln!("SKIPPED {test}: {why}");
            true
        }
        None => false,
    }
}

/// A unique token for one test run; it goes into file names and command lines.
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

/// A scratch directory below /tmp named after the token, removed on drop.
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

/// Removes a path on drop (files the tests create in system directories).
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[derive(Debug, Clone)]
pub struct Alert {
    pub rule: String,
    pub priority: String,
    pub output: String,
    pub fields: serde_json::Map<String, Value>,
    pub tags: Vec<String>,
}

impl Alert {
    pub fn parse(line: &str) -> Option<Alert> {
        let v: Value = serde_json::from_str(line.trim()).ok()?;
        let obj = v.as_object()?;
        Some(Alert {
            rule: obj.get("rule")?.as_str()?.to_string(),
            priority: obj
                .get("priority")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
            output: obj
                .get("output")
                .and_then(Value::as_str)
                .unwrap_or("")
                .into(),
            fields: obj
                .get("output_fields")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
            tags: obj
                .get("tags")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(|t| t.as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default(),
        })
    }

    /// A field rendered as text (numbers and booleans included), None when absent or null.
    pub fn field(&self, key: &str) -> Option<String> {
        match self.fields.get(key)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(other.to_string()),
        }
    }
}

/// What belongs to one test: its tokens, process groups and containers.
#[derive(Default, Debug)]
pub struct Scope {
    pub tokens: Vec<String>,
    pub pgids: Vec<i64>,
    pub container_ids: Vec<String>,
}

impl Scope {
    pub fn with_token(tok: &str) -> Scope {
        Scope {
            tokens: vec![tok.to_string()],
            ..Scope::default()
        }
    }

    pub fn owns(&self, alert: &Alert) -> bool {
        if let Some(pgid) = alert.fields.get("proc.pgid").and_then(Value::as_i64) {
            if self.pgids.contains(&pgid) {
                return true;
            }
        }
        if let Some(cid) = alert.field("container.id") {
            if cid.len() >= 12 && self.container_ids.iter().any(|c| c.starts_with(&cid)) {
                return true;
            }
        }
        alert.fields.values().any(|v| {
            v.as_str()
                .is_some_and(|s| self.tokens.iter().any(|t| s.contains(t.as_str())))
        })
    }

    /// Runs a command in a new process group (recorded as ours) and waits for it.
    pub fn run(&mut self, cmd: &mut Command) -> Output {
        let child = self.spawn(
            cmd.stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        child.wait_with_output().expect("wait for workload")
    }

    /// Spawns a command in a new process group (recorded as ours).
    pub fn spawn(&mut self, cmd: &mut Command) -> Child {
        let child = cmd
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
        self.pgids.push(i64::from(child.id()));
        child
    }

    /// `sh -c SCRIPT TOKEN`: the token lands in the command line of the shell and, as parent
    /// command line, of everything it forks. Scripts end with `; true` so dash forks children.
    pub fn sh(&mut self, script: &str) -> Output {
        let tok = self.tokens.first().cloned().unwrap_or_default();
        self.run(Command::new("/bin/sh").arg("-c").arg(script).arg(tok))
    }
}

/// A running `saker run -o json_output=true` session.
pub struct Saker {
    child: Child,
    stdout: JoinHandle<Vec<String>>,
    stderr: JoinHandle<Vec<String>>,
}

impl Saker {
    /// Starts Saker with the given extra arguments (e.g. `-r FILE`) and waits for `saker: started`.
    pub fn start(extra: &[&std::ffi::OsStr]) -> Saker {
        Saker::start_with_env(extra, &[])
    }

    /// Like [`Saker::start`], with environment variables that win over the defaults.
    pub fn start_with_env(extra: &[&std::ffi::OsStr], env: &[(&str, &std::ffi::OsStr)]) -> Saker {
        let mut child = Command::new(saker_bin())
            .env("SAKER_CONTAINER_SOCKETS", podman_api_dir())
            .envs(env.iter().copied())
            .arg("run")
            .args(["-o", "json_output=true"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn saker run");
        let out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let stdout = std::thread::spawn(move || {
            BufReader::new(out)
                .lines()
                .map_while(Result::ok)
                .collect::<Vec<_>>()
        });
        let (tx, rx) = mpsc::channel();
        let stderr = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("saker: started") {
                    let _ = tx.send(());
                }
                lines.push(line);
            }
            lines
        });
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if rx.recv_timeout(Duration::from_millis(200)).is_ok() {
                break;
            }
            if let Ok(Some(status)) = child.try_wait() {
                let err = stderr.join().unwrap_or_default().join("\n");
                panic!("saker run exited before starting ({status}):\n{err}");
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let err = stderr.join().unwrap_or_default().join("\n");
                panic!("saker run did not print 'saker: started' within 120 s:\n{err}");
            }
        }
        Saker {
            child,
            stdout,
            stderr,
        }
    }

    /// Lets in-flight events drain, stops Saker with SIGINT and returns every alert it printed.
    pub fn stop(mut self) -> Vec<Alert> {
        std::thread::sleep(Duration::from_millis(2000));
        let _ = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.wait();
        let lines = self.stdout.join().unwrap_or_default();
        let err = self.stderr.join().unwrap_or_default();
        eprintln!("saker stderr (last lines):\n{}", tail(&err, 15));
        lines.iter().filter_map(|l| Alert::parse(l)).collect()
    }
}

fn tail(lines: &[String], n: usize) -> String {
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs one live case: start Saker (built-in rules unless `rules` is given), act, stop.
pub fn live(rules: &[PathBuf], act: impl FnOnce(&mut Scope), scope: Scope) -> (Vec<Alert>, Scope) {
    let _guard = live_lock();
    let mut args: Vec<&std::ffi::OsStr> = Vec::new();
    for r in rules {
        args.push("-r".as_ref());
        args.push(r.as_os_str());
    }
    let saker = Saker::start(&args);
    let mut scope = scope;
    act(&mut scope);
    let alerts = saker.stop();
    (alerts, scope)
}

/// Checks that `rule` fired for this test with the given field values (a value starting with `~`
/// means "contains"), and that the test's alerts came from exactly `rule` plus `also`.
pub fn assert_fired(
    alerts: &[Alert],
    scope: &Scope,
    rule: &str,
    also: &[&str],
    checks: &[(&str, &str)],
) {
    let ours: Vec<&Alert> = alerts.iter().filter(|a| scope.owns(a)).collect();
    let dump = || {
        ours.iter()
            .map(|a| format!("  [{}] {}", a.rule, a.output))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let fired: BTreeSet<&str> = ours.iter().map(|a| a.rule.as_str()).collect();
    let mut expected: BTreeSet<&str> = also.iter().copied().collect();
    expected.insert(rule);
    assert_eq!(
        fired,
        expected,
        "rules fired for this test differ from the expected set ({} alerts in total):\n{}",
        alerts.len(),
        dump()
    );
    let matching = ours.iter().filter(|a| a.rule == rule).find(|a| {
        checks
            .iter()
            .all(|(key, want)| match (a.field(key), want.strip_prefix('~')) {
                (Some(got), Some(part)) => got.contains(part),
                (Some(got), None) => got == *want,
                (None, _) => false,
            })
    });
    assert!(
        matching.is_some(),
        "no '{rule}' alert has the fields {checks:?}; our alerts:\n{}",
        ours.iter()
            .filter(|a| a.rule == rule)
            .map(|a| format!("  {:?}", a.fields))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

pub fn ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A TCP listener that accepts and drains connections in the background.
pub fn listener(addr: &str) -> u16 {
    let l = std::net::TcpListener::bind(addr).expect("bind listener");
    let port = l.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in l.incoming().map_while(Result::ok) {
            std::thread::spawn(move || {
                let _ = std::io::copy(&mut conn, &mut std::io::sink());
            });
        }
    });
    port
}

pub fn python() -> &'static str {
    if Path::new("/usr/bin/python3").exists() {
        "/usr/bin/python3"
    } else {
        "python3"
    }
}

// ---------------------------------------------------------------------------------------------
// Containers
// ---------------------------------------------------------------------------------------------

const IMAGE: &str = "localhost/saker-rstest:2";
pub const PODMAN_LIMITS: [&str; 6] = [
    "--ulimit",
    "nofile=1024:1024",
    "--ulimit",
    "nproc=1024:1024",
    "--runtime",
    "runc",
];

/// A busybox image built once per test run from the host's static busybox.
pub fn image() -> &'static str {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let exists = Command::new("podman")
            .args(["image", "exists", IMAGE])
            .status();
        if exists.is_ok_and(|s| s.success()) {
            return;
        }
        let dir = PathBuf::from("/tmp").join(token("image"));
        let root = dir.join("rootfs");
        for sub in ["bin", "etc", "tmp", "usr/bin", "root"] {
            std::fs::create_dir_all(root.join(sub)).expect("rootfs dirs");
        }
        std::fs::copy("/bin/busybox", root.join("bin/busybox"))
            .expect("busybox-static is installed");
        let applets = [
            "sh", "cat", "whoami", "ls", "nc", "sleep", "echo", "true", "arping", "nsenter",
            "mount", "ip", "awk", "wget", "ssh", "scp", "sftp", "id",
        ];
        for a in applets {
            std::os::unix::fs::symlink("busybox", root.join("bin").join(a)).expect("applet link");
        }
        std::os::unix::fs::symlink("../../bin/busybox", root.join("usr/bin/locate"))
            .expect("locate");
        // A regular file standing for a login binary, so a test can modify it.
        std::fs::write(root.join("bin/login"), "#!/bin/sh\nexit 0\n").expect("login stub");
        std::fs::write(root.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\n").expect("passwd");
        let tar = dir.join("rootfs.tar");
        let ok = Command::new("tar")
            .arg("-C")
            .arg(&root)
            .arg("-cf")
            .arg(&tar)
            .arg(".")
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "tar of the test rootfs failed");
        let out = Command::new("podman")
            .arg("import")
            .arg(&tar)
            .arg(IMAGE)
            .output()
            .expect("podman");
        assert!(
            out.status.success(),
            "podman import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_dir_all(&dir);
    });
    IMAGE
}

/// A podman container removed on drop.
pub struct Container {
    pub name: String,
    pub id: String,
}

impl Container {
    /// Creates (does not start) a container running `sh -c SCRIPT`.
    pub fn create(tok: &str, extra: &[&str], script: &str) -> Container {
        let image = image();
        let name = tok.to_string();
        let out = Command::new("podman")
            .arg("create")
            .args(["--name", &name])
            .args(PODMAN_LIMITS)
            .args(extra)
            .arg(image)
            .args(["sh", "-c", script])
            .output()
            .expect("podman create");
        assert!(
            out.status.success(),
            "podman create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let id = String::from_utf8_lossy(&out.stdout).trim().to_string();
        Container { name, id }
    }

    /// Starts a long-running container (`sleep`) in the background.
    pub fn background(tok: &str) -> Container {
        let c = Container::create(tok, &[], "sleep 300");
        let out = Command::new("podman")
            .args(["start", &c.name])
            .output()
            .expect("podman start");
        assert!(
            out.status.success(),
            "podman start: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        c
    }

    /// Starts the container, waits for it to finish and returns its output.
    pub fn start_attached(&self, scope: &mut Scope) -> Output {
        scope.container_ids.push(self.id.clone());
        let out = Command::new("podman")
            .args(["start", "-a", &self.name])
            .stdin(Stdio::null())
            .output()
            .expect("podman start");
        eprintln!(
            "container {} output: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.name])
            .output();
    }
}

/// A `podman system service` shared by the live tests, so that container
/// metadata (privileged, image, name) reaches the alerts. It exits by itself
/// after a minute without clients.
pub fn podman_api_dir() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("saker-live-podman-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("podman api dir");
        let sock = dir.join("podman.sock");
        let spawned = Command::new("podman")
            .args(["system", "service", "--time=60"])
            .arg(format!("unix://{}", sock.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        if spawned.is_ok() {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !sock.exists() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        dir
    })
    .clone()
}
