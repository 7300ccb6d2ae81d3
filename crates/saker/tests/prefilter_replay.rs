//! Differential test of the prefilter on recorded streams: every capture in
//! `../shared/captures` replays with the same alerts with and without
//! `--prefilter` (the kernel's decisions applied in user space), for the
//! built-in rules and each upstream rules file. No root needed.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

fn alerts(rules: &Path, capture: &Path, prefilter: bool) -> (BTreeMap<String, usize>, String) {
    let mut cmd = Command::new(saker_bin());
    cmd.args([
        "replay",
        "--no-progress",
        "-o",
        "json_output=true",
        "-o",
        "rule_matching=all",
    ])
    .arg("-r")
    .arg(rules)
    .arg(capture);
    if prefilter {
        cmd.arg("--prefilter");
    }
    let out = cmd.output().expect("saker replay");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut m = BTreeMap::new();
    for a in String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(Alert::parse)
    {
        let key = format!("{} | {}", a.rule, a.output);
        *m.entry(key).or_default() += 1;
    }
    (m, String::from_utf8_lossy(&out.stderr).into_owned())
}

fn captures() -> Vec<PathBuf> {
    let dir = repo_root().join("../shared/captures");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().contains(".scap"))
        .collect();
    v.sort();
    assert!(!v.is_empty());
    v
}

#[test]
fn captures_replay_with_the_same_alerts_with_and_without_the_prefilter() {
    let shared = repo_root().join("../shared/falco-rules");
    let rules = [
        builtin_rules(),
        shared.join("falco_rules.yaml"),
        shared.join("falco-incubating_rules.yaml"),
        shared.join("falco-sandbox_rules.yaml"),
    ];
    let mut dropped_somewhere = false;
    for r in &rules {
        for c in captures() {
            let (off, _) = alerts(r, &c, false);
            let (on, err) = alerts(r, &c, true);
            assert_eq!(on, off, "{} on {}", r.display(), c.display());
            let n: u64 = err
                .lines()
                .find_map(|l| l.strip_prefix("Prefilter: "))
                .and_then(|l| l.split_whitespace().next())
                .and_then(|n| n.parse().ok())
                .unwrap_or_else(|| panic!("no prefilter line in:\n{err}"));
            dropped_somewhere |= n > 0;
        }
    }
    // The comparison means something only if events were dropped.
    assert!(dropped_somewhere);
}
