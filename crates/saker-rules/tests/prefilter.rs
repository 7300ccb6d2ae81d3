//! The prefilter plans of the upstream rules files (read at test time from
//! `../shared/falco-rules` beside the repository) and of Saker's built-in rules.

use saker_rules::engine::{Engine, LoadOptions};
use saker_rules::prefilter::{Plan, C_ANY, C_SUCCESS, C_WRITE, C_WRITE_SUCCESS};
use std::path::{Path, PathBuf};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn plan(files: &[PathBuf]) -> Plan {
    let mut eng = Engine::new(LoadOptions::default());
    for f in files {
        let res = eng.load_file(f);
        assert!(res.successful(), "{}: {}", f.display(), res.to_text());
    }
    Plan::for_ruleset(&eng.ruleset())
}

fn upstream(name: &str) -> PathBuf {
    repo().join("../shared/falco-rules").join(name)
}

#[test]
fn upstream_rules_filter_reads_by_path_and_keep_writes() {
    let p = plan(&[upstream("falco_rules.yaml")]);
    println!("{}", p.describe());
    assert!(p.open.enabled && p.suppress_closes, "{}", p.describe());
    // Reads only matter below a few sensitive places; writes are wanted anywhere
    // (a rule tests the file's base name, which has no path form).
    assert_eq!(p.open.any_mask & (C_ANY | C_SUCCESS), 0, "{}", p.describe());
    assert_ne!(p.open.any_mask & (C_WRITE | C_WRITE_SUCCESS), 0);
    assert!(p.open.admits(b"/etc/shadow", false, true, false));
    assert!(!p.open.admits(b"/usr/include/stdio.h", false, true, false));
    assert!(!p.open.admits(b"/etc/shadow", false, false, false));
    assert!(p.open.admits(b"/tmp/x.o", true, true, false));
}

#[test]
fn every_upstream_file_has_a_plan() {
    for f in [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ] {
        let p = plan(&[upstream(f)]);
        println!("== {f}\n{}", p.describe());
    }
    let p = plan(&[
        upstream("falco_rules.yaml"),
        upstream("falco-incubating_rules.yaml"),
        upstream("falco-sandbox_rules.yaml"),
    ]);
    println!("== all three\n{}", p.describe());
}

#[test]
fn builtin_rules_plan() {
    let p = plan(&[repo().join("rules/saker_rules.yaml")]);
    println!("{}", p.describe());
    assert!(p.open.enabled, "{}", p.describe());
}
