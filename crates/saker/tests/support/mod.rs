//! Helpers for the end-to-end tests of the `saker` binary: start `saker run`/`capture` as a child,
//! wait until the probe is attached, watch its output while it runs, stop it with SIGTERM.
//!
//! The machine is shared with other tests and builds, so every rule the tests write is scoped to
//! a unique token (it appears in the parent command line of the processes the tests start).
#![allow(dead_code)]

pub mod webhook;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// One probe at a time per test binary: concurrent probes see each other's workloads and load
/// the 2 shared cores.
static PROBE_LOCK: Mutex<()> = Mutex::new(());

pub fn probe_lock() -> MutexGuard<'static, ()> {
    PROBE_LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

pub const START_TIMEOUT: Duration = Duration::from_secs(90);

pub fn saker_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_saker"))
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Returns true (after printing why) when live tests cannot run: not root, or no BTF.
pub fn skip(test: &str) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("")
        .to_string();
    let why = if euid != "0" {
        Some(format!("not running as root (euid {euid})"))
    } else if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        Some("kernel has no BTF (/sys/kernel/btf/vmlinux missing)".to_string())
    } else {
        None
    };
    match why {
        Some(w) => {
            eprintln!("SKIPPED {test}: {w}");
            true
        }
        None => false,
    }
}

/// A unique token (letters, digits and dashes only, so it is safe inside rule conditions).
pub fn token(label: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("sakere2e-{label}-{}-{nanos}", std::process::id())
}

/// A scratch directory below /tmp, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tok: &str) -> Scratch {
        let p = PathBuf::from("/tmp").join(tok);
        std::fs::create_dir_all(&p).expect("create scratch dir");
        Scratch(p)
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Removes a file on drop (for files created below /etc).
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One JSON alert as printed with `json_output=true`.
#[derive(Debug, Clone)]
pub struct Alert {
    pub rule: String,
    pub priority: String,
    pub output: String,
    pub fields: serde_json::Map<String, Value>,
    pub raw: Value,
}

impl Alert {
    pub fn parse(line: &str) -> Option<Alert> {
        let raw: Value = serde_json::from_str(line.trim()).ok()?;
        let o = raw.as_object()?;
        Some(Alert {
            rule: o.get("rule")?.as_str()?.to_string(),
            priority: o.get("priority")?.as_str()?.to_string(),
            output: o.get("output")?.as_str()?.to_string(),
            fields: o.get("output_fields")?.as_object()?.clone(),
            raw: raw.clone(),
        })
    }

    /// A field as text (numbers too); None when absent or null.
    pub fn field(&self, key: &str) -> Option<String> {
        match self.fields.get(key)? {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            v => Some(v.to_string()),
        }
    }

    pub fn mentions(&self, tok: &str) -> bool {
        self.fields
            .values()
            .any(|v| v.as_str().is_some_and(|s| s.contains(tok)))
    }
}

/// A running `saker` child whose stdout and stderr lines are collected as they arrive.
pub struct Session {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<JoinHandle<()>>,
}

fn collect(r: impl Read + Send + 'static, into: Arc<Mutex<Vec<String>>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            into.lock().unwrap_or_else(|p| p.into_inner()).push(line);
        }
    })
}

/// What a stopped session left behind.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
}

impl Finished {
    pub fn alerts(&self) -> Vec<Alert> {
        self.stdout.iter().filter_map(|l| Alert::parse(l)).collect()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.join("\n")
    }
}

