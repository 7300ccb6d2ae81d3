//! `engine.workers`: with decoding on its own thread (2) a replay gives byte for byte the
//! output of one thread (1): the same alerts, fields and order, over every shared capture and
//! a synthesized capture of a few hundred batches; `-M` stops a split replay early with a
//! prefix of the full output; bad values are refused naming the key.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use saker_testkit::shared_dir;

/// Rules that fire on most events and render fields read from the state (process tree, fd
/// table, users), so any difference in what state saw shows in the output.
const RULES: &str = r#"
- rule: Every event
  desc: renders each event with its thread's state
  condition: evt.num > 0
  output: "%evt.num %evt.type %evt.dir %thread.tid %proc.name %proc.pname %proc.cmdline %fd.num %fd.name %user.name %evt.args"
  priority: INFO
- rule: Opens
  desc: opens with the opening process's ancestry
  condition: evt.type in (open, openat, openat2) and evt.dir=<
  output: "%proc.name %proc.aname[2] %fd.name %fd.typechar %evt.res"
  priority: WARNING
- rule: Network
  desc: connections and sends with their socket
  condition: evt.type in (connect, sendto, recvfrom, socket) and evt.dir=<
  output: "%proc.name %fd.name %fd.l4proto"
  priority: NOTICE
"#;

/// Room for every alert: a full output queue drops alerts, and how many depends on timing.
const QUEUE: &str = "outputs_queue.capacity=2000000";

fn captures() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(shared_dir().join("captures"))
        .expect("../shared/captures")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "scap"))
        .collect();
    v.sort();
    assert!(v.len() >= 5, "the shared captures: {v:?}");
    v
}

fn upstream_rules() -> Vec<PathBuf> {
    [
        "falco_rules.yaml",
        "falco-incubating_rules.yaml",
        "falco-sandbox_rules.yaml",
    ]
    .iter()
    .map(|f| shared_dir().join("falco-rules").join(f))
    .collect()
}

fn saker(args: &[&str], files: &[&Path]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_saker"))
        .args(args)
        .args(files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "saker {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `saker replay` of `file` with the upstream rules and [`RULES`], JSON alerts.
fn replay(file: &Path, rules: &Path, workers: u32) -> Output {
    let w = format!("engine.workers={workers}");
    let mut args = vec![
        "replay",
        "--no-progress",
        "-o",
        "json_output=true",
        "-o",
        &w,
    ];
    args.extend(["-o", QUEUE]);
    let up = upstream_rules();
    let up: Vec<String> = up.iter().map(|p| p.display().to_string()).collect();
    for r in &up {
        args.extend(["-r", r]);
    }
    let r = rules.display().to_string();
    args.extend(["-r", &r]);
    saker(&args, &[file])
}

fn summary_events(out: &Output) -> u64 {
    let err = String::from_utf8_lossy(&out.stderr);
    err.lines()
        .find_map(|l| l.strip_prefix("Events detected: "))
        .unwrap_or_else(|| panic!("no summary in: {err}"))
        .trim()
        .parse()
        .unwrap()
}

fn rules_file(dir: &Path) -> PathBuf {
    let p = dir.join("rules.yaml");
    std::fs::write(&p, RULES).unwrap();
    p
}

/// The events of `from`, repeated to `n` with fresh numbers and timestamps (as bench/run's
/// synth_large does): one thread's state carries across rounds.
fn synthesize(from: &Path, to: &Path, n: u64) {
    let mut r = saker_capture::Reader::open(from).unwrap();
    r.set_convert(false);
    let snap = r.snapshot().clone();
    let mut events = Vec::new();
    let mut ev = saker_event::Event::default();
    while r.next_event(&mut ev).unwrap() {
        events.push(ev.clone());
    }
    let t0 = events[0].ts;
    let span = events.last().unwrap().ts - t0 + 1_000;
    let mut w = saker_capture::Writer::create(to, &snap).unwrap();
    for i in 0..n {
        let e = &events[(i % events.len() as u64) as usize];
        let mut c = e.clone();
        c.num = i + 1;
        c.ts = e.ts + (i / events.len() as u64) * span;
        w.write_event(&c).unwrap();
    }
    w.finish().unwrap();
}

fn assert_same(file: &Path, one: &Output, two: &Output) -> usize {
    let n = one.stdout.iter().filter(|&&b| b == b'\n').count();
    assert!(
        one.stdout == two.stdout,
        "{}: workers=2 differs from workers=1 ({} vs {} bytes)",
        file.display(),
        one.stdout.len(),
        two.stdout.len()
    );
    assert_eq!(
        summary_events(one),
        summary_events(two),
        "{}",
        file.display()
    );
    n
}

/// Replays `file` on one and two workers, asserts the same output, and that every event
/// fired "Every event" (the output covers the whole capture). The one-worker run and the
/// alert count.
fn one_and_two_workers(file: &Path, rules: &Path) -> (Output, usize) {
    let one = replay(file, rules, 1);
    let two = replay(file, rules, 2);
    let n = assert_same(file, &one, &two);
    assert!(
        n as u64 >= summary_events(&one),
        "{}: {n} alerts",
        file.display()
    );
    (one, n)
}

#[test]
fn replay_is_identical_with_two_workers_on_every_capture() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path());
    let mut total = 0;
    for f in captures() {
        total += one_and_two_workers(&f, &rules).1;
    }
    assert!(total > 1000, "{total} alerts over the captures");
}

