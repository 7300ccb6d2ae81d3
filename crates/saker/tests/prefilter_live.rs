//! The in-kernel prefilter loses no alert: two `saker run` sessions watch the
//! same behaviours at once, one with the prefilter (the default) and one with
//! `engine.modern_ebpf.prefilter=false`, with the built-in rules and Falco's
//! stable rules file loaded together. Needs root and kernel BTF.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;

use common::*;

fn session(prefilter: bool) -> Saker {
    let builtin = builtin_rules();
    let upstream = repo_root().join("../shared/falco-rules/falco_rules.yaml");
    assert!(upstream.exists(), "{} is missing", upstream.display());
    let flag = format!("engine.modern_ebpf.prefilter={prefilter}");
    Saker::start(&[
        OsStr::new("-o"),
        OsStr::new("rule_matching=all"),
        OsStr::new("-o"),
        OsStr::new(&flag),
        OsStr::new("-r"),
        builtin.as_os_str(),
        OsStr::new("-r"),
        upstream.as_os_str(),
    ])
}

/// (rule, fd.name) -> count, for the alerts of this test.
fn summary(alerts: &[Alert], scope: &Scope) -> BTreeMap<(String, String), usize> {
    let mut m = BTreeMap::new();
    for a in alerts.iter().filter(|a| scope.owns(a)) {
        let fd = a.field("fd.name").unwrap_or_default();
        *m.entry((a.rule.clone(), fd)).or_default() += 1;
    }
    m
}

#[test]
#[ignore = "needs root"]
fn prefilter_on_and_off_raise_the_same_alerts() {
    require_live("prefilter_on_and_off_raise_the_same_alerts");
    let _guard = probe_lock();
    let tok = token("prefilter");
    let dir = Scratch::new(&tok);
    let file = dir.file("plain");
    std::fs::write(&file, "x").unwrap();
    let home = dir.file("home");
    std::fs::create_dir_all(home.join(".aws")).unwrap();
    std::fs::write(home.join(".aws/credentials"), "[default]").unwrap();
    let with = session(true);
    let without = session(false);
    let mut scope = Scope::with_token(&tok);
    let f = file.display().to_string();
    let h = home.display().to_string();
    // Reads the kernel filters out, reads it must keep (sensitive, through "..",
    // a hidden directory), a setuid bit set through an fd whose open the
    // prefilter dropped (re-announced to user space), and writes.
    let script = format!(
        r#"
import os, sys
for i in range(200):
    with open("{f}") as x: x.read()
with open("/etc/shadow") as x: x.read()
with open("/etc/../etc/shadow") as x: x.read()
with open("{h}/.aws/credentials") as x: x.read()
fd = os.open("{f}", os.O_RDONLY)
os.fchmod(fd, 0o4755)
nfd = os.dup(fd)
os.close(fd)
os.close(nfd)
with open("{f}.out", "w") as x: x.write("y")
"#
    );
    let out = scope.run(
        std::process::Command::new(python())
            .arg("-c")
            .arg(&script)
            .arg(&tok),
    );
    ok(&out, "behaviours");
    let a_with = with.stop();
    let a_without = without.stop();
    let s_with = summary(&a_with, &scope);
    let s_without = summary(&a_without, &scope);
    eprintln!("with the prefilter: {s_with:#?}");
    assert_eq!(s_with, s_without, "the prefilter changed the alerts");
    let has = |rule: &str, fd: &str| s_with.keys().any(|(r, n)| r == rule && n == fd);
    assert!(
        has("Read sensitive file untrusted", "/etc/shadow"),
        "{s_with:#?}"
    );
    assert!(
        has(
            "Cloud credentials file read",
            &format!("{h}/.aws/credentials")
        ),
        "{s_with:#?}"
    );
    // fd.name of the fchmod comes from the re-announced open.
    assert!(has("Setuid or setgid bit set on a file", &f), "{s_with:#?}");
}

/// `saker run --stats` prints, per rule, the estimated evaluation time and the
/// events its syscalls admitted; a rule on opens admits the opens done here.
#[test]
#[ignore = "needs root"]
fn run_stats_reports_per_rule_cost() {
    require_live("run_stats_reports_per_rule_cost");
    let _guard = probe_lock();
    let tok = token("cost");
    let dir = Scratch::new(&tok);
    let rules = dir.file("rules.yaml");
    let target = dir.file("target");
    std::fs::write(&target, "x").unwrap();
    std::fs::write(
        &rules,
        format!(
            "- rule: Cost open\n  desc: d\n  condition: evt.type in (open, openat) and fd.name = {}\n  output: o %fd.name\n  priority: INFO\n\
             - rule: Cost exec\n  desc: d\n  condition: evt.type = execve and proc.name = {tok}\n  output: o\n  priority: INFO\n",
            target.display()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(saker_bin())
        .args(["run", "--stats", "-o", "stdout_output.enabled=false", "-r"])
        .arg(&rules)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The opens start once the probe is attached (a loaded machine can take seconds).
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut all = Vec::new();
        for l in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            if l.contains("saker: started") {
                let _ = tx.send(());
            }
            all.push(l);
        }
        all.join("\n")
    });
    rx.recv_timeout(std::time::Duration::from_secs(120))
        .expect("saker run did not start");
    for _ in 0..2000 {
        drop(std::fs::File::open(&target).unwrap());
    }
    std::thread::sleep(std::time::Duration::from_secs(2));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let err = reader.join().unwrap();
    assert!(status.success(), "{err}");
    let line = |rule: &str| {
        err.lines()
            .find(|l| l.trim_end().ends_with(rule) && l.contains(" events "))
            .unwrap_or_else(|| panic!("no cost line for {rule}:\n{err}"))
            .to_string()
    };
    let events = |l: &str| -> u64 {
        l.split_whitespace()
            .nth(2)
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("bad cost line {l}"))
    };
    assert!(err.contains("Rule costs"), "{err}");
    // The opens of the target all pass the prefilter (the rule names the file).
    assert!(events(&line("Cost open")) >= 2000, "{err}");
    assert!(
        events(&line("Cost exec")) < events(&line("Cost open")),
        "{err}"
    );
}
