//! The capabilities `saker run` needs (docs/security.md), checked at start so
//! that a missing one is named with what stops working, instead of showing up
//! later as empty fields or a probe that does not load.

/// (capability number, name, what stops working without it).
pub const NEEDED: [(u32, &str, &str); 5] = [
    (
        39,
        "CAP_BPF",
        "the eBPF probe cannot be loaded (unless CAP_SYS_ADMIN is held)",
    ),
    (
        38,
        "CAP_PERFMON",
        "the probe's tracing programs cannot be loaded or attached (unless CAP_SYS_ADMIN is held)",
    ),
    (
        19,
        "CAP_SYS_PTRACE",
        "processes of other users started before Saker have no executable path, cwd or environment in alerts",
    ),
    (
        2,
        "CAP_DAC_READ_SEARCH",
        "files and sockets opened by other users' processes before Saker started have no fd.name in alerts",
    ),
    (
        24,
        "CAP_SYS_RESOURCE",
        "on kernels before 5.11 the probe's maps exceed RLIMIT_MEMLOCK and fail to load",
    ),
];

const CAP_SYS_ADMIN: u32 = 21;

/// The effective capability set of this process.
pub fn effective() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let hex = status.lines().find_map(|l| l.strip_prefix("CapEff:"))?;
    u64::from_str_radix(hex.trim(), 16).ok()
}

/// Warning lines for each needed capability that is not effective.
pub fn missing(eff: u64) -> Vec<String> {
    let has = |c: u32| eff & (1u64 << c) != 0;
    NEEDED
        .iter()
        .filter(|(c, _, _)| {
            let covered = matches!(*c, 38 | 39) && has(CAP_SYS_ADMIN);
            !(has(*c) || covered)
        })
        .map(|(_, name, why)| format!("{name} is missing: {why}"))
        .collect()
}

/// Prints `saker: warning: CAP_X is missing: ...` for each missing capability.
pub fn report() {
    if let Some(eff) = effective() {
        for w in missing(eff) {
            eprintln!("saker: warning: {w}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_is_missing() {
        let all: u64 = NEEDED.iter().map(|(c, _, _)| 1u64 << c).sum();
        assert_eq!(all, 0xc0_0108_0004);
        assert!(missing(all).is_empty());
        let m = missing(all & !(1 << 19));
        assert_eq!(m.len(), 1);
        assert!(m[0].starts_with("CAP_SYS_PTRACE is missing: processes of other users"));
        // CAP_SYS_ADMIN covers BPF and PERFMON (as on kernels before 5.8).
        let admin = (1u64 << 21) | (1 << 19) | (1 << 2) | (1 << 24);
        assert!(missing(admin).is_empty());
        assert_eq!(missing(0).len(), 5);
    }
}
