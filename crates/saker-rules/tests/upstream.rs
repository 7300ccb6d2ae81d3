//! Loads the upstream Falco rules files (read at test time from `../shared/falco-rules`
//! beside the repository).

use saker_rules::engine::{Engine, LoadOptions};
use saker_rules::validate::validate;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/falco-rules")
        .join(name)
}

const FILES: [&str; 3] = [
    "falco_rules.yaml",
    "falco-incubating_rules.yaml",
    "falco-sandbox_rules.yaml",
];

#[test]
fn each_upstream_file_loads_alone_with_expected_counts() {
    // (rules, macros, lists, enabled rules)
    let expected = [(25, 87, 49, 25), (31, 82, 54, 31), (37, 183, 60, 25)];
    for (f, (rules, macros, lists, enabled)) in FILES.iter().zip(expected) {
        let mut eng = Engine::new(LoadOptions::default());
        let res = eng.load_file(&fixture(f));
        assert!(res.successful(), "{f}: {}", res.to_text());
        // Every macro and list is used, no deprecated items, every rule has evt.type restrictions.
        assert!(res.warnings.is_empty(), "{f}: {}", res.to_text());
        assert_eq!(res.summary(), format!("{}: Ok", fixture(f).display()));
        // Falco's rule schema accepts the upstream files.
        assert_eq!(res.schema_valid(), Some(true), "{f}: {:?}", res.schema);
        let rs = eng.ruleset();
        assert_eq!(rs.counts(), (rules, macros, lists), "{f}");
        assert_eq!(rs.enabled().len(), enabled, "{f}");
        assert_eq!(eng.collector().required_engine_version, Some((0, 57, 0)));
        assert!(eng.check_plugin_requirements().is_ok());
    }
}

#[test]
fn stable_rules_event_types_and_metadata() {
    let mut eng = Engine::new(LoadOptions::default());
    assert!(eng.load_file(&fixture(FILES[0])).successful());
    let rs = eng.ruleset();
    let r = rs.find("Read sensitive file untrusted").expect("rule");
    let info = rs.info(r);
    assert_eq!(info.priority, saker_rules::Priority::Warning);
    assert!(info.tags.contains(&"maturity_stable".to_string()));
    assert!(info.output.ends_with(saker_rules::engine::SUGGESTED_OUTPUT));
    let needed = rs
        .needed_event_types()
        .expect("every upstream rule is restricted");
    for n in [
        "open",
        "openat",
        "openat2",
        "execve",
        "execveat",
        "connect",
        "ptrace",
        "symlinkat",
        "linkat",
        "socket",
        "dup3",
        "init_module",
        "finit_module",
        "sendto",
        "sendmsg",
    ] {
        assert!(needed.contains(n), "{n} missing from {needed:?}");
    }
    assert!(!needed.contains("read"));
    let ids = rs
        .needed_event_ids()
        .expect("all names are in the event table");
    assert!(ids.len() >= needed.len());
}

#[test]
fn all_three_files_load_in_order() {
    let files: Vec<PathBuf> = FILES.iter().map(|f| fixture(f)).collect();
    let (ok, results) = validate(&files, LoadOptions::default()).unwrap();
    for r in &results {
        assert!(r.successful(), "{}", r.to_text());
        assert!(r.warnings.is_empty(), "{}", r.to_text());
    }
    assert!(ok);
    assert_eq!(results.len(), 3);
    // Rule names are unique across the three files: 25 + 31 + 37.
    let mut eng = Engine::new(LoadOptions::default());
    for f in &files {
        assert!(eng.load_file(f).successful());
    }
    assert_eq!(eng.ruleset().counts().0, 93);
    assert_eq!(eng.ruleset().enabled().len(), 81);
}

#[test]
fn a_directory_loads_its_yaml_files_alphabetically() {
    let dir = std::env::temp_dir().join(format!("saker-rules-dir-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("b.yaml"), "- rule: r\n  enabled: false\n").unwrap();
    std::fs::write(
        dir.join("a.yaml"),
        "- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: info\n",
    )
    .unwrap();
    std::fs::write(dir.join("notes.txt"), "not rules").unwrap();
    let mut eng = Engine::new(LoadOptions::default());
    let res = eng.load_path(&dir);
    std::fs::remove_dir_all(&dir).unwrap();
    let names: Vec<&str> = res
        .iter()
        .map(|r| r.name.rsplit('/').next().unwrap())
        .collect();
    assert_eq!(names, ["a.yaml", "b.yaml"]);
    assert!(res.iter().all(|r| r.successful()));
    assert!(
        eng.ruleset().enabled().is_empty(),
        "b.yaml disabled the rule of a.yaml"
    );
}
