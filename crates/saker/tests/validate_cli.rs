//! `saker validate` from the command line, as `falco -V` behaves: one JSON
//! line of results, exit status 1 when a file is invalid, and no results at
//! all when a file cannot be read.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../saker-rules/tests/fixtures/falco-parity")
        .join(name)
}

fn saker(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_saker"))
        .args(args)
        .output()
        .expect("run saker");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn json_results_for_several_files() {
    let bad = fixture("err_validate_append_without_rule.yaml");
    let warn = fixture("warn_unknown_key.yaml");
    let (code, out, _) = saker(&[
        "validate",
        "--json",
        bad.to_str().unwrap(),
        warn.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert_eq!(out.lines().count(), 1, "{out}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let r = v["falco_load_results"].as_array().unwrap();
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["name"], bad.to_str().unwrap());
    assert_eq!(r[0]["successful"], false);
    let e = &r[0]["errors"][0];
    assert_eq!(e["code"], "LOAD_ERR_VALIDATE");
    let locs = e["context"]["locations"].as_array().unwrap();
    assert_eq!(locs[1]["item_type"], "rule");
    assert_eq!(locs[1]["item_name"], "Write below etc");
    assert_eq!(r[1]["successful"], true);
    assert_eq!(r[1]["schema_valid"], false);
    assert_eq!(r[1]["warnings"][0]["code"], "LOAD_UNKNOWN_KEY");
    assert_eq!(
        r[1]["warnings"][0]["codedesc"],
        "An item in the rules content contains an unrecognized key. The key will be ignored. This may indicate a typo or a property placed on the wrong item type."
    );

    let (code, out, _) = saker(&["validate", "--json", warn.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
}

#[test]
fn unreadable_file_prints_no_results() {
    let missing = fixture("does-not-exist.yaml");
    let (code, out, err) = saker(&["validate", "--json", missing.to_str().unwrap()]);
    assert_ne!(code, 0);
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains(&format!(
            "Could not open file {} for reading",
            missing.display()
        )),
        "{err}"
    );
}
