//! Capture on alert, live, with two podman containers: a `capture: true` rule fires in one; the
//! written .scap holds that container's events from before the trigger and none of the other
//! container's, `saker replay` of it gives the same alert, and the recorder's memory is
//! reported in /metrics. Needs root, BTF and podman (CI has them).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{Container, Saker, Scratch};

const RULE: &str = "Saker capture scope shell";

fn exec_shell(c: &Container, script: &str) {
    let out = Command::new("podman")
        .args(["exec", &c.name, "sh", "-c", script])
        .output()
        .expect("podman exec");
    common::ok(&out, "podman exec");
}

fn saker(args: &[&str]) -> String {
    let o = Command::new(common::saker_bin())
        .args(args)
        .output()
        .expect("run saker");
    assert!(
        o.status.success(),
        "saker {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn scap_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "scap"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
#[ignore = "needs root"]
fn capture_holds_the_alerting_container_only() {
    let test = "capture_holds_the_alerting_container_only";
    common::require_live(test);
    if common::skip_without_tools(test, &["podman"]) {
        return;
    }
    let _guard = common::probe_lock();
    let tok = common::token("capscope");
    let scratch = Scratch::new(&tok);
    let rules = scratch.file("rules.yaml");
    std::fs::write(
        &rules,
        format!(
            "- rule: {RULE}\n  desc: the test's trigger shell in a container\n  condition: >\n    \
             evt.type in (execve, execveat) and evt.dir=< and container.id != host and\n    \
             proc.name = sh and proc.cmdline contains \"{tok}-fire\"\n  \
             output: \"trigger (id=%container.id cmd=%proc.cmdline)\"\n  priority: WARNING\n  \
             capture: true\n  capture_duration: 1000\n"
        ),
    )
    .unwrap();
    let caps = scratch.file("caps");
    let alerting = Container::background(&format!("{tok}-a"));
    let other = Container::background(&format!("{tok}-b"));
    let port = common::free_port();
    let opts = [
        "capture.enabled=true".to_string(),
        format!("capture.path_prefix={}/alert", caps.display()),
        "capture.pre_trigger_ms=20000".to_string(),
        "webserver.enabled=true".to_string(),
        "webserver.prometheus_metrics_enabled=true".to_string(),
        "metrics.enabled=true".to_string(),
        format!("webserver.listen_port={port}"),
    ];
    let mut args: Vec<&std::ffi::OsStr> = vec!["-r".as_ref(), rules.as_os_str()];
    for o in &opts {
        args.push("-o".as_ref());
        args.push(o.as_ref());
    }
    let s = Saker::start(&args);

    // Both containers are active before the trigger; the other one after it too.
    exec_shell(&alerting, &format!("cat /etc/hostname # {tok}-before"));
    exec_shell(&other, &format!("cat /etc/hostname # {tok}-other"));
    std::thread::sleep(Duration::from_millis(500));
    exec_shell(&alerting, &format!("cat /etc/hostname # {tok}-fire"));
    exec_shell(&other, &format!("cat /etc/hostname # {tok}-other-after"));

    // The recorder's memory is in /metrics while it runs.
    let deadline = Instant::now() + Duration::from_secs(20);
    let recorder = loop {
        let (code, body) = common::http_get(port, "/metrics");
        assert_eq!(code, 200, "/metrics: {body}");
        let v = common::parse_metrics(&body)
            .unwrap_or_else(|e| panic!("/metrics does not parse: {e}"))
            .into_iter()
            .find(|x| x.name == "saker_capture_recorder_bytes")
            .map(|x| x.value);
        if v.is_some_and(|v| v > 0.0) || Instant::now() > deadline {
            break v;
        }
        std::thread::sleep(Duration::from_millis(300));
    };
    // Events are recorded all along; the default bound is 64 MiB.
    let recorder = recorder.expect("saker_capture_recorder_bytes in /metrics");
    assert!(
        recorder > 0.0 && recorder <= 64.0 * 1024.0 * 1024.0,
        "{recorder}"
    );
    let alerts = s.stop();

    let ours: Vec<_> = alerts.iter().filter(|a| a.rule == RULE).collect();
    assert_eq!(ours.len(), 1, "{alerts:#?}");
    let short = |c: &Container| c.id[..12].to_string();
    assert_eq!(
        ours[0].field("container.id").as_deref(),
        Some(short(&alerting).as_str())
    );

    let files = scap_files(&caps);
    assert_eq!(files.len(), 1, "{files:?}");
    let file = files[0].to_str().unwrap();
    // Every thread event of the file, with its container.
    let listing = saker(&[
        "replay",
        "--filter",
        "evt.num > 0",
        "-p",
        "%container.id %evt.type %proc.cmdline",
        file,
    ]);
    let lines: Vec<&str> = listing.lines().collect();
    assert!(
        lines.iter().all(|l| !l.starts_with(&short(&other))),
        "events of the other container:\n{}",
        lines
            .iter()
            .filter(|l| l.starts_with(&short(&other)))
            .take(10)
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(!listing.contains(&format!("{tok}-other")), "{listing}");
    assert!(
        lines.iter().any(|l| l.starts_with(&short(&alerting))),
        "{listing}"
    );
    let before = format!("{tok}-before");
    let fire = format!("{tok}-fire");
    let pos = |needle: &str| {
        lines
            .iter()
            .position(|l| l.contains(needle) && l.contains(" execve "))
            .unwrap_or_else(|| panic!("no execve of {needle} in the capture:\n{listing}"))
    };
    // Its events from before the trigger come first.
    assert!(pos(&before) < pos(&fire));

    // The file replays to the same alert.
    let replayed = saker(&[
        "replay",
        "-r",
        rules.to_str().unwrap(),
        "-o",
        "json_output=true",
        file,
    ]);
    let again: Vec<_> = replayed
        .lines()
        .filter_map(common::Alert::parse)
        .filter(|a| a.rule == RULE)
        .collect();
    assert_eq!(again.len(), 1, "{replayed}");
    assert_eq!(
        again[0].field("container.id").as_deref(),
        Some(short(&alerting).as_str())
    );
    assert!(again[0]
        .field("proc.cmdline")
        .is_some_and(|c| c.contains(&fire)));
}
