//! Everyday workloads must not raise a single alert with the built-in rules: package-manager
//! queries, compiling and running a small C program, a local web server answering requests, and
//! cron-like shell scripts working in /tmp.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

const HELLO_C: &str = r#"#include <stdio.h>
int main(void) { printf("hello from saker benign test\n"); return 0; }
"#;

#[test]
#[ignore = "needs root"]
fn benign_workloads_raise_no_alerts() {
    require_live("benign_workloads_raise_no_alerts");
    let tok = token("benign");
    let dir = Scratch::new(&tok);
    let d = dir.path.to_string_lossy().to_string();
    std::fs::write(dir.file("hello.c"), HELLO_C).unwrap();
    std::fs::write(dir.file("index.html"), "<h1>ok</h1>\n").unwrap();

    let control_tok = token("benign-control");
    let (alerts, scope) = live(
        &[],
        |s| {
            // Package-manager queries.
            let out = s.sh("dpkg -l >/dev/null; dpkg -s coreutils >/dev/null; apt-cache policy bash >/dev/null; true");
            assert!(out.status.success(), "package queries failed");

            // Compile and run a small program.
            let out = s.sh(&format!("cd {d} && gcc -O2 -o hello hello.c && ./hello"));
            assert!(
                String::from_utf8_lossy(&out.stdout).contains("hello from saker"),
                "compiled program did not run: {}",
                String::from_utf8_lossy(&out.stderr)
            );

            // A local web server answering a few requests.
            let port = free_port();
            let mut server = s.spawn(
                Command::new(python())
                    .args([
                        "-m",
                        "http.server",
                        "--bind",
                        "127.0.0.1",
                        &port.to_string(),
                        "--directory",
                        &d,
                    ])
                    .stdout(Stdio::null())
                    .stderr(Stdio::null()),
            );
            wait_for_port(port, "the web server", Duration::from_secs(20));
            let out = s.sh(&format!(
                "for i in 1 2 3 4 5; do curl -sf http://127.0.0.1:{port}/index.html >/dev/null || exit 1; done; true"
            ));
            let _ = server.kill();
            let _ = server.wait();
            assert!(
                out.status.success(),
                "curl against the local web server failed"
            );

            // Cron-like maintenance scripts working in /tmp.
            let cron = format!(
                "for i in 1 2 3; do date >> {d}/job.log; echo $i > {d}/state.new; mv {d}/state.new {d}/state; done; \
                 find {d} -name '*.log' -mmin -5 | wc -l > {d}/count; gzip -kf {d}/job.log; \
                 tar -C {d} -czf {d}/backup.tgz job.log state; rm -f {d}/backup.tgz; true"
            );
            assert!(s.sh(&cron).status.success(), "cron-like script failed");

            // Positive control outside the workload's scope: proves detection was live.
            let control = Command::new("/bin/sh")
                .args(["-c", "cat /etc/shadow >/dev/null; true", &control_tok])
                .status();
            assert!(
                control.is_ok_and(|st| st.success()),
                "control command failed"
            );
        },
        Scope::with_token(&tok),
    );
    let ours: Vec<_> = alerts.iter().filter(|a| scope.owns(a)).collect();
    assert!(
        ours.is_empty(),
        "benign workloads raised {} alert(s):\n{}",
        ours.len(),
        ours.iter()
            .map(|a| format!("  [{}] {}", a.rule, a.output))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let control = Scope::with_token(&control_tok);
    assert!(
        alerts
            .iter()
            .any(|a| control.owns(a) && a.rule == "Sensitive file read by untrusted program"),
        "the positive control (cat /etc/shadow) was not detected, so the zero count proves nothing"
    );
    let others = alerts.len();
    eprintln!(
        "benign: 0 alerts from the workload ({others} unrelated alerts from other host activity)"
    );
}
