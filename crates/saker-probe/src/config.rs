//! What the probe captures: the selected syscalls, computed at load time from
//! the event types the rules need ∪ the state set.

use std::collections::BTreeSet;

/// One syscall the probe can report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyscallDef {
    /// Falco/scap name (`evt.type`).
    pub name: &'static str,
    /// Program name in the eBPF object.
    pub prog: &'static str,
    /// `syscalls:sys_exit_<tracepoint>` name on this architecture.
    pub tracepoint: &'static str,
    /// x86-64 syscall number.
    pub nr: u32,
    /// Exit event type id produced.
    pub event: u16,
}

// SYSCALLS and STATE_SET, generated from bpf/syscalls.def by build.rs.
include!(concat!(env!("OUT_DIR"), "/syscalls.rs"));

pub fn lookup(name: &str) -> Option<&'static SyscallDef> {
    let name = match name {
        "umount" => "umount2",
        n => n,
    };
    SYSCALLS.iter().find(|d| d.name == name)
}

/// Load-time selection. `procexit` (sched_process_exit) is always on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeConfig {
    /// Syscall names (scap `evt.type` names) the rules need.
    pub syscalls: BTreeSet<String>,
    /// Add [`STATE_SET`] (needed for a correct thread/fd table).
    pub state_set: bool,
    /// Bytes of the ring for clone/exec/exit (power of two).
    pub state_ring_bytes: u32,
    /// Bytes of the ring for everything else (power of two).
    pub main_ring_bytes: u32,
    /// Report selected syscalls without a per-syscall tracepoint (the module
    /// syscalls on a kernel built without modules) through the generic
    /// tp_btf/sys_exit hook. That hook runs on every syscall (getpid +64 %
    /// here instead of +40 % with per-syscall tracepoints only), so callers
    /// may turn it off and lose those syscalls instead.
    pub generic_fallback: bool,
    /// How syscall exits are hooked (`engine.modern_ebpf.attach`).
    pub attach: AttachMode,
    /// Which compiled object to load; `None` picks by the kernel's features.
    /// `SAKER_PROBE_VARIANT=core|modern` overrides it (tests, benchmarks).
    pub variant: Option<Variant>,
    /// The in-kernel prefilter for opens and closes; `None`: every event of a
    /// selected syscall passes.
    pub prefilter: Option<Prefilter>,
}

/// The kernel side of a prefilter plan (saker-rules `prefilter::Plan`): open
/// classes are bits (1 any, 2 write, 4 success, 8 write and success).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Prefilter {
    /// Classes whose opens pass whatever the path.
    pub any_mask: u8,
    /// Drop closes of fds whose open was dropped.
    pub suppress_closes: bool,
    /// Path patterns (bytes, exact) with the classes they admit. Each entry's
    /// mask must already include those of the prefixes covering it.
    pub paths: Vec<(Vec<u8>, bool, u8)>,
}

/// Bytes of a path the prefilter compares (`PF_KEY_MAX` in bpf/common.h).
pub const PREFILTER_KEY_MAX: usize = 128;

/// How the probe hooks syscall exits. `Auto` takes the cheapest the kernel
/// allows: fexit, then per-syscall tracepoints; the generic `sys_exit` hook
/// serves what neither can (e.g. syscalls compiled without a tracepoint).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachMode {
    #[default]
    Auto,
    /// fexit programs on the `__x64_sys_*` functions: unselected syscalls
    /// keep the kernel's fast path (no syscall tracepoint is enabled).
    Fexit,
    /// One classic `syscalls:sys_exit_<name>` tracepoint per selected syscall.
    Tracepoint,
    /// One `tp_btf/sys_exit` program for every syscall, tail-calling the
    /// selected syscalls' programs.
    Generic,
}

impl AttachMode {
    pub fn name(self) -> &'static str {
        match self {
            AttachMode::Auto => "auto",
            AttachMode::Fexit => "fexit",
            AttachMode::Tracepoint => "tracepoint",
            AttachMode::Generic => "generic",
        }
    }
}

impl std::str::FromStr for AttachMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Ok(match s {
            "auto" => AttachMode::Auto,
            "fexit" => AttachMode::Fexit,
            "tracepoint" => AttachMode::Tracepoint,
            "generic" => AttachMode::Generic,
            _ => {
                return Err(format!(
                    "unknown attach mode {s:?} (expected auto, fexit, tracepoint or generic)"
                ))
            }
        })
    }
}

