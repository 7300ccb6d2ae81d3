//! Output surfaces an attacker can reach: a symlink planted where the alert
//! file goes, alert text full of shell metacharacters reaching program_output,
//! and a filesystem filled up under the file output.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use saker_outputs::{Metrics, Outputs, Reason};
use saker_rules::{OutputValue, Priority};

fn file_cfg(path: &Path, keep_alive: bool) -> saker_outputs::OutputsOptions {
    let mut cfg = quiet_config();
    cfg.json_output = true;
    cfg.file_output.enabled = true;
    cfg.file_output.keep_alive = keep_alive;
    cfg.file_output.filename = path.display().to_string();
    cfg
}

#[test]
fn file_output_never_follows_a_planted_symlink() {
    let _l = logs::capture();
    for keep_alive in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, "keep\n").unwrap();
        let file = d.path().join("alerts.log");
        std::os::unix::fs::symlink(&victim, &file).unwrap();
        // A dangling link must not create its target either.
        let file2 = d.path().join("alerts2.log");
        let absent = d.path().join("created-by-saker");
        std::os::unix::fs::symlink(&absent, &file2).unwrap();
        for f in [&file, &file2] {
            let metrics = Arc::new(Metrics::new());
            let out = Outputs::start(&file_cfg(f, keep_alive), metrics.clone()).unwrap();
            out.send(Arc::new(alert(1, "R", Priority::Error)));
            out.send(Arc::new(alert(2, "R", Priority::Error)));
            let r = out.shutdown(Duration::from_secs(5));
            assert_eq!(r.output("file").unwrap().dropped[&Reason::GaveUp], 2);
            assert_eq!(r.output("file").unwrap().delivered, 0);
        }
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep\n");
        assert!(!absent.exists());
        assert!(
            !logs::matching(&[
                "file output: 1 alert dropped (delivery failed): write to ",
                "alerts.log failed: ",
                "alerts.log is a symbolic link; refusing to follow it"
            ])
            .is_empty(),
            "{:#?}",
            logs::lines()
        );
    }
}

/// The command comes from the config only; alert text only ever reaches its
/// stdin, so metacharacters in fields are data, not shell.
#[test]
fn program_output_passes_alerts_on_stdin_only() {
    for keep_alive in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let out_file = d.path().join("received");
        let marks: Vec<PathBuf> = (0..5).map(|i| d.path().join(format!("pwned{i}"))).collect();
        let hostile = [
            format!("$(touch {})", marks[0].display()),
            format!("`touch {}`", marks[1].display()),
            format!("x; touch {}", marks[2].display()),
            format!("x | touch {} &", marks[3].display()),
            format!("x\ntouch {}\n'\"", marks[4].display()),
        ];
        let mut a = alert(7, "Shell in container", Priority::Critical);
        a.output = format!("12:00:00: Critical cmd={}", hostile.join(" "));
        for (i, h) in hostile.iter().enumerate() {
            a.output_fields
                .push((format!("proc.arg{i}"), OutputValue::Str(h.clone())));
        }
        let mut cfg = quiet_config();
        cfg.json_output = true;
        cfg.program_output.enabled = true;
        cfg.program_output.keep_alive = keep_alive;
        cfg.program_output.program = format!("cat >> '{}'", out_file.display());
        let metrics = Arc::new(Metrics::new());
        let out = Outputs::start(&cfg, metrics.clone()).unwrap();
        out.send(Arc::new(a.clone()));
        out.send(Arc::new(a.clone()));
        assert!(out.shutdown(Duration::from_secs(10)).in_time);
        let got = std::fs::read_to_string(&out_file).unwrap();
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines.len(), 2, "{got}");
        for l in lines {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            for (i, h) in hostile.iter().enumerate() {
                assert_eq!(v["output_fields"][format!("proc.arg{i}")], *h);
            }
            assert_eq!(v["output"], a.output);
        }
        for m in &marks {
            assert!(
                !m.exists(),
                "{} was created: alert text ran as a command",
                m.display()
            );
        }
        assert_eq!(
            metric_value(&metrics, "saker_output_sent_total{output=\"program\"}"),
            2.0
        );
    }
}

struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// File output on a full filesystem (a 64 KiB tmpfs): writes fail with
/// ENOSPC and are counted and logged; once space is freed, alerts land again.
#[test]
#[ignore = "needs root"]
fn file_output_on_a_full_filesystem() {
    // Root for the tmpfs mount.
    saker_testkit::require_root("file_output_on_a_full_filesystem");
    let _l = logs::capture();
    for keep_alive in [false, true] {
        let d = tempfile::tempdir().unwrap();
        let st = Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=64k,mode=0700", "saker-test"])
            .arg(d.path())
            .status()
            .unwrap();
        assert!(st.success(), "mount tmpfs");
        let _m = Mount(d.path().to_path_buf());
        let file = d.path().join("alerts.log");
        let metrics = Arc::new(Metrics::new());
        let out = Outputs::start(&file_cfg(&file, keep_alive), metrics.clone()).unwrap();
        out.send(Arc::new(alert(0, "R", Priority::Error)));
        let sent = || metric_value(&metrics, "saker_output_sent_total{output=\"file\"}");
        let t0 = std::time::Instant::now();
        while sent() < 1.0 {
            assert!(t0.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(10));
        }
        // Fill every byte that is left.
        let filler = d.path().join("filler");
        let st = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "cat /dev/zero > '{}' 2>/dev/null; true",
                filler.display()
            ))
            .status()
            .unwrap();
        assert!(st.success());
        // Larger than a page, so that none fits in the last page of the file either.
        for i in 1..=5 {
            let mut a = alert(i, "R", Priority::Error);
            a.output.push_str(&"x".repeat(8192));
            out.send(Arc::new(a));
        }
        let drops = || metric_value(&metrics, "saker_output_drops_total{output=\"file\"}");
        while drops() < 5.0 {
            assert!(t0.elapsed() < Duration::from_secs(10), "drops {}", drops());
            std::thread::sleep(Duration::from_millis(10));
        }
        std::fs::remove_file(&filler).unwrap();
        for i in 6..=8 {
            out.send(Arc::new(alert(i, "R", Priority::Error)));
        }
        let r = out.shutdown(Duration::from_secs(5));
        let o = r.output("file").unwrap();
        assert_eq!((o.delivered, o.dropped[&Reason::GaveUp]), (4, 5), "{r}");
        let seqs: Vec<u64> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["output_fields"]["seq"].as_u64().unwrap()
            })
            .collect();
        assert_eq!(seqs, vec![0, 6, 7, 8], "keep_alive {keep_alive}");
        assert!(
            !logs::matching(&[
                "file output: ",
                "dropped (delivery failed)",
                "No space left on device"
            ])
            .is_empty(),
            "{:#?}",
            logs::lines()
        );
    }
}