impl Session {
    /// Starts `saker ARGS` and waits for its `saker: started` line.
    pub fn start(args: &[&std::ffi::OsStr]) -> Session {
        let mut child = Command::new(saker_bin())
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn saker");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), stdout.clone()),
            collect(child.stderr.take().expect("stderr"), stderr.clone()),
        ];
        let mut s = Session {
            child,
            stdout,
            stderr,
            readers,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while !s.stderr_has("saker: started") {
            if let Ok(Some(st)) = s.child.try_wait() {
                panic!(
                    "saker {args:?} exited before starting ({st}):\n{}",
                    s.stderr_lines().join("\n")
                );
            }
            if Instant::now() > deadline {
                let _ = s.child.kill();
                panic!(
                    "saker {args:?} did not start within {START_TIMEOUT:?}:\n{}",
                    s.stderr_lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(st.success(), "kill -{sig} failed");
    }

    pub fn stderr_lines(&self) -> Vec<String> {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    pub fn stderr_has(&self, part: &str) -> bool {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .any(|l| l.contains(part))
    }

    /// Number of stderr lines containing `part`.
    pub fn stderr_count(&self, part: &str) -> usize {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|l| l.contains(part))
            .count()
    }

    pub fn alerts(&self) -> Vec<Alert> {
        self.stdout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(|l| Alert::parse(l))
            .collect()
    }

    /// Waits until `pred` holds for the alerts printed so far.
    pub fn wait_alerts(&self, what: &str, timeout: Duration, pred: impl Fn(&[Alert]) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if pred(&self.alerts()) {
                return;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; alerts so far:\n{}\nstderr:\n{}",
                    self.alerts()
                        .iter()
                        .map(|a| format!("  [{}] {}", a.rule, a.output))
                        .collect::<Vec<_>>()
                        .join("\n"),
                    self.stderr_lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until a stderr line contains `part` at least `n` times.
    pub fn wait_stderr(&self, part: &str, n: usize, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while self.stderr_count(part) < n {
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for stderr '{part}' x{n}:\n{}",
                    self.stderr_lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Lets in-flight events drain, sends SIGTERM and waits for the exit.
    pub fn stop(mut self) -> Finished {
        std::thread::sleep(Duration::from_millis(1500));
        self.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!(
                    "saker did not exit within 60 s of SIGTERM:\n{}",
                    self.stderr_lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        let take =
            |v: &Arc<Mutex<Vec<String>>>| v.lock().unwrap_or_else(|p| p.into_inner()).clone();
        Finished {
            status,
            stdout: take(&self.stdout),
            stderr: take(&self.stderr),
        }
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        // A panicking test must not leave a probe attached.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs `sh -c SCRIPT TOKEN` so that every process the script starts has the token in its parent
/// command line. Scripts end with `; true` so the shell forks instead of exec'ing the last command.
pub fn sh(script: &str, tok: &str) -> Output {
    let out = Command::new("/bin/sh")
        .arg("-c")
        .arg(script)
        .arg(tok)
        .stdin(Stdio::null())
        .output()
        .expect("run sh");
    assert!(
        out.status.success(),
        "workload `{script}` failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A TCP listener on loopback that accepts and drops connections; returns its port.
pub fn tcp_listener() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind listener");
    let port = l.local_addr().expect("local addr").port();
    std::thread::spawn(move || for _c in l.incoming().map_while(Result::ok) {});
    port
}

/// A free loopback port (bound and released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A minimal HTTP/1.0 GET: (status code, body).
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to web server");
    s.set_read_timeout(Some(Duration::from_secs(10))).ok();
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").expect("send request");
    let mut resp = String::new();
    s.read_to_string(&mut resp).expect("read response");
    let (head, body) = resp.split_once("\r\n\r\n").unwrap_or((&resp, ""));
    let code = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("bad HTTP status line in {head:?}"));
    (code, body.to_string())
}

/// One sample of a Prometheus/OpenMetrics text exposition.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

fn valid_metric_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_' || x == ':')
}

fn valid_label_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

fn parse_value(v: &str) -> Result<f64, String> {
    match v {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => v.parse().map_err(|_| format!("bad sample value {v:?}")),
    }
}

/// Parses `{k="v",...}` starting after `{`; returns the labels and the rest after `}`.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let mut rest = s;
    loop {
        rest = rest.trim_start_matches(',');
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without '='")?;
        let name = &rest[..eq];
        if !valid_label_name(name) {
            return Err(format!("bad label name {name:?}"));
        }
        let r = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = r.char_indices();
        let end = loop {
            match chars.next() {
                None => return Err("unterminated label value".into()),
                Some((i, '"')) => break i,
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, '\\')) => value.push('\\'),
                    Some((_, '"')) => value.push('"'),
                    other => return Err(format!("bad escape in label value: {other:?}")),
                },
                Some((_, c)) => value.push(c),
            }
        };
        if labels.insert(name.to_string(), value).is_some() {
            return Err(format!("duplicate label {name}"));
        }
        rest = &r[end + 1..];
        if !(rest.starts_with(',') || rest.starts_with('}')) {
            return Err(format!("expected ',' or '}}' after label {name}"));
        }
    }
}

/// A strict parser of the Prometheus text / OpenMetrics exposition: every line is a comment
/// (`# HELP`, `# TYPE`, `# UNIT`, `# EOF`) or a well-formed sample; every sample belongs to a
/// family declared with `# TYPE` before it.
pub fn parse_metrics(text: &str) -> Result<Vec<Sample>, String> {
    let mut samples = Vec::new();
    let mut families: Vec<String> = Vec::new();
    let mut eof = false;
    for (n, line) in text.lines().enumerate() {
        let err = |e: String| format!("line {}: {e}: {line:?}", n + 1);
        if eof {
            return Err(err("content after # EOF".into()));
        }
        if line.is_empty() {
            continue;
        }
        if let Some(c) = line.strip_prefix('#') {
            let mut parts = c.trim_start().splitn(3, ' ');
            match parts.next() {
                Some("EOF") => eof = true,
                Some("HELP") | Some("UNIT") => {
                    let name = parts.next().ok_or_else(|| err("no name".into()))?;
                    if !valid_metric_name(name) {
                        return Err(err("bad metric name".into()));
                    }
                }
                Some("TYPE") => {
                    let name = parts.next().ok_or_else(|| err("no name".into()))?;
                    let ty = parts.next().ok_or_else(|| err("no type".into()))?;
                    let known = [
                        "counter",
                        "gauge",
                        "histogram",
                        "summary",
                        "untyped",
                        "unknown",
                        "info",
                        "stateset",
                        "gaugehistogram",
                    ];
                    if !valid_metric_name(name) || !known.contains(&ty) {
                        return Err(err("bad TYPE line".into()));
                    }
                    families.push(name.to_string());
                }
                _ => return Err(err("unknown comment".into())),
            }
            continue;
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err("no value".into()))?;
        let name = &line[..name_end];
        if !valid_metric_name(name) {
            return Err(err("bad metric name".into()));
        }
        let (labels, rest) = if line[name_end..].starts_with('{') {
            parse_labels(&line[name_end + 1..]).map_err(err)?
        } else {
            (BTreeMap::new(), &line[name_end..])
        };
        let mut vals = rest.split_whitespace();
        let value = parse_value(vals.next().ok_or_else(|| err("no value".into()))?).map_err(err)?;
        if let Some(ts) = vals.next() {
            ts.parse::<f64>().map_err(|_| err("bad timestamp".into()))?;
        }
        if vals.next().is_some() {
            return Err(err("trailing text".into()));
        }
        let owned = families.iter().any(|f| {
            name == f
                || ["_total", "_created", "_bucket", "_sum", "_count", "_info"]
                    .iter()
                    .any(|s| name.strip_prefix(f.as_str()) == Some(s))
        });
        if !owned {
            return Err(err("sample without a preceding # TYPE".into()));
        }
        samples.push(Sample {
            name: name.to_string(),
            labels,
            value,
        });
    }
    Ok(samples)
}

/// The samples named `name` whose labels include all of `labels`.
pub fn find<'a>(samples: &'a [Sample], name: &str, labels: &[(&str, &str)]) -> Vec<&'a Sample> {
    samples
        .iter()
        .filter(|s| {
            s.name == name
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .collect()
}

/// The behaviours of issue #4, one custom rule each, every rule scoped to the token.
pub fn behaviour_rules(tok: &str, port: u16) -> String {
    let out = "proc.name=%proc.name proc.pname=%proc.pname user.name=%user.name fd.name=%fd.name \
               target=%evt.arg.target file=%evt.arg.filename pcmdline=%proc.pcmdline";
    let rules = [
        (
            "E2E shell spawned",
            "evt.type in (execve, execveat) and evt.rawres = 0 and proc.name = sh".to_string(),
        ),
        (
            "E2E shadow opened",
            "evt.type in (open, openat, openat2) and fd.name = /etc/shadow".to_string(),
        ),
        (
            "E2E write below etc",
            "evt.type in (open, openat, openat2) and evt.is_open_write = true \
             and fd.name startswith /etc/"
                .to_string(),
        ),
        (
            "E2E symlink to etc",
            "evt.type in (symlink, symlinkat) and evt.arg.target startswith /etc/".to_string(),
        ),
        (
            "E2E unshare",
            "evt.type = unshare and evt.rawres = 0".to_string(),
        ),
        (
            "E2E setns",
            "evt.type = setns and evt.rawres = 0".to_string(),
        ),
        (
            "E2E chmod",
            "evt.type in (chmod, fchmod, fchmodat) and evt.rawres = 0".to_string(),
        ),
        (
            "E2E connect",
            format!("evt.type = connect and fd.sport = {port}"),
        ),
    ];
    let mut y = String::new();
    for (name, cond) in rules {
        y.push_str(&format!(
            "- rule: {name}\n  desc: end-to-end test rule\n  condition: >\n    {cond}\n    \
             and proc.pcmdline contains {tok}\n  output: \"{name}: {out}\"\n  priority: WARNING\n  \
             tags: [e2e]\n\n"
        ));
    }
    y
}

/// Performs the behaviours once, from `sh -c ... TOKEN` (so every process has the token in its
/// parent command line). Files go to `dir`; the file below /etc is removed again.
pub fn perform_behaviours(tok: &str, dir: &Path, port: u16) {
    let etc_file = PathBuf::from("/etc").join(format!("{tok}.conf"));
    let _cleanup = RemoveOnDrop(etc_file.clone());
    let d = dir.display();
    let script = format!(
        "sh -c true; cat /etc/shadow >/dev/null; touch {etc}; ln -sf /etc/shadow {d}/link; \
         unshare -U true; nsenter -t $$ -m true; touch {d}/f; chmod u+s {d}/f; \
         /usr/bin/python3 -c 'import socket,sys; socket.create_connection((\"127.0.0.1\", \
         int(sys.argv[1]))).close()' {port}; true",
        etc = etc_file.display()
    );
    sh(&script, tok);
}

/// (rule, proc.name) for each behaviour of [`perform_behaviours`].
pub const BEHAVIOURS: [(&str, &str); 8] = [
    ("E2E shell spawned", "sh"),
    ("E2E shadow opened", "cat"),
    ("E2E write below etc", "touch"),
    ("E2E symlink to etc", "ln"),
    ("E2E unshare", "unshare"),
    ("E2E setns", "nsenter"),
    ("E2E chmod", "chmod"),
    ("E2E connect", "python3"),
];