/// The two objects compiled from `bpf/probe.bpf.c` (see `bpf/compat.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// Linux 6.2+ (`bpf_rdonly_cast`): direct BTF loads and `bpf_loop`.
    Modern,
    /// Linux 5.8+: probe reads and bounded loops.
    Core,
}

impl Variant {
    pub fn name(self) -> &'static str {
        match self {
            Variant::Modern => "modern",
            Variant::Core => "core",
        }
    }
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            syscalls: BTreeSet::new(),
            state_set: true,
            state_ring_bytes: 4 << 20,
            main_ring_bytes: 16 << 20,
            generic_fallback: true,
            attach: AttachMode::Auto,
            variant: None,
            prefilter: None,
        }
    }
}

impl ProbeConfig {
    /// Rules' event types + the state set. Names the probe does not implement
    /// (e.g. `read`) are kept; [`ProbeConfig::selected`] reports them.
    pub fn for_event_types<I, S>(names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        ProbeConfig {
            syscalls: names.into_iter().map(Into::into).collect(),
            ..Default::default()
        }
    }

    /// The implemented syscalls selected, and the requested names the probe
    /// cannot produce (tracepoint events like `procexit` are not syscalls and
    /// are not reported as missing).
    pub fn selected(&self) -> (Vec<&'static SyscallDef>, Vec<String>) {
        let mut names: BTreeSet<&str> = self.syscalls.iter().map(String::as_str).collect();
        if self.state_set {
            names.extend(STATE_SET.iter().copied());
        }
        let mut defs = Vec::new();
        let mut missing = Vec::new();
        for n in names {
            match lookup(n) {
                Some(d) => {
                    if !defs.contains(&d) {
                        defs.push(d)
                    }
                }
                None if matches!(n, "procexit" | "sched_process_exit") => {}
                None => missing.push(n.to_string()),
            }
        }
        (defs, missing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selection_merges_rules_and_state() {
        let c = ProbeConfig::for_event_types(["openat", "read", "procexit", "umount"]);
        let (defs, missing) = c.selected();
        let names: Vec<_> = defs.iter().map(|d| d.name).collect();
        assert!(
            names.contains(&"openat") && names.contains(&"execve") && names.contains(&"umount2")
        );
        assert!(!names.contains(&"getpid") && !names.contains(&"ptrace"));
        assert_eq!(missing, vec!["read".to_string()]);
        let bare = ProbeConfig {
            state_set: false,
            ..ProbeConfig::for_event_types(["ptrace"])
        };
        let (defs, _) = bare.selected();
        assert_eq!(defs.len(), 1);
        assert_eq!(defs[0].event, 169);
    }

    /// A SIMPLE entry's parameter count is the event table's: the probe
    /// would otherwise emit events user space rejects (caught here, not by a
    /// root test).
    #[test]
    fn simple_entries_match_the_event_table() {
        let def = include_str!("../bpf/syscalls.def");
        let mut checked = 0;
        for line in def.lines().filter(|l| l.starts_with("SC(")) {
            let f: Vec<&str> = line[3..].splitn(6, ',').map(str::trim).collect();
            let Some(simple) = f[5].strip_prefix("SIMPLE(") else {
                continue;
            };
            let n: usize = simple.split(',').nth(2).unwrap().trim().parse().unwrap();
            let ev: u16 = f[3].parse().unwrap();
            let info = saker_event::info(ev).expect("event id in the table");
            assert_eq!(info.params.len(), n, "{line}");
            checked += 1;
        }
        assert!(checked > 40, "only {checked} SIMPLE entries found");
        assert_eq!(
            SYSCALLS.len(),
            def.lines().filter(|l| l.starts_with("SC(")).count()
        );
    }

    #[test]
    fn table_is_consistent() {
        for d in SYSCALLS {
            assert_eq!(d.event % 2, 1, "{} must be an exit event", d.name);
            assert!(d.nr < 512);
            assert_eq!(lookup(d.name), Some(d));
            let info = saker_event::info(d.event).expect("event id in the table");
            assert_eq!(info.name, d.name, "event {} name", d.event);
        }
    }
}
