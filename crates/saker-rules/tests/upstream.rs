//! Loads the upstream Falco rules files (read at test time from /work/shared/falco-rules).

use saker_rules::engine::{Engine, LoadOptions};
use saker_rules::validate::validate;
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new("/work/shared/falco-rules").join(name)
}

const FILES: [&str; 3] = [
    "falco_rules.yaml",
    "falco-incubating_rules.yaml",
    "falco-sandbox_rules.yaml",
];

#[test]
fn each_upstream_file_loads_alone_with_expected_counts() {
    let expected = [(25, 87, 49), (31, 82, 54), (37, 183, 60)];
    for (f, (rules, macros, lists)) in FILES.iter().zip(expected) {
        let mut eng = Engine::new(LoadOptions::default());
        let res = eng.load_file(&fixture(f));
        assert!(res.successful(), "{f}: {}", res.to_text());
        for w in &res.warnings {
            eprintln!("{f}: {w}");
        }
        let rs = eng.ruleset();
        assert_eq!(rs.counts(), (rules, macros, lists), "{f}");
    }
}

#[test]
fn all_three_files_load_in_order() {
    let files: Vec<PathBuf> = FILES.iter().map(|f| fixture(f)).collect();
    let (ok, results) = validate(&files, LoadOptions::default());
    for r in &results {
        eprint!("{}", r.to_text());
    }
    assert!(ok);
    assert_eq!(results.len(), 3);
}
