//! Issue #14, live (root and BTF; `#[ignore = "needs root"]`, run by `make test`): Falco's drop alert
//! through `syscall_event_drops.simulate_drops`, the `exit` action, `watch_config_files`, and
//! the dashboard's series with data from a real run.

mod common;

use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(30);

fn rules(dir: &Scratch, name: &str, trigger: &std::path::Path) -> std::path::PathBuf {
    let f = dir.file("rules.yaml");
    std::fs::write(
        &f,
        format!(
            "- rule: {name}\n  desc: live falco test\n  condition: >\n    \
             evt.type in (open, openat, openat2) and fd.name = {}\n  \
             output: \"opened proc.name=%proc.name fd.name=%fd.name\"\n  priority: ERROR\n",
            trigger.display()
        ),
    )
    .expect("rules");
    f
}

#[test]
#[ignore = "needs root"]
fn simulated_drops_raise_falcos_internal_alert_at_the_configured_rate() {
    require_live("simulated_drops_raise_falcos_internal_alert_at_the_configured_rate");
    let _g = probe_lock();
    let tok = token("drops");
    let dir = Scratch::new(&tok);
    let trigger = dir.file("trigger");
    let r = rules(&dir, "Drop test open", &trigger);
    let s = Session::run(
        &r,
        &[
            "json_output=true",
            "syscall_event_drops.simulate_drops=true",
            // At most one action per 2 s, burst 1.
            "syscall_event_drops.rate=0.5",
            "syscall_event_drops.max_burst=1",
        ],
    );
    std::thread::sleep(Duration::from_secs(7));
    let fin = s.stop();
    let drops: Vec<Alert> = fin
        .alerts()
        .into_iter()
        .filter(|a| a.rule == "Falco internal: syscall event drop")
        .collect();
    // One drop simulated per second; the bucket lets through 1 + one per 2 s.
    assert!(
        (3..=5).contains(&drops.len()),
        "{} drop alerts in ~7 s:\n{}",
        drops.len(),
        fin.stderr_text()
    );
    let a = &drops[0];
    assert_eq!(a.priority, "Debug");
    assert_eq!(a.raw["source"], "internal");
    assert!(a.raw.get("tags").is_none());
    assert!(
        a.output.starts_with("Falco internal: syscall event drop. ")
            && a.output.ends_with(" system calls dropped in last second."),
        "{}",
        a.output
    );
    for k in [
        "n_evts",
        "n_drops",
        "n_drops_buffer_total",
        "n_drops_buffer_open_exit",
        "n_drops_scratch_map",
        "ebpf_enabled",
    ] {
        assert!(
            a.fields.get(k).is_some_and(|v| v.is_string()),
            "{k} in {:?}",
            a.fields
        );
    }
    assert_eq!(a.field("ebpf_enabled").as_deref(), Some("1"));
    // `log` (a default action) writes the same message to stderr.
    assert!(fin
        .stderr
        .iter()
        .any(|l| l.starts_with("saker: warning: Falco internal: syscall event drop. ")));
    assert!(fin.stderr_text().contains("Syscall event drop monitoring:"));
}

