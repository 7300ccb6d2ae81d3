//! The one harness of the `saker` binary's integration tests: start `saker run`/`capture` as a
//! child, perform real behaviour in attributable processes, stop it and look at the alerts.
//! What is not specific to the binary (root checks, tokens, scratch dirs, the alert type,
//! podman and containerd) comes from the `saker-testkit` crate.
//!
//! The machine is shared (other tests, builds and containers run at the same time), so every
//! alert is *attributed* before assertions: it belongs to a test when its process group is one we
//! created, when one of its string fields contains the test's unique token, or when it comes from
//! one of the test's containers.
#![allow(dead_code, unused_imports)]

pub mod metrics;
pub mod session;
pub mod webhook;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

pub use metrics::{find, parse_metrics, Sample};
pub use saker_testkit::podman::{image, PODMAN_LIMITS};
pub use saker_testkit::{
    curl_post_json, free_port, have, ok, probe_lock, repo_root, require_live, require_root,
    shared_dir, skip_without_tools, token, wait_for_port, Alert, RemoveOnDrop, Scratch,
};
pub use session::{Finished, Saker, Session, START_TIMEOUT};

/// The binary under test; SAKER_BIN points the tests at another build.
pub fn saker_bin() -> PathBuf {
    std::env::var_os("SAKER_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_saker")))
}

pub fn builtin_rules() -> PathBuf {
    repo_root().join("rules/saker_rules.yaml")
}

pub fn custom_rules_example() -> PathBuf {
    repo_root().join("examples/custom-rules.yaml")
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

/// Runs one live case: start Saker (built-in rules unless `rules` is given), act, stop.
pub fn live(rules: &[PathBuf], act: impl FnOnce(&mut Scope), scope: Scope) -> (Vec<Alert>, Scope) {
    let _guard = probe_lock();
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

/// A loopback TCP listener for connect behaviour; returns its port.
pub fn tcp_listener() -> u16 {
    listener("127.0.0.1:0")
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