#[test]
fn filter_replay_is_identical_with_two_workers() {
    for f in captures() {
        let run = |w: &str| {
            saker(
                &[
                    "replay",
                    "--no-progress",
                    "-o",
                    &format!("engine.workers={w}"),
                    "--filter",
                    "evt.type in (open, openat, close, read, write, execve, connect, sendto) or proc.name exists",
                    "-p",
                    "%evt.num %evt.type %proc.name %proc.pname %fd.name %evt.args",
                ],
                &[&f],
            )
        };
        let (one, two) = (run("1"), run("2"));
        assert!(!one.stdout.is_empty(), "{}", f.display());
        assert!(
            one.stdout == two.stdout,
            "{}: --filter output differs",
            f.display()
        );
    }
}

#[test]
fn large_capture_is_identical_with_two_workers() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path());
    let big = dir.path().join("large.scap");
    // ~780 batches of the decode thread, the state of many rounds of the same threads.
    let n = 200_000;
    synthesize(
        &shared_dir().join("captures/open-multiple-files.scap"),
        &big,
        n,
    );
    let (one, _) = one_and_two_workers(&big, &rules);
    assert!(
        summary_events(&one) > n * 9 / 10,
        "{}",
        summary_events(&one)
    );
    // Auto (0) is one of the two, whichever this machine picks.
    let auto = replay(&big, &rules, 0);
    assert!(auto.stdout == one.stdout);
}

/// `saker -e FILE -M SECONDS`: the deadline stops the loop; what the decode thread already read
/// still goes through the rules (the drain), so the output is a prefix of the full run's.
#[test]
fn duration_stops_a_split_replay_with_a_prefix_of_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path());
    let big = dir.path().join("large.scap");
    let n = 300_000;
    synthesize(&shared_dir().join("captures/cat_write.scap"), &big, n);
    let r = rules.display().to_string();
    let e = big.display().to_string();
    let run = |w: &str, m: Option<&str>| {
        let mut args = vec!["-r", &r, "-o", "json_output=true", "-o", QUEUE, "-e", &e];
        let w = format!("engine.workers={w}");
        args.extend(["-o", &w]);
        if let Some(m) = m {
            args.extend(["-M", m]);
        }
        saker(&args, &[])
    };
    let full = run("2", None);
    let total = summary_events(&full);
    assert!(total > n * 8 / 10, "{total}");
    for w in ["1", "2"] {
        let cut = run(w, Some("0.001"));
        let seen = summary_events(&cut);
        assert!(
            seen < total,
            "workers={w}: {seen} of {total} events after -M 0.001"
        );
        assert!(
            full.stdout.starts_with(&cut.stdout),
            "workers={w}: the stopped run's alerts are not the start of the full run's"
        );
        let lines = cut.stdout.iter().filter(|&&b| b == b'\n').count() as u64;
        assert!(
            lines >= seen,
            "workers={w}: {lines} alerts for {seen} events"
        );
    }
}

#[test]
fn bad_workers_value_is_refused_naming_the_key() {
    let f = shared_dir().join("captures/cat_write.scap");
    let out = Command::new(env!("CARGO_BIN_EXE_saker"))
        .args(["replay", "--no-progress", "-o", "engine.workers=8"])
        .arg(&f)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "saker: config error at 'engine.workers': must be 0 (auto), 1 (one thread) or 2 (decoding on its own thread), not 8"
    );
}

/// A replay has no kernel to keep up with: a full output queue makes it wait for room
/// instead of dropping alerts (a live source drops and counts). A 16-alert queue and an alert
/// for every open of a 100k-event capture: every alert comes out.
#[test]
fn replay_waits_for_a_full_output_queue_instead_of_dropping() {
    let dir = tempfile::tempdir().unwrap();
    let rules = rules_file(dir.path());
    let big = dir.path().join("large.scap");
    synthesize(
        &shared_dir().join("captures/open-multiple-files.scap"),
        &big,
        100_000,
    );
    let r = rules.display().to_string();
    let out = saker(
        &[
            "replay",
            "--no-progress",
            "-o",
            "outputs_queue.capacity=16",
            "-r",
            &r,
        ],
        &[&big],
    );
    let lines = out.stdout.iter().filter(|&&b| b == b'\n').count();
    let err = String::from_utf8_lossy(&out.stderr);
    let delivered = format!("output stdout: {lines} delivered, 0 dropped");
    assert!(lines > 20_000, "{lines} alerts");
    assert!(err.contains(&delivered), "want '{delivered}' in: {err}");
}
