//! Issue #14: Falco's command line and falco.yaml keys, as a Falco user's scripts use them.
//! None of these need root or the probe: `--dry-run`, `-e` (replay) and the informational
//! flags never open it.

use std::io::Read as _;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn saker(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_saker"))
        .args(args)
        .env_remove("SAKER_LOG_SYSLOG_PATH")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

struct Dir(PathBuf);

impl Dir {
    fn new(tag: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("saker-falco-cli-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        Dir(d)
    }
    fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.0.join(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, content).unwrap();
        p
    }
    fn s(&self, name: &str) -> String {
        self.0.join(name).display().to_string()
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const GOOD: &str = "- rule: Cat closes\n  desc: every close by cat, a rule for tests of the command line\n  condition: evt.type=close and proc.name=cat\n  output: \"cat closed %fd.name\"\n  priority: WARNING\n  tags: [test]\n";
const BAD: &str = "- rule: Broken\n  desc: x\n  condition: evt.type=close and no.such.field=1\n  output: x\n  priority: WARNING\n";

fn cat_write() -> String {
    shared()
        .join("captures/cat_write.scap")
        .display()
        .to_string()
}

#[test]
fn validate_exits_1_on_any_error_and_prints_falcos_summary() {
    let d = Dir::new("validate");
    let good = d.file("good.yaml", GOOD);
    let bad = d.file("bad.yaml", BAD);
    let g = good.display().to_string();
    let b = bad.display().to_string();
    let o = saker(&["-V", &g]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert_eq!(text(&o.stdout), format!("{g}: Ok\n"));
    let o = saker(&["-V", &b]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o.stdout).contains(&format!("{b}: Invalid")));
    assert!(
        text(&o.stderr).contains("no.such.field"),
        "{}",
        text(&o.stderr)
    );
    // Repeatable: one bad file fails the whole run.
    let o = saker(&["-V", &g, "--validate", &b]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(text(&o.stdout), format!("{g}: Ok\n{b}: Invalid\n"));
    let o = saker(&["-V", "/nonexistent/rules.yaml"]);
    assert_eq!(o.status.code(), Some(1), "a missing file must fail");
    // JSON through json_output, as Falco users pass it.
    let o = saker(&["-V", &b, "-o", "json_output=true"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["falco_load_results"][0]["successful"], false);
    let o = saker(&["-V", &g, "--json", "-L"]);
    assert_eq!(o.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["falco_describe_results"]["rules"][0]["info"]["name"],
        "Cat closes"
    );
}

#[test]
fn version_is_not_validate() {
    let o = saker(&["--version"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o.stdout).starts_with("Saker version: "),
        "{}",
        text(&o.stdout)
    );
    let o = saker(&["--version", "-o", "json_output=true"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["saker_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["falco_version"], "0.44.0");
}

#[test]
fn describe_all_and_one_rule() {
    let d = Dir::new("describe");
    let r = d.file("r.yaml", GOOD).display().to_string();
    let o = saker(&["-L", "-r", &r]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], format!("{:<50} Description", "Rule"));
    assert_eq!(lines[1], format!("{:<50} -----------", "----"));
    assert!(lines[2].starts_with(&format!("{:<50} every close by cat", "Cat closes")));
    let o = saker(&["-l", "Cat closes", "-r", &r, "-o", "json_output=true"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["rules"][0]["info"]["priority"], "Warning");
    assert_eq!(v["rules"][0]["info"]["tags"], serde_json::json!(["test"]));
    let o = saker(&["-l", "No such rule", "-r", &r]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("Rule 'No such rule' is not loaded"));
}

#[test]
fn list_fields_events_and_ignored() {
    let o = saker(&["--list=syscall", "-N"]);
    assert_eq!(o.status.code(), Some(0));
    let names = text(&o.stdout);
    assert!(names.lines().any(|l| l == "proc.name"));
    assert!(
        names.lines().all(|l| !l.contains(' ')),
        "-N prints names only"
    );
    let o = saker(&["--list", "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v.as_array().unwrap().iter().any(|f| f["name"] == "fd.name"));
    let o = saker(&["--list=k8s_audit", "-N"]);
    assert_eq!(o.status.code(), Some(0));
    let names = text(&o.stdout);
    assert!(names.lines().any(|l| l == "ka.req.pod.containers.image"));
    assert!(names.lines().any(|l| l == "jevt.value"));
    assert!(
        !names.lines().any(|l| l == "proc.name"),
        "syscall fields are not k8s_audit's"
    );
    let o = saker(&["--list=syscall", "-N"]);
    assert!(!text(&o.stdout).lines().any(|l| l == "ka.verb"));
    let o = saker(&["--list=cloudtrail"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("unknown event source 'cloudtrail'"));
    let o = saker(&["--list", "--markdown", "--format", "json"]);
    assert_eq!(o.status.code(), Some(2));
    let o = saker(&["--list-events"]);
    let ev = text(&o.stdout);
    assert!(ev.starts_with("Syscall events:"));
    assert!(
        ev.lines().any(|l| l.starts_with("  [<] execve(")),
        "execve is captured"
    );
    let o = saker(&["-i"]);
    let ig = text(&o.stdout);
    assert!(ig.starts_with("Ignored syscall(s):\n"));
    assert!(
        ig.lines().any(|l| l == "- read"),
        "the probe does not capture read"
    );
    assert!(!ig.lines().any(|l| l == "- execve"));
}

#[test]
fn support_reports_rules_files_with_sha256() {
    let d = Dir::new("support");
    let r = d.file("r.yaml", GOOD);
    let o = saker(&["--support", "-r", &r.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sum = Command::new("sha256sum").arg(&r).output().unwrap();
    let expected = text(&sum.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(v["rules_files"][0]["sha256"], expected.as_str());
    assert_eq!(v["rules_files"][0]["variants"][0]["content"], GOOD);
    let mut release = String::new();
    std::fs::File::open("/proc/sys/kernel/osrelease")
        .unwrap()
        .read_to_string(&mut release)
        .unwrap();
    assert_eq!(v["system_info"]["release"], release.trim());
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
}

/// Falco 0.44's own falco.yaml: every key is known to Saker (no "unknown config key"), and the
/// only warnings are the documented unsupported keys that this file sets.
#[test]
fn falcos_own_falco_yaml_dry_runs_with_exactly_the_documented_warnings() {
    let cfg = shared().join("falco-config/falco.yaml");
    let rules = shared().join("falco-rules/falco_rules.yaml");
    let o = saker(&[
        "run",
        "--dry-run",
        "-c",
        &cfg.display().to_string(),
        "-r",
        &rules.display().to_string(),
    ]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    let warnings: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("saker: warning: falco.yaml key"))
        .collect();
    assert_eq!(
        warnings,
        vec![
            "saker: warning: falco.yaml key 'falco_libs.thread_table_auto_purging_interval_s' is not supported and has no effect",
            "saker: warning: falco.yaml key 'falco_libs.thread_table_auto_purging_thread_timeout_s' is not supported and has no effect",
            "saker: warning: falco.yaml key 'falco_libs.snaplen' is not supported and has no effect",
        ],
        "{err}"
    );
    assert!(!err.contains("unknown config key"), "{err}");
    let doc = std::fs::read_to_string(repo().join("docs/coming-from-falco.md")).unwrap();
    for w in &warnings {
        let key = w.split('\'').nth(1).unwrap();
        assert!(doc.contains(&format!("`{key}`")), "{key} is not documented");
    }
    assert!(err.contains("saker: dry run: config OK"), "{err}");
}

#[test]
fn unsupported_keys_warn_once_with_the_exact_text() {
    let o = saker(&["--dry-run", "-o", "falco_libs.snaplen=100"]);
    assert_eq!(o.status.code(), Some(0));
    let err = text(&o.stderr);
    let line =
        "saker: warning: falco.yaml key 'falco_libs.snaplen' is not supported and has no effect";
    assert_eq!(err.matches(line).count(), 1, "{err}");
    let o = saker(&["--dry-run", "-o", "load_plugins=[cloudtrail]"]);
    assert!(text(&o.stderr).contains("falco.yaml key 'plugins' is not supported"));
    let o = saker(&["--dry-run", "-o", "engine.kind=kmod"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("config error at 'engine.kind': 'kmod' is not supported"),
        "{}",
        text(&o.stderr)
    );
    let o = saker(&["--dry-run", "-o", "log_level=loud"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("Unknown log level 'loud'"));
}

#[test]
fn option_values_follow_the_keys_type() {
    let d = Dir::new("typed");
    let r = d.file("r.yaml", GOOD).display().to_string();
    let out = d.s("program.out");
    // Falco's documented program has ": " in it, which YAML would read as a map.
    let program = format!("program_output.program=jq -c '{{text: .output}}' >> {out}");
    let o = saker(&[
        "-e",
        &cat_write(),
        "-r",
        &r,
        "-o",
        "json_output=true",
        "-o",
        "stdout_output.enabled=false",
        "-o",
        "program_output.enabled=true",
        "-o",
        &program,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let written = std::fs::read_to_string(&out).unwrap();
    let first: serde_json::Value = serde_json::from_str(written.lines().next().unwrap()).unwrap();
    assert!(
        first["text"].as_str().unwrap().contains("cat closed"),
        "{written}"
    );
    // Typed keys still take YAML: a number for a string key is a string, a bool is a bool.
    let o = saker(&["--dry-run", "-o", "hostname=1234", "-o", "json_output=yes"]);
    assert_eq!(o.status.code(), Some(2), "'yes' is no bool for json_output");
}

#[test]
fn e_replays_a_capture_like_saker_replay() {
    let d = Dir::new("e");
    let r = d.file("r.yaml", GOOD).display().to_string();
    let a = saker(&["-e", &cat_write(), "-r", &r, "-o", "json_output=true"]);
    assert_eq!(a.status.code(), Some(0), "{}", text(&a.stderr));
    let b = saker(&[
        "replay",
        "--no-progress",
        "-r",
        &r,
        "-o",
        "json_output=true",
        &cat_write(),
    ]);
    let rules = |o: &Output| {
        text(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["rule"].to_string())
            .collect::<Vec<_>>()
    };
    assert!(!rules(&a).is_empty());
    assert_eq!(rules(&a), rules(&b));
    // engine.kind: replay does the same from the config.
    let c = saker(&[
        "-r",
        &r,
        "-o",
        "json_output=true",
        "-o",
        "engine.kind=replay",
        "-o",
        &format!("engine.replay.capture_file={}", cat_write()),
    ]);
    assert_eq!(rules(&c), rules(&a), "{}", text(&c.stderr));
}

#[test]
fn static_fields_reach_alerts() {
    let d = Dir::new("static");
    let r = d.file("r.yaml", GOOD).display().to_string();
    let o = saker(&[
        "-e",
        &cat_write(),
        "-r",
        &r,
        "-o",
        "json_output=true",
        "-o",
        "static_fields.cluster=prod-eu",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let line = text(&o.stdout);
    let v: serde_json::Value = serde_json::from_str(line.lines().next().unwrap()).unwrap();
    assert_eq!(v["output_fields"]["static.cluster"], "prod-eu");
    assert!(
        v["output"]
            .as_str()
            .unwrap()
            .contains(" static_cluster=prod-eu"),
        "{v}"
    );
}

#[test]
fn missing_rules_files_entries_are_skipped_with_a_warning() {
    let d = Dir::new("missing");
    let r = d.file("r.yaml", GOOD);
    let cfg = d.file(
        "saker.yaml",
        &format!(
            "rules_files:\n  - /nonexistent/falco_rules.yaml\n  - {}\n",
            r.display()
        ),
    );
    let o = saker(&["--dry-run", "-c", &cfg.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains(
        "saker: warning: rules file /nonexistent/falco_rules.yaml does not exist, skipped"
    ));
    // A path given with -r is the user's explicit choice: missing is an error.
    let o = saker(&["--dry-run", "-r", "/nonexistent/x.yaml"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn config_files_merge_in_name_order() {
    let d = Dir::new("configd");
    let r = d.file("r.yaml", GOOD);
    d.file("config.d/10-json.yaml", "json_output: true\n");
    d.file(
        "config.d/20-rules.yaml",
        &format!("rules_files: [{}]\n", r.display()),
    );
    let cfg = d.file(
        "saker.yaml",
        &format!("config_files: [{}]\nrules_files: []\n", d.s("config.d")),
    );
    let o = saker(&["-e", &cat_write(), "-c", &cfg.display().to_string()]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let first = text(&o.stdout);
    let v: serde_json::Value = serde_json::from_str(first.lines().next().unwrap())
        .expect("json_output from config.d/10-json.yaml");
    assert_eq!(
        v["rule"], "Cat closes",
        "rules_files appended from config.d"
    );
}

#[test]
fn log_level_stderr_and_syslog_are_honoured() {
    let o = saker(&["--dry-run"]);
    assert!(text(&o.stderr).contains("saker: dry run: config OK"));
    let o = saker(&["--dry-run", "-o", "log_level=warning"]);
    assert!(!text(&o.stderr).contains("dry run"), "{}", text(&o.stderr));
    let o = saker(&[
        "--dry-run",
        "-o",
        "log_stderr=false",
        "-o",
        "capture.enabled=true",
    ]);
    assert_eq!(text(&o.stderr), "", "log_stderr: false silences the log");
    let o = saker(&["--dry-run", "-v", "-o", "log_level=error"]);
    assert!(text(&o.stderr).contains("dry run"), "-v raises the level");
    // log_syslog: RFC 3164 datagrams, facility user.
    let d = Dir::new("syslog");
    let sock_path = d.0.join("log.sock");
    let sock = UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_saker"))
        .args([
            "--dry-run",
            "-o",
            "log_syslog=true",
            "-o",
            "log_stderr=false",
        ])
        .env("SAKER_LOG_SYSLOG_PATH", &sock_path)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0));
    let mut buf = [0u8; 4096];
    let mut got = Vec::new();
    while let Ok(n) = sock.recv(&mut buf) {
        got.push(text(&buf[..n]));
        if got.iter().any(|m| m.contains("dry run")) {
            break;
        }
    }
    let m = got
        .iter()
        .find(|m| m.contains("dry run"))
        .expect("syslog line");
    assert!(m.starts_with("<14>"), "{m}");
    assert!(m.contains(" saker["), "{m}");
}

#[test]
fn output_errors_reach_stderr() {
    let d = Dir::new("errs");
    let r = d.file("r.yaml", GOOD).display().to_string();
    let o = saker(&[
        "-e",
        &cat_write(),
        "-r",
        &r,
        "-o",
        "stdout_output.enabled=false",
        "-o",
        "http_output.enabled=true",
        "-o",
        "http_output.url=http://127.0.0.1:1/",
        "-o",
        "http_output.retries=0",
    ]);
    assert_eq!(o.status.code(), Some(0));
    let err = text(&o.stderr);
    assert!(
        err.lines()
            .any(|l| l.starts_with("saker: error: http output: ")
                && l.contains("dropped (delivery failed)")
                && l.contains("Connection refused")),
        "a refused connection must be logged: {err}"
    );
}

#[test]
fn event_source_flags_and_all_events() {
    let ok = saker(&["--disable-source", "k8s_audit", "--dry-run"]);
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    let off = saker(&["--disable-source", "syscall", "--dry-run"]);
    assert!(!off.status.success());
    assert!(
        text(&off.stderr)
            .contains("the syscall source is disabled and no k8s_audit input is configured"),
        "{}",
        text(&off.stderr)
    );
    let only_audit = saker(&["--enable-source", "k8s_audit", "--dry-run"]);
    assert!(!only_audit.status.success());
    let bad = saker(&["--enable-source", "foo", "--dry-run"]);
    assert!(
        text(&bad.stderr).contains("unknown event source \"foo\""),
        "{}",
        text(&bad.stderr)
    );
    let all = saker(&["-A", "--dry-run"]);
    assert!(all.status.success());
    assert!(text(&all.stderr).contains("saker: warning: -A has no effect"));
}
