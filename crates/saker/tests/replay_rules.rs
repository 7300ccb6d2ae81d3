//! Rules replayed over real captures fire exactly as often as the matching
//! events sysdig shows, honouring rule order, disabled rules, tags and the
//! priority threshold; the upstream rules files replay without errors.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn capture(name: &str) -> PathBuf {
    std::env::var_os("SAKER_CAPTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/captures"))
        .join(name)
}

fn rules_file(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("saker-replay-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Alerts per rule from `saker replay -o json_output=true`.
fn replay(file: &Path, args: &[&str]) -> BTreeMap<String, usize> {
    let out = Command::new(env!("CARGO_BIN_EXE_saker"))
        .args(["replay", "--no-progress", "-o", "json_output=true"])
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "saker replay failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut counts = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON alert ({e}): {line}"));
        *counts
            .entry(v["rule"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
    }
    counts
}

fn sysdig_count(file: &Path, filter: &str) -> usize {
    let out = Command::new("sysdig")
        .arg("-r")
        .arg(file)
        .args(["-p", "%evt.num", filter])
        .output()
        .expect("sysdig must be installed");
    String::from_utf8_lossy(&out.stdout).lines().count()
}

const RULES: &str = r#"
- list: etc_dirs
  items: [/etc]
- macro: open_below_etc
  condition: evt.type in (open, openat) and evt.dir=< and fd.name pmatch (etc_dirs)
- rule: Open below etc
  desc: every open of a file below /etc
  condition: open_below_etc
  output: "%proc.name opened %fd.name"
  priority: WARNING
  tags: [files]
- rule: Open below etc by cat
  desc: the same opens, by cat only
  condition: open_below_etc and proc.name=cat
  output: "cat opened %fd.name"
  priority: NOTICE
  tags: [files, cat]
- rule: Disabled open rule
  desc: never fires
  condition: open_below_etc
  output: "disabled"
  priority: CRITICAL
  enabled: false
- rule: Any close
  desc: every close by cat
  condition: evt.type=close and evt.dir=< and proc.name=cat
  output: "close %fd.name"
  priority: DEBUG
  tags: [close]
"#;

#[test]
fn a_rule_fires_once_per_matching_event() {
    let cap = capture("cat_write.scap");
    let rules = rules_file("basic.yaml", RULES);
    let expected = sysdig_count(
        &cap,
        "evt.type=open and evt.dir=< and fd.name startswith /etc/",
    );
    assert!(expected > 0, "cat_write.scap has opens below /etc");
    let closes = sysdig_count(&cap, "evt.type=close and evt.dir=< and proc.name=cat");

    let r = rules.to_str().unwrap();
    let first = replay(&cap, &["-r", r]);
    assert_eq!(first.get("Open below etc"), Some(&expected));
    // rule_matching: first — the earlier rule takes every event it matches.
    assert_eq!(first.get("Open below etc by cat"), None);
    assert_eq!(first.get("Disabled open rule"), None);
    assert_eq!(first.get("Any close"), Some(&closes));

    let all = replay(&cap, &["-r", r, "-o", "rule_matching=all"]);
    assert_eq!(all.get("Open below etc"), Some(&expected));
    let by_cat = sysdig_count(
        &cap,
        "evt.type=open and evt.dir=< and fd.name startswith /etc/ and proc.name=cat",
    );
    assert_eq!(all.get("Open below etc by cat"), Some(&by_cat));
    assert_eq!(all.get("Disabled open rule"), None);

    // Priority threshold: Debug and Notice alerts are not loaded with priority=warning.
    let warn = replay(
        &cap,
        &["-r", r, "-o", "rule_matching=all", "-o", "priority=warning"],
    );
    assert_eq!(warn.get("Open below etc"), Some(&expected));
    assert_eq!(warn.get("Open below etc by cat"), None);
    assert_eq!(warn.get("Any close"), None);

    // Tags: disabling the `files` tag leaves only the close rule.
    let tagged = replay(&cap, &["-r", r, "--disable-tag", "files"]);
    assert_eq!(tagged.keys().collect::<Vec<_>>(), vec!["Any close"]);
}

#[test]
fn upstream_rules_replay_over_every_capture_without_errors() {
    let upstream = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/falco-rules");
    let files: Vec<String> = [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ]
    .iter()
    .map(|f| upstream.join(f).display().to_string())
    .collect();
    for cap in [
        "cat_write.scap",
        "connect_localhost.scap",
        "open-multiple-files.scap",
        "ping_sendto.scap",
        "syscall.scap",
    ] {
        let mut args = Vec::new();
        for f in &files {
            args.push("-r");
            args.push(f.as_str());
        }
        let out = Command::new(env!("CARGO_BIN_EXE_saker"))
            .args(["replay", "--no-progress", "-o", "json_output=true"])
            .args(&args)
            .arg(capture(cap))
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{cap}: {err}");
        assert!(err.contains("Events detected:"), "{cap}: no summary: {err}");
    }
}

/// `evt.deltatime` is the time since the previous event of the file, so a replay that reads it
/// anywhere, an `append_output` extra field included, passes over no event: the value is the
/// same as when the rule's own output asks for it.
#[test]
fn deltatime_in_an_appended_field_sees_every_event() {
    let deltas = |rule_output: &str, config: &str| -> Vec<String> {
        let rules = rules_file(
            &format!("delta-{}.yaml", rule_output.len()),
            &format!(
                "- rule: Closes\n  desc: d\n  condition: evt.type=close and evt.dir=<\n  output: \"{rule_output}\"\n  priority: INFO\n"
            ),
        );
        let cfg = rules_file(&format!("delta-{}.cfg.yaml", config.len()), config);
        let out = Command::new(env!("CARGO_BIN_EXE_saker"))
            .args(["replay", "--no-progress", "-o", "json_output=true", "-c"])
            .arg(&cfg)
            .arg("-r")
            .arg(&rules)
            .arg(capture("cat_write.scap"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).unwrap();
                let f = &v["output_fields"];
                // A format extra field is text, the rule's own field a number.
                let d = f.get("delta").or_else(|| f.get("evt.deltatime")).unwrap();
                d.as_str().map_or_else(|| d.to_string(), String::from)
            })
            .collect()
    };
    let own = deltas("close %evt.deltatime", "{}\n");
    let appended = deltas(
        "close",
        "append_output:\n  - extra_fields:\n      - delta: \"%evt.deltatime\"\n",
    );
    assert_eq!(own.len(), 6, "{own:?}");
    assert_eq!(appended, own);
}
