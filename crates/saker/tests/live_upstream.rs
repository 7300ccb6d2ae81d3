//! Live attack behaviours against Falco's own stable rules file, loaded unchanged: each behaviour
//! is really performed (on the host or in a real podman container) and the upstream rule must
//! fire with the process, file and container fields its output names.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::*;

/// Runs `act` under `saker run` with the upstream file and `rule_matching: all` (with Falco's
/// default `first`, one event shows only the first of several matching rules).
fn session(act: impl FnOnce(&mut Scope), scope: Scope) -> Vec<Alert> {
    let _guard = probe_lock();
    let rules = upstream();
    let saker = Saker::start(&[
        "-o".as_ref(),
        "rule_matching=all".as_ref(),
        "-r".as_ref(),
        rules.as_os_str(),
    ]);
    let mut scope = scope;
    act(&mut scope);
    saker.stop()
}

fn upstream() -> PathBuf {
    let p = repo_root().join("../shared/falco-rules/falco_rules.yaml");
    assert!(p.exists(), "{} is missing", p.display());
    p
}

/// The alerts of `rule` that satisfy `pred`.
fn of<'a>(alerts: &'a [Alert], rule: &str, pred: impl Fn(&Alert) -> bool) -> Vec<&'a Alert> {
    alerts
        .iter()
        .filter(|a| a.rule == rule && pred(a))
        .collect()
}

fn need(alerts: &[Alert], rule: &str, what: &str, pred: impl Fn(&Alert) -> bool) -> Alert {
    of(alerts, rule, pred).first().map_or_else(
        || {
            let seen: Vec<String> = alerts
                .iter()
                .map(|a| format!("  [{}] {}", a.rule, a.output))
                .collect();
            panic!(
                "'{rule}' did not fire for {what}; alerts:\n{}",
                seen.join("\n")
            )
        },
        |a| (*a).clone(),
    )
}

fn has(a: &Alert, key: &str, part: &str) -> bool {
    a.field(key).is_some_and(|v| v.contains(part))
}

