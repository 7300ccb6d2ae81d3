//! Average in-kernel cost of each attached program (needs root):
//!   cargo run --release -p saker-probe --example prog_cost
//! Enables kernel.bpf_stats_enabled, runs an open/close + fork/exec workload
//! with the probe attached for every syscall with its own tracepoint
//! (per-syscall programs, so each body is timed on its own; in generic mode
//! the same bodies run by tail call), prints run_time_ns / run_cnt per
//! program as reported by bpftool, and sets bpf_stats_enabled back to 0.

use saker_probe::{Probe, ProbeConfig, SYSCALLS};
use std::time::Duration;

fn main() {
    std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "1").expect("enable bpf stats");
    let cfg = ProbeConfig {
        generic_fallback: false,
        ..ProbeConfig::for_event_types(SYSCALLS.iter().map(|d| d.name))
    };
    let mut p = Probe::load(&cfg).unwrap_or_else(|e| panic!("{e}"));
    for i in 0..200_000 {
        // SAFETY: valid C string; fd closed right away.
        unsafe {
            let fd = libc::open(c"/etc/hostname".as_ptr(), libc::O_RDONLY);
            libc::close(fd);
        }
        if i % 2000 == 0 {
            std::process::Command::new("/bin/true").status().unwrap();
            p.poll(Duration::from_millis(0), |_| {}).unwrap();
        }
    }
    p.poll(Duration::from_millis(10), |_| {}).unwrap();
    let out = std::process::Command::new("bpftool")
        .args(["prog", "show"])
        .output()
        .unwrap();
    std::fs::write("/proc/sys/kernel/bpf_stats_enabled", "0").expect("disable bpf stats");
    let text = String::from_utf8_lossy(&out.stdout);
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        let get = |k: &str| {
            f.iter()
                .position(|x| *x == k)
                .and_then(|i| f.get(i + 1))
                .and_then(|v| v.parse::<u64>().ok())
        };
        let name = f
            .iter()
            .position(|x| *x == "name")
            .and_then(|i| f.get(i + 1));
        if let (Some(name), Some(t), Some(n)) = (name, get("run_time_ns"), get("run_cnt")) {
            if n > 0 && p.attached().iter().any(|a| a.starts_with(*name)) {
                println!(
                    "{name:<20} {:>8.0} ns/run  {n:>8} runs",
                    t as f64 / n as f64
                );
            }
        }
    }
}