#[test]
#[ignore = "needs root"]
fn the_exit_drop_action_stops_saker_with_status_1() {
    require_live("the_exit_drop_action_stops_saker_with_status_1");
    let _g = probe_lock();
    let tok = token("dropexit");
    let dir = Scratch::new(&tok);
    let trigger = dir.file("trigger");
    let r = rules(&dir, "Drop exit open", &trigger);
    let out = std::process::Command::new(saker_bin())
        .args(["run", "-r"])
        .arg(&r)
        .args([
            "-o",
            "syscall_event_drops.simulate_drops=true",
            "-o",
            "syscall_event_drops.actions=[exit]",
            "--duration",
            "30",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("saker: error: Exiting."), "{err}");
}

#[test]
#[ignore = "needs root"]
fn watch_config_files_reloads_changed_rules() {
    require_live("watch_config_files_reloads_changed_rules");
    let _g = probe_lock();
    let tok = token("watch");
    let dir = Scratch::new(&tok);
    let trigger = dir.file("trigger");
    std::fs::write(&trigger, "x").expect("trigger");
    let r = rules(&dir, "Watch rule A", &trigger);
    let s = Session::run(&r, &["json_output=true"]);
    rules(&dir, "Watch rule B", &trigger);
    s.wait_stderr("saker: reloaded: 1 rules", 1, WAIT);
    sh(&format!("cat {} >/dev/null; true", trigger.display()), &tok);
    s.wait_alerts("rule B after the file changed", WAIT, |a| {
        a.iter()
            .any(|x| x.rule == "Watch rule B" && x.mentions(&tok))
    });
    let fin = s.stop();
    assert!(fin.status.success(), "{}", fin.stderr_text());
    assert!(!fin
        .alerts()
        .iter()
        .any(|a| a.rule == "Watch rule A" && a.mentions(&tok)));
}

#[test]
#[ignore = "needs root"]
fn dashboard_series_have_data_from_a_live_run() {
    require_live("dashboard_series_have_data_from_a_live_run");
    let _g = probe_lock();
    let tok = token("dash");
    let dir = Scratch::new(&tok);
    let trigger = dir.file("trigger");
    std::fs::write(&trigger, "x").expect("trigger");
    let r = rules(&dir, "Dashboard open", &trigger);
    let port = free_port();
    let port_opt = format!("webserver.listen_port={port}");
    let s = Session::run(
        &r,
        &[
            "json_output=true",
            "webserver.enabled=true",
            "webserver.prometheus_metrics_enabled=true",
            "metrics.enabled=true",
            "metrics.kernel_event_counters_per_cpu_enabled=true",
            &port_opt,
        ],
    );
    sh(&format!("cat {} >/dev/null; true", trigger.display()), &tok);
    s.wait_alerts("the alert", WAIT, |a| {
        a.iter()
            .any(|x| x.rule == "Dashboard open" && x.mentions(&tok))
    });
    std::thread::sleep(Duration::from_millis(1500));
    let (code, body) = http_get(port, "/metrics");
    assert_eq!(code, 200);
    let samples = parse_metrics(&body).expect("valid exposition");
    let positive = |name: &str| find(&samples, name, &[]).iter().any(|s| s.value > 0.0);
    for name in [
        "falcosecurity_falco_rules_matches_total",
        "falcosecurity_scap_n_evts_total",
        "falcosecurity_falco_n_evts_total",
        "falcosecurity_falco_memory_rss_bytes",
        "falcosecurity_falco_memory_vsz_bytes",
        "falcosecurity_scap_engine_name_info",
        "falcosecurity_falco_version_info",
        "falcosecurity_falco_sha256_rules_files_info",
        "falcosecurity_falco_kernel_release_info",
        "falcosecurity_scap_n_threads_total",
    ] {
        assert!(positive(name), "{name} has no positive sample:\n{body}");
    }
    for name in [
        "falcosecurity_falco_cpu_usage_ratio",
        "falcosecurity_falco_outputs_queue_num_drops_total",
        "falcosecurity_scap_n_drops_total",
        "falcosecurity_scap_n_drops_cpu_total",
        "falcosecurity_scap_n_drops_buffer_total",
        "falcosecurity_scap_n_drops_full_threadtable_total",
        "falcosecurity_scap_n_drops_scratch_map_total",
    ] {
        assert!(
            !find(&samples, name, &[]).is_empty(),
            "{name} missing:\n{body}"
        );
    }
    let sha = find(&samples, "falcosecurity_falco_sha256_rules_files_info", &[]);
    assert!(sha
        .iter()
        .any(|s| s.labels.get("file_name").map(String::as_str) == Some("rules.yaml")));
    let fin = s.stop();
    assert!(fin.status.success(), "{}", fin.stderr_text());
}