#[test]
#[ignore = "needs root"]
fn host_behaviours_raise_the_upstream_alerts() {
    require_live("host_behaviours_raise_the_upstream_alerts");
    let tok = token("uph");
    let dir = Scratch::new(&tok);
    let d = dir.path.display().to_string();
    let log = format!("/var/log/{tok}.log");
    let py = python();
    let script = format!(
        r#"
import ctypes, os, subprocess
d = "{d}"
# Sensitive file read by a program that is not a shell's child, through a traversal path.
subprocess.run(["cat", "/etc/../etc/../etc/shadow"], stdout=subprocess.DEVNULL)
# Links over sensitive files.
os.symlink("/etc/shadow", d + "/sym-{tok}")
try:
    os.link("/etc/shadow", d + "/hard-{tok}")
except OSError:
    pass
# A log file truncated.
open("{log}", "w").close()
os.unlink("{log}")
# A binary run from /dev/shm.
import shutil
shutil.copy("/bin/true", "/dev/shm/{tok}")
subprocess.run(["/dev/shm/{tok}"])
os.unlink("/dev/shm/{tok}")
# Credential searches.
subprocess.run(["find", d, "-name", "id_rsa"], stdout=subprocess.DEVNULL)
subprocess.run(["grep", "-r", "aws_secret_access_key", d], stdout=subprocess.DEVNULL)
# Bulk data removal.
open(d + "/junk", "w").write("x")
subprocess.run(["shred", "-u", d + "/junk"])
# ptrace attach to a child.
child = subprocess.Popen(["sleep", "5"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace(16, child.pid, 0, 0)  # PTRACE_ATTACH
os.waitpid(child.pid, 0)  # its attach stop
libc.ptrace(17, child.pid, 0, 0)  # PTRACE_DETACH
child.kill()
child.wait()
# Fileless execution.
fd = os.memfd_create("{tok}")
os.write(fd, open("/bin/true", "rb").read())
pid = os.fork()
if pid == 0:
    os.execv("/proc/self/fd/%d" % fd, ["{tok}"])
os.waitpid(pid, 0)
"#
    );
    let alerts = session(
        |scope| {
            let out = scope.run(Command::new(py).args(["-c", &script, &tok]));
            ok(&out, "behaviours");
        },
        Scope::with_token(&tok),
    );

    let a = need(
        &alerts,
        "Read sensitive file untrusted",
        "cat /etc/shadow",
        |a| has(a, "fd.name", "/etc/shadow") && has(a, "proc.name", "cat"),
    );
    assert_eq!(a.field("user.name").as_deref(), Some("root"));
    need(
        &alerts,
        "Directory traversal monitored file read",
        "a ../ path",
        |a| has(a, "fd.nameraw", "/etc/../etc/../etc/shadow") && has(a, "proc.pname", "python"),
    );
    need(
        &alerts,
        "Create Symlink Over Sensitive Files",
        "ln -s",
        |a| {
            has(a, "evt.arg.linkpath", &format!("sym-{tok}"))
                && has(a, "evt.arg.target", "/etc/shadow")
        },
    );
    need(&alerts, "Create Hardlink Over Sensitive Files", "ln", |a| {
        has(a, "evt.arg.newpath", &format!("hard-{tok}"))
    });
    need(&alerts, "Clear Log Activities", "O_TRUNC of a log", |a| {
        a.field("fd.name").as_deref() == Some(log.as_str())
    });
    need(&alerts, "Execution from /dev/shm", "/dev/shm exec", |a| {
        has(a, "proc.exepath", &format!("/dev/shm/{tok}"))
    });
    need(
        &alerts,
        "Search Private Keys or Passwords",
        "find -name id_rsa",
        |a| has(a, "proc.cmdline", "id_rsa"),
    );
    need(&alerts, "Find AWS Credentials", "grep aws_secret", |a| {
        has(a, "proc.cmdline", "aws_secret_access_key")
    });
    need(&alerts, "Remove Bulk Data from Disk", "shred", |a| {
        has(a, "proc.name", "shred")
    });
    need(
        &alerts,
        "PTRACE attached to process",
        "PTRACE_ATTACH",
        |a| has(a, "proc.cmdline", &tok),
    );
    // The kernel names a process exec'd from /proc/self/fd/N "N"; its parent is the script.
    need(
        &alerts,
        "Fileless execution via memfd_create",
        "memfd exec",
        |a| has(a, "proc.pname", "python") && has(a, "evt.arg.flags", "EXE_FROM_MEMFD"),
    );
}

#[test]
#[ignore = "needs root"]
fn container_behaviours_raise_the_upstream_alerts() {
    require_live("container_behaviours_raise_the_upstream_alerts");
    let tok = token("upc");
    let port = listener("127.0.0.1:0");
    // Paths with a slash make busybox's shell exec the applet under its own name (otherwise it
    // re-executes itself as /proc/self/exe and the process is called `exe`).
    let plain = format!(
        "sleep 1; /bin/arping -c 1 -w 1 127.0.0.1; /bin/nc 127.0.0.1 {port} -e /bin/true; \
         cp /bin/busybox /tmp/dropped; /tmp/dropped true; echo {tok} >/dev/null"
    );
    let privileged = format!(
        "sleep 1; echo 1 > /tmp/release_agent; cp /bin/busybox /tmp/debugfs; /tmp/debugfs true; \
         /bin/busybox insmod /etc/passwd; echo {tok} >/dev/null"
    );
    let a = Container::create(&format!("{tok}-a"), &["--network", "host"], &plain);
    let b = Container::create(&format!("{tok}-b"), &["--privileged"], &privileged);
    let alerts = session(
        |scope| {
            a.start_attached(scope);
            b.start_attached(scope);
        },
        Scope::with_token(&tok),
    );
    let in_a = |x: &Alert| {
        a.id.starts_with(&x.field("container.id").unwrap_or_default())
    };
    let in_b = |x: &Alert| {
        b.id.starts_with(&x.field("container.id").unwrap_or_default())
    };

    let x = need(
        &alerts,
        "Packet socket created in container",
        "arping",
        |x| in_a(x) && has(x, "proc.name", "arping"),
    );
    assert_eq!(x.field("container.name").as_deref(), Some(a.name.as_str()));
    need(
        &alerts,
        "Netcat Remote Code Execution in Container",
        "nc -e",
        |x| in_a(x) && has(x, "proc.cmdline", " -e /bin/true"),
    );
    need(
        &alerts,
        "Redirect STDOUT/STDIN to Network Connection in Container",
        "nc -e dup2 of the socket",
        |x| in_a(x) && has(x, "proc.name", "nc"),
    );
    need(
        &alerts,
        "Drop and execute new binary in container",
        "/tmp/dropped",
        |x| in_a(x) && has(x, "proc.exepath", "/tmp/dropped"),
    );
    let x = need(
        &alerts,
        "Detect release_agent File Container Escapes",
        "a write to release_agent",
        |x| in_b(x) && has(x, "fd.name", "release_agent"),
    );
    assert_eq!(x.field("container.name").as_deref(), Some(b.name.as_str()));
    need(
        &alerts,
        "Debugfs Launched in Privileged Container",
        "debugfs in a privileged container",
        |x| in_b(x) && has(x, "proc.name", "debugfs"),
    );
    need(
        &alerts,
        "Linux Kernel Module Injection Detected",
        "insmod in a privileged container",
        in_b,
    );
}
