//! `engine.modern_ebpf.attach` and the kernel checks, through the binary on this kernel (root).
//! The same modes on 5.10/6.1/6.12 are covered by the QEMU kernel matrix (tests/kernel-matrix).

mod common;

use std::process::Command;

fn saker_run(extra: &[&str]) -> (bool, String) {
    let out = Command::new(common::saker_bin())
        .args(["run", "--duration", "1"])
        .args(extra)
        .output()
        .expect("run saker");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .unwrap()
        .trim()
        .to_string()
}

#[test]
#[ignore = "needs root"]
fn an_unknown_attach_mode_is_refused_by_name() {
    common::require_live("an_unknown_attach_mode_is_refused_by_name");
    let (ok, err) = saker_run(&["-o", "engine.modern_ebpf.attach=kprobe"]);
    assert!(!ok, "{err}");
    assert!(
        err.contains("engine.modern_ebpf.attach: unknown attach mode \"kprobe\" (expected auto, fexit, tracepoint or generic)"),
        "{err}"
    );
}

#[test]
#[ignore = "needs root"]
fn each_attach_mode_starts_and_says_which_it_took() {
    common::require_live("each_attach_mode_starts_and_says_which_it_took");
    let _g = common::probe_lock();
    // (mode, generic fallback, mode expected). This kernel refuses trampolines and compiles the
    // module syscalls out (no tracepoint): with the fallback on, the generic hook then serves
    // every selected syscall; with it off, per-syscall tracepoints stay.
    for (mode, fallback, want) in [
        ("tracepoint", false, "tracepoint"),
        ("tracepoint", true, "generic"),
        ("generic", true, "generic"),
        ("auto", true, "generic"),
    ] {
        let (ok, err) = saker_run(&[
            "-o",
            &format!("engine.modern_ebpf.attach={mode}"),
            "-o",
            &format!("engine.modern_ebpf.generic_fallback={fallback}"),
        ]);
        assert!(ok, "{mode}: {err}");
        let started = err
            .lines()
            .find(|l| l.contains("saker: started"))
            .unwrap_or_else(|| panic!("{mode}: no start line in {err}"));
        assert!(
            started.contains(&format!("kernel {}", release())),
            "{started}"
        );
        assert!(
            started.contains(&format!("({want} mode, ")),
            "{mode}: {started}"
        );
        assert!(started.contains("modern object"), "{started}");
    }
}

#[test]
#[ignore = "needs root"]
fn forcing_fexit_where_the_kernel_refuses_it_names_kernel_and_reason() {
    common::require_live("forcing_fexit_where_the_kernel_refuses_it_names_kernel_and_reason");
    let _g = common::probe_lock();
    let (ok, err) = saker_run(&["-o", "engine.modern_ebpf.attach=fexit"]);
    assert!(!ok, "{err}");
    let line = err
        .lines()
        .find(|l| l.contains("attach mode fexit is not available"))
        .unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains(&format!("kernel {}", release())), "{line}");
}

/// Without BTF (hidden by a tmpfs over /sys/kernel/btf in a private mount namespace), saker
/// stops at once with one line naming the kernel and what is missing.
#[test]
#[ignore = "needs root"]
fn without_btf_saker_stops_with_one_line() {
    common::require_live("without_btf_saker_stops_with_one_line");
    let script = format!(
        "mount -t tmpfs none /sys/kernel/btf && exec {} run --duration 1",
        common::saker_bin().display()
    );
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", &script])
        .output()
        .expect("unshare");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("saker:")).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert_eq!(
        lines[0],
        format!(
            "saker: kernel {}: BTF not found at /sys/kernel/btf/vmlinux (the probe needs Linux >= 5.8 built with CONFIG_DEBUG_INFO_BTF)",
            release()
        )
    );
}
