//! Compiles bpf/probe.bpf.c with clang (through libbpf-cargo) into OUT_DIR.
//!
//! vmlinux.h is generated into OUT_DIR from the build machine's BTF with
//! bpftool: the probe only uses CO-RE relocated accesses, so the object runs
//! on any BTF kernel regardless of where it was built. Set SAKER_VMLINUX_H to
//! a pre-generated header to build on a machine without /sys/kernel/btf.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR"));
    let bpf_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("manifest dir")).join("bpf");
    let vmlinux = out.join("vmlinux.h");
    println!("cargo:rerun-if-env-changed=SAKER_VMLINUX_H");
    if let Some(given) = env::var_os("SAKER_VMLINUX_H") {
        std::fs::copy(&given, &vmlinux).expect("copy SAKER_VMLINUX_H");
    } else if !vmlinux.exists() {
        let dump = Command::new("bpftool")
            .args(["btf", "dump", "file", "/sys/kernel/btf/vmlinux", "format", "c"])
            .output()
            .unwrap_or_else(|e| panic!("running bpftool to generate vmlinux.h: {e} (install bpftool or set SAKER_VMLINUX_H)"));
        if !dump.status.success() {
            panic!(
                "bpftool btf dump failed: {} (no /sys/kernel/btf/vmlinux? set SAKER_VMLINUX_H)",
                String::from_utf8_lossy(&dump.stderr)
            );
        }
        std::fs::write(&vmlinux, dump.stdout).expect("write vmlinux.h");
    }
    // Two objects from one source: "modern" (6.2+: direct BTF loads, bpf_loop)
    // and "core" (5.8+: probe reads, bounded loops). See bpf/compat.h.
    for (obj, defines) in [
        ("probe.bpf.o", &["-DSAKER_MODERN"][..]),
        ("probe_core.bpf.o", &[][..]),
    ] {
        let mut args: Vec<std::ffi::OsString> = vec![
            "-I".into(),
            out.clone().into_os_string(),
            "-I".into(),
            bpf_dir.clone().into_os_string(),
            "-O2".into(),
            "-g".into(),
            "-Wno-unused-function".into(),
        ];
        args.extend(defines.iter().map(|d| d.into()));
        libbpf_cargo::SkeletonBuilder::new()
            .source(bpf_dir.join("probe.bpf.c"))
            .obj(out.join(obj))
            .clang_args(args)
            .build()
            .unwrap_or_else(|e| panic!("compiling the eBPF probe ({obj}): {e:#}"));
    }
    for f in [
        "probe.bpf.c",
        "common.h",
        "compat.h",
        "task.h",
        "proc.h",
        "simple.h",
        "net.h",
        "prefilter.h",
    ] {
        println!("cargo:rerun-if-changed=bpf/{f}");
    }
}
