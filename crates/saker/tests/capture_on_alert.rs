//! Capture on alert: `saker replay` of a real capture with a `capture: true` rule writes a
//! .scap under `capture.path_prefix` holding the events before the trigger and after it; the
//! written file replays to the same alert.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn capture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/captures")
        .join(name)
}

fn saker(args: &[&str]) -> Output {
    let o = Command::new(env!("CARGO_BIN_EXE_saker"))
        .args(args)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "saker {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    o
}

/// `saker replay -r RULES EXTRA... FILE` with JSON output: the alerts it printed.
fn replay_json(rules: &str, extra: &[&str], file: &str) -> Vec<serde_json::Value> {
    let mut args = vec![
        "replay",
        "--no-progress",
        "-r",
        rules,
        "-o",
        "json_output=true",
    ];
    args.extend_from_slice(extra);
    args.push(file);
    String::from_utf8_lossy(&saker(&args).stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const RULES: &str = r#"
- rule: Dev null opened
  desc: cat opens /dev/null
  condition: evt.type=open and evt.dir=< and fd.name=/dev/null
  output: "null opened (proc=%proc.name fd=%fd.name)"
  priority: WARNING
  capture: true
  capture_duration: 1
- rule: Locale opened
  desc: not a capture rule
  condition: evt.type=open and evt.dir=< and fd.name=/usr/lib/locale/locale-archive
  output: "locale opened (proc=%proc.name)"
  priority: NOTICE
"#;

fn scap_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "scap"))
        .collect();
    v.sort();
    v
}

#[test]
fn capture_rule_writes_a_file_with_the_events_before_and_after() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let rules = rules.to_str().unwrap();
    let caps = dir.path().join("caps");
    let prefix = format!("capture.path_prefix={}/alert", caps.display());
    let src = capture("cat_write.scap");
    let src = src.to_str().unwrap();
    let alerts = replay_json(rules, &["-o", "capture.enabled=true", "-o", &prefix], src);
    assert_eq!(alerts.len(), 2, "{alerts:?}");
    // Only the `capture: true` rule records; Falco's file name: prefix_ts_evtnum (20 digits each).
    let files = scap_files(&caps);
    assert_eq!(
        files,
        vec![caps.join("alert_01470327477882054739_00000000000000000197.scap")],
    );

    // The file replays to the same alert.
    let again = replay_json(rules, &[], files[0].to_str().unwrap());
    let rules_fired: Vec<&str> = again.iter().map(|a| a["rule"].as_str().unwrap()).collect();
    // The locale rule fired before the trigger, within pre_trigger_ms: it is in the file too.
    assert_eq!(
        rules_fired,
        ["Locale opened", "Dev null opened"],
        "{again:?}"
    );

    // It holds every event of the source (all within 5 s before and 1 ms after the trigger).
    let listing = |f: &str| {
        String::from_utf8_lossy(
            &saker(&[
                "replay",
                "--filter",
                "evt.type in (open, close, write)",
                "-p",
                "%evt.rawtime %evt.type %fd.name",
                f,
            ])
            .stdout,
        )
        .to_string()
    };
    let before = listing(src);
    let written = listing(files[0].to_str().unwrap());
    assert!(before.lines().count() >= 8, "{before}");
    assert_eq!(written, before);
    assert!(
        written.contains("1470327477881785348 open /etc/ld.so.cache"),
        "{written}"
    );
}

#[test]
fn all_rules_mode_and_no_capture_when_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let rules = dir.path().join("rules.yaml");
    // No rule asks for a capture.
    std::fs::write(&rules, RULES.replace("  capture: true\n", "")).unwrap();
    let rules = rules.to_str().unwrap();
    let prefix = format!("capture.path_prefix={}/c", dir.path().display());
    let src = capture("cat_write.scap");
    let run = |extra: &[&str]| {
        let mut args = vec!["replay", "--no-progress", "-r", rules, "-o", &prefix];
        args.extend_from_slice(extra);
        args.push(src.to_str().unwrap());
        saker(&args);
        scap_files(dir.path())
    };
    assert!(run(&["-o", "capture.enabled=true"]).is_empty());
    // all_rules: the first alert (locale, event 187) opens the file; the second extends it.
    let files = run(&["-o", "capture.enabled=true", "-o", "capture.mode=all_rules"]);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        files[0]
            .to_str()
            .unwrap()
            .ends_with("_00000000000000000187.scap"),
        "{files:?}"
    );
}
