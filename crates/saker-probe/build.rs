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
        let mut b = libbpf_cargo::SkeletonBuilder::new();
        b.source(bpf_dir.join("probe.bpf.c"))
            .obj(out.join(obj))
            .clang_args(args);
        // The skeleton is generated once, for its Rust types of the wire
        // records (bpf/wire.h); the loader opens objects by name.
        let built = if obj == "probe.bpf.o" {
            b.build_and_generate(out.join("probe.skel.rs"))
        } else {
            b.build()
        };
        built.unwrap_or_else(|e| panic!("compiling the eBPF probe ({obj}): {e:#}"));
    }
    syscall_table(&bpf_dir.join("syscalls.def"), &out.join("syscalls.rs"));
    wire_types(&out.join("probe.skel.rs"), &out.join("wire_types.rs"));
    for f in [
        "probe.bpf.c",
        "common.h",
        "compat.h",
        "task.h",
        "proc.h",
        "simple.h",
        "net.h",
        "prefilter.h",
        "wire.h",
        "syscalls.def",
    ] {
        println!("cargo:rerun-if-changed=bpf/{f}");
    }
}

/// Reads bpf/syscalls.def (`SC(name, tracepoint, nr, event, state, body)`
/// lines) into the Rust syscall table, so C and Rust list the same syscalls.
fn syscall_table(def: &std::path::Path, out: &std::path::Path) {
    let text = std::fs::read_to_string(def).expect("read bpf/syscalls.def");
    let mut table = String::from("/// Every syscall the probe implements (bpf/syscalls.def).\npub const SYSCALLS: &[SyscallDef] = &[\n");
    let mut state = String::from("/// Syscalls the state engine needs (bpf/syscalls.def `state` = 1).\npub const STATE_SET: &[&str] = &[\n");
    for (i, line) in text.lines().enumerate() {
        let Some(rest) = line.strip_prefix("SC(") else {
            continue;
        };
        let f: Vec<&str> = rest.splitn(6, ',').map(str::trim).collect();
        let bad = |what: &str| -> ! { panic!("bpf/syscalls.def:{}: {what}: {line}", i + 1) };
        if f.len() < 6 {
            bad("expected SC(name, tracepoint, nr, event, state, body)");
        }
        let nr: u32 = f[2].parse().unwrap_or_else(|_| bad("nr is not a number"));
        let ev: u16 = f[3]
            .parse()
            .unwrap_or_else(|_| bad("event is not a number"));
        table.push_str(&format!(
            "    SyscallDef {{ name: {:?}, prog: {:?}, tracepoint: {:?}, nr: {nr}, event: {ev} }},\n",
            f[0],
            format!("x_{}", f[0]),
            f[1]
        ));
        match f[4] {
            "1" => state.push_str(&format!("    {:?},\n", f[0])),
            "0" => {}
            _ => bad("state must be 0 or 1"),
        }
    }
    table.push_str("];\n");
    state.push_str("];\n");
    std::fs::write(out, table + &state).expect("write syscalls.rs");
}

/// Copies the wire records' types (bpf/wire.h) out of the generated
/// skeleton: the rest of it (every kernel type the probe touches) is not
/// needed and would slow the build.
fn wire_types(skel: &std::path::Path, out: &std::path::Path) {
    let text = std::fs::read_to_string(skel).expect("read the generated skeleton");
    let lines: Vec<&str> = text.lines().collect();
    let mut found =
        String::from("// Generated from bpf/wire.h by build.rs (through the libbpf skeleton).\n");
    for name in ["evt_hdr", "counter", "settings"] {
        let head = format!("pub struct {name} {{");
        let at = lines
            .iter()
            .position(|l| l.trim() == head)
            .unwrap_or_else(|| {
                panic!("the skeleton has no `struct {name}`: is it in bpf/wire.h's wire_records?")
            });
        // The attributes above the struct (derive, repr), then its body.
        let mut start = at;
        while start > 0 && lines[start - 1].trim_start().starts_with("#[") {
            start -= 1;
        }
        let end = at
            + lines[at..]
                .iter()
                .position(|l| l.trim() == "}")
                .expect("struct end");
        for l in &lines[start..=end] {
            let l = l.trim_start();
            // PartialEq/Eq for counters compared in tests and stats.
            if l.starts_with("#[derive(") {
                found.push_str("#[derive(Debug, Default, Copy, Clone, PartialEq, Eq)]\n");
            } else {
                found.push_str(l);
                found.push('\n');
            }
        }
    }
    std::fs::write(out, found).expect("write wire_types.rs");
}
