//! Saker's live source.
//!
//! * [`Probe`]: a CO-RE eBPF probe (C, `bpf/probe.bpf.c`, compiled by clang in
//!   build.rs, loaded with libbpf-rs). It emits the exit-only scap v2 events
//!   of the selected syscalls plus procexit, into two ring buffers (a small
//!   one for clone/exec/exit, a large one for the rest), and counts events and
//!   drops per CPU. Each selected syscall gets its own program: fexit on the
//!   syscall function where the kernel allows trampolines, else its
//!   `syscalls:sys_exit_<name>` tracepoint; a syscall with neither is served by
//!   one generic `tp_btf/sys_exit` dispatcher by tail call. One source is
//!   compiled into two objects (6.2+ and 5.8+), picked at load time.
//! * [`procfs::scan`]: the /proc walk that seeds the thread and fd tables.

mod config;
mod error;
mod loader;
pub mod procfs;
mod record;
mod wire;

pub use config::{
    lookup, AttachMode, Prefilter, ProbeConfig, SyscallDef, Variant, PREFILTER_KEY_MAX, STATE_SET,
    SYSCALLS,
};
pub use error::{ProbeError, RecordError};
pub use loader::{
    check_environment, has_exit_tracepoint, kernel_release, Family, Probe, ProbeControl, ProbeStats,
};
pub use record::{parse_record, validate};
pub use wire::Counters;
