//! The PPM event table: for every event id (Falco's numbering, `PPM_EVENT_MAX` = 454)
//! its name, direction, category, flags and parameter list.
//!
//! The data lives in `tables/*.tsv` (see `tables/README.md`); build.rs turns it into
//! Rust in OUT_DIR. Parameter lists are those of libs HEAD (exit-only model): exit
//! events carry every parameter, including the ones older drivers sent on enter.

mod data {
    use super::*;
    include!(concat!(env!("OUT_DIR"), "/events.rs"));
}
pub use data::EVENT_MAX;

/// PPM flag/enum tables (names and values in PPM encoding), one static per table.
pub mod flagdata {
    use super::FlagTable;
    include!(concat!(env!("OUT_DIR"), "/flagdata.rs"));
}

// Event categories (low bits: syscall category; high bits: event source).
pub const EC_UNKNOWN: u32 = 0;
pub const EC_OTHER: u32 = 1;
pub const EC_FILE: u32 = 2;
pub const EC_NET: u32 = 3;
pub const EC_IPC: u32 = 4;
pub const EC_MEMORY: u32 = 5;
pub const EC_PROCESS: u32 = 6;
pub const EC_SLEEP: u32 = 7;
pub const EC_SYSTEM: u32 = 8;
pub const EC_SIGNAL: u32 = 9;
pub const EC_USER: u32 = 10;
pub const EC_TIME: u32 = 11;
pub const EC_PROCESSING: u32 = 12;
pub const EC_IO_BASE: u32 = 32;
pub const EC_IO_READ: u32 = 32;
pub const EC_IO_WRITE: u32 = 33;
pub const EC_IO_OTHER: u32 = 34;
pub const EC_WAIT: u32 = 1 << 6;
pub const EC_SCHEDULER: u32 = 1 << 7;
pub const EC_INTERNAL: u32 = 1 << 8;
pub const EC_SYSCALL: u32 = 1 << 9;
pub const EC_TRACEPOINT: u32 = 1 << 10;
pub const EC_PLUGIN: u32 = 1 << 11;
pub const EC_METAEVENT: u32 = 1 << 12;
pub const EC_ITER: u32 = 1 << 13;
/// Mask of the syscall-category part of `category`.
pub const EC_LOW_MASK: u32 = 0xff;

// Event flags.
pub const EF_NONE: u32 = 0;
pub const EF_CREATES_FD: u32 = 1 << 0;
pub const EF_DESTROYS_FD: u32 = 1 << 1;
pub const EF_USES_FD: u32 = 1 << 2;
pub const EF_READS_FROM_FD: u32 = 1 << 3;
pub const EF_WRITES_TO_FD: u32 = 1 << 4;
pub const EF_MODIFIES_STATE: u32 = 1 << 5;
pub const EF_UNUSED: u32 = 1 << 6;
pub const EF_WAITS: u32 = 1 << 7;
pub const EF_SKIPPARSERESET: u32 = 1 << 8;
pub const EF_OLD_VERSION: u32 = 1 << 9;
pub const EF_LARGE_PAYLOAD: u32 = 1 << 11;
pub const EF_TMP_CONVERTER_MANAGED: u32 = 1 << 12;

/// Event direction: even ids are enter (`>`), odd ids exit (`<`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dir {
    Enter,
    Exit,
}

impl Dir {
    pub fn as_char(self) -> char {
        match self {
            Dir::Enter => '>',
            Dir::Exit => '<',
        }
    }
}

/// scap parameter types (discriminants are the `PT_*` ids of the scap format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ParamType {
    None = 0,
    Int8 = 1,
    Int16 = 2,
    Int32 = 3,
    Int64 = 4,
    Uint8 = 5,
    Uint16 = 6,
    Uint32 = 7,
    Uint64 = 8,
    CharBuf = 9,
    ByteBuf = 10,
    Errno = 11,
    SockAddr = 12,
    SockTuple = 13,
    Fd = 14,
    Pid = 15,
    FdList = 16,
    FsPath = 17,
    SyscallId = 18,
    SigType = 19,
    RelTime = 20,
    AbsTime = 21,
    Port = 22,
    L4Proto = 23,
    SockFamily = 24,
    Bool = 25,
    Ipv4Addr = 26,
    Dyn = 27,
    Flags8 = 28,
    Flags16 = 29,
    Flags32 = 30,
    Uid = 31,
    Gid = 32,
    Double = 33,
    SigSet = 34,
    CharBufArray = 35,
    CharBufPairArray = 36,
    Ipv4Net = 37,
    Ipv6Addr = 38,
    Ipv6Net = 39,
    IpAddr = 40,
    IpNet = 41,
    Mode = 42,
    FsRelPath = 43,
    EnumFlags8 = 44,
    EnumFlags16 = 45,
    EnumFlags32 = 46,
    Fd32 = 47,
    Pid32 = 48,
}

impl ParamType {
    /// Encoded width of fixed-size types; `None` for variable-size ones.
    pub fn fixed_size(self) -> Option<usize> {
        use ParamType::*;
        Some(match self {
            Int8 | Uint8 | SigType | L4Proto | SockFamily | Flags8 | EnumFlags8 => 1,
            Int16 | Uint16 | Port | SyscallId | Flags16 | EnumFlags16 => 2,
            Int32 | Uint32 | Bool | Ipv4Addr | Flags32 | Uid | Gid | SigSet | Mode
            | EnumFlags32 | Fd32 | Pid32 => 4,
            Int64 | Uint64 | Errno | Fd | Pid | RelTime | AbsTime | Double => 8,
            Ipv6Addr => 16,
            _ => return Option::None,
        })
    }

    /// Types whose value is a NUL-terminated string.
    pub fn is_string(self) -> bool {
        matches!(
            self,
            ParamType::CharBuf | ParamType::FsPath | ParamType::FsRelPath
        )
    }
}

/// Print format hint of a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fmt {
    Na,
    Dec,
    Hex,
    PaddedDec,
    Id,
    Dir,
    Oct,
}

/// Which sub-table a DYN parameter selects its type from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DynKind {
    /// 0 BYTEBUF, 1 ERRNO, 2 UINT32, 3 UINT64, 4 RELTIME.
    Sockopt,
    /// 0 UINT64, 1 SIGTYPE.
    Ptrace,
    /// 0 FD, 1 ERRNO.
    Bpf,
    /// 0 INT64, 1 CHARBUF.
    Keyctl,
}

impl DynKind {
    /// Type of the value for dynamic index `idx`.
    pub fn param_type(self, idx: u8) -> Option<ParamType> {
        use ParamType::*;
        let t: &[ParamType] = match self {
            DynKind::Sockopt => &[ByteBuf, Errno, Uint32, Uint64, RelTime],
            DynKind::Ptrace => &[Uint64, SigType],
            DynKind::Bpf => &[Fd, Errno],
            DynKind::Keyctl => &[Int64, CharBuf],
        };
        t.get(idx as usize).copied()
    }
}

/// A PPM flag or enum table: names and values in PPM encoding.
#[derive(Debug, PartialEq, Eq)]
pub struct FlagTable {
    pub name: &'static str,
    pub entries: &'static [(&'static str, u32)],
}

/// Extra information attached to a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aux {
    None,
    /// Flag/enum names for FLAGS*/ENUMFLAGS*/MODE parameters.
    Flags(&'static FlagTable),
    /// For FSRELPATH: index of the dirfd parameter it is relative to.
    DirFd(u8),
    /// For DYN parameters.
    Dyn(DynKind),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamInfo {
    pub name: &'static str,
    pub ty: ParamType,
    pub fmt: Fmt,
    pub aux: Aux,
}

impl ParamInfo {
    pub fn flag_table(&self) -> Option<&'static FlagTable> {
        match self.aux {
            Aux::Flags(t) => Some(t),
            _ => None,
        }
    }

    pub fn dirfd_param(&self) -> Option<usize> {
        match self.aux {
            Aux::DirFd(i) => Some(i as usize),
            _ => None,
        }
    }
}

const fn p(name: &'static str, ty: ParamType, fmt: Fmt, aux: Aux) -> ParamInfo {
    ParamInfo { name, ty, fmt, aux }
}

#[derive(Debug)]
pub struct EventInfo {
    pub id: u16,
    /// `evt.type` name (all versions of an event share it; `NA` for unused slots).
    pub name: &'static str,
    pub dir: Dir,
    /// `EC_*` bits.
    pub category: u32,
    /// `EF_*` bits.
    pub flags: u32,
    pub params: &'static [ParamInfo],
}

impl EventInfo {
    pub fn has_flag(&self, f: u32) -> bool {
        self.flags & f != 0
    }

    pub fn is_old_version(&self) -> bool {
        self.has_flag(EF_OLD_VERSION)
    }

    pub fn is_large_payload(&self) -> bool {
        self.has_flag(EF_LARGE_PAYLOAD)
    }

    /// Syscall category (`EC_FILE`, `EC_NET`, `EC_IO_READ`, …).
    pub fn syscall_category(&self) -> u32 {
        self.category & EC_LOW_MASK & !EC_WAIT & !EC_SCHEDULER
    }

    /// Index of the parameter called `name`.
    ///
    /// State parsers look parameters up by name on every event (an execve exit has 30), and
    /// a scan of the names costs ~300 instructions. Found indices are remembered per thread,
    /// keyed by the table entry and the name's address (callers pass literals); a hit is
    /// checked against the name, so a reused address can only cost a scan.
    #[inline]
    pub fn param_index(&self, name: &str) -> Option<usize> {
        use std::cell::Cell;
        const SLOTS: usize = 256;
        thread_local!(static SEEN: [Cell<(usize, usize, u8)>; SLOTS] =
            const { [const { Cell::new((0, 0, 0)) }; SLOTS] });
        let (me, np) = (self as *const EventInfo as usize, name.as_ptr() as usize);
        let slot = (me.wrapping_mul(31) ^ np ^ name.len()).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            >> (usize::BITS - 8);
        SEEN.with(|seen| {
            let (m, n, i) = seen[slot].get();
            if m == me && n == np && self.params.get(i as usize).is_some_and(|p| p.name == name) {
                return Some(i as usize);
            }
            let i = self.params.iter().position(|p| p.name == name)?;
            if i <= u8::MAX as usize {
                seen[slot].set((me, np, i as u8));
            }
            Some(i)
        })
    }

    pub fn is_internal(&self) -> bool {
        self.category & EC_INTERNAL != 0
    }
}

/// Table entry for an event id.
#[inline]
pub fn info(etype: u16) -> Option<&'static EventInfo> {
    data::EVENTS.get(etype as usize)
}

static GENERIC_IDS: [u16; 2] = [0, 1];

/// Every event id (enter and exit, all versions) whose `evt.type` is `name`.
///
/// Syscalls without a dedicated event are reported through the generic event
/// (ids 0/1) with their PPM_SC name as `evt.type`; for such names this returns
/// the generic ids, so a rule on e.g. `evt.type=madvise` must still check the
/// syscall code (see [`syscall_name`]). Unknown names give an empty slice.
pub fn ids_for_name(name: &str) -> &'static [u16] {
    match data::NAME_IDS.binary_search_by(|(n, _)| (*n).cmp(name)) {
        Ok(i) => data::NAME_IDS[i].1,
        Err(_) if name != "syscall" && syscall_code(name).is_some() => &GENERIC_IDS,
        Err(_) => &[],
    }
}

/// True if `name` is an event name of the table or a syscall name (generic events).
pub fn is_known_name(name: &str) -> bool {
    !ids_for_name(name).is_empty()
}

/// Every event name of the table, sorted (without the `NA` placeholders).
pub fn all_names() -> impl Iterator<Item = &'static str> {
    data::NAME_IDS.iter().map(|(n, _)| *n)
}

/// True when `name` has a dedicated event (not only the generic one).
pub fn has_dedicated_event(name: &str) -> bool {
    data::NAME_IDS
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .is_ok()
}

/// PPM_SC syscall name for a code (as carried by generic events).
pub fn syscall_name(code: u16) -> Option<&'static str> {
    data::SYSCALL_NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, n)| *n)
}

/// PPM_SC code for a syscall name.
pub fn syscall_code(name: &str) -> Option<u16> {
    data::SYSCALL_NAMES
        .iter()
        .find(|(_, n)| *n == name)
        .map(|(c, _)| *c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dense_and_directions_alternate() {
        for id in 0..EVENT_MAX {
            let e = info(id).unwrap();
            assert_eq!(e.id, id);
            assert_eq!(e.dir == Dir::Exit, id & 1 == 1, "id {id}");
        }
        assert!(info(EVENT_MAX).is_none());
    }

    #[test]
    fn well_known_ids() {
        let cases: &[(u16, &str, usize)] = &[
            (3, "open", 6),
            (2, "open", 3),
            (23, "connect", 4),
            (19, "socket", 5),
            (186, "procexit", 5),
            (223, "clone", 21),
            (293, "execve", 31),
            (307, "openat", 7),
            (327, "openat2", 8),
            (331, "execveat", 30),
            (367, "dup", 2),
            (369, "bpf", 2),
            (389, "accept4", 6),
            (451, "close_range", 4),
            (1, "syscall", 2),
        ];
        for &(id, name, n) in cases {
            let e = info(id).unwrap();
            assert_eq!((e.name, e.params.len()), (name, n), "id {id}");
        }
        let ex = info(293).unwrap();
        assert_eq!(ex.params[27].name, "trusted_exepath");
        assert_eq!(ex.params[30].name, "filename");
        assert_eq!(ex.params[19].flag_table().unwrap().name, "execve_flags");
        assert_eq!(info(307).unwrap().params[2].dirfd_param(), Some(1));
    }

    #[test]
    fn names_index_all_versions() {
        let ids = ids_for_name("execve");
        for id in [12u16, 13, 292, 293] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        assert!(ids_for_name("open").contains(&3));
        assert!(ids_for_name("accept").contains(&247));
        assert!(ids_for_name("accept4").contains(&389));
        assert_eq!(ids_for_name("madvise"), &[0, 1]);
        assert!(ids_for_name("nosuchsyscall").is_empty());
        assert!(!is_known_name("NA"));
        assert_eq!(
            syscall_name(syscall_code("madvise").unwrap()),
            Some("madvise")
        );
    }

    /// The current exit event (newest non-old exit id) of an event name.
    fn current_exit(name: &str) -> &'static EventInfo {
        ids_for_name(name)
            .iter()
            .rev()
            .map(|&i| info(i).unwrap())
            .find(|e| e.dir == Dir::Exit && !e.is_old_version())
            .unwrap_or_else(|| panic!("no current exit event for {name}"))
    }

    #[test]
    fn state_set_is_covered() {
        // sinsp_state_sc_set() at libs HEAD (events-and-captures.md §3.4), minus the
        // 32-bit-only variants and the sched_process_exit tracepoint.
        let state = "accept accept4 bind capset chdir chroot clone clone3 close close_range \
            connect creat dup dup2 dup3 epoll_create epoll_create1 eventfd eventfd2 execve \
            execveat fchdir fcntl fork getsockopt inotify_init inotify_init1 io_uring_setup \
            memfd_create mount open open_by_handle_at openat openat2 pidfd_getfd pidfd_open pipe \
            pipe2 prctl prlimit recvfrom recvmmsg recvmsg sendmmsg sendmsg sendto setgid \
            setregid setresgid setresuid setreuid setrlimit setsid setuid shutdown signalfd \
            signalfd4 socket socketpair timerfd_create umount umount2 userfaultfd vfork";
        for n in state.split_whitespace() {
            assert!(has_dedicated_event(n), "{n}");
            let e = current_exit(n);
            assert!(e.category & EC_SYSCALL != 0, "{n}");
        }
        assert!(has_dedicated_event("procexit"));
        for n in [
            "fcntl64",
            "setgid32",
            "setresgid32",
            "setresuid32",
            "setuid32",
        ] {
            assert!(is_known_name(n), "{n} (generic)");
        }
    }

    #[test]
    fn rule_arguments_exist_on_exit_events() {
        // evt.arg.* names the upstream rules use (rules-language.md §5.3).
        let uses: &[(&str, &[&str])] = &[
            ("bpf", &["cmd"]),
            ("socket", &["domain", "flags"]),
            ("chmod", &["filename", "mode"]),
            ("fchmodat", &["filename", "mode", "dirfd"]),
            ("fchmod", &["fd", "mode"]),
            ("execve", &["filename", "flags"]),
            ("open", &["flags", "name", "mode"]),
            ("openat", &["flags", "name", "mode", "dirfd"]),
            ("openat2", &["flags", "name", "mode"]),
            ("creat", &["name", "mode"]),
            ("dup3", &["flags"]),
            ("linkat", &["flags", "oldpath", "newpath"]),
            ("link", &["oldpath", "newpath"]),
            ("unlinkat", &["flags", "name"]),
            ("unlink", &["path"]),
            ("renameat2", &["flags", "oldpath", "newpath"]),
            ("rename", &["oldpath", "newpath"]),
            ("renameat", &["oldpath", "newpath"]),
            ("unshare", &["flags"]),
            ("finit_module", &["flags"]),
            ("userfaultfd", &["flags"]),
            ("accept4", &["flags"]),
            ("symlink", &["target", "linkpath"]),
            ("symlinkat", &["target", "linkpath"]),
            ("mkdir", &["path", "mode"]),
            ("mkdirat", &["path"]),
            ("rmdir", &["path"]),
            ("ptrace", &["request"]),
            ("setuid", &["uid"]),
            ("setns", &["fd"]),
            ("listen", &["fd"]),
        ];
        for (ev, args) in uses {
            let e = current_exit(ev);
            for a in *args {
                assert!(e.param_index(a).is_some(), "{ev} exit lacks {a}");
            }
        }
        let unshare = current_exit("unshare");
        let t = unshare.params[1].flag_table().unwrap();
        assert!(t.entries.iter().any(|(n, _)| *n == "CLONE_NEWUSER"));
        let ptrace = current_exit("ptrace");
        assert_eq!(
            ptrace.params[3].flag_table().unwrap().name,
            "ptrace_requests"
        );
        assert_eq!(
            current_exit("bpf").params[1].flag_table().unwrap().name,
            "bpf_commands"
        );
    }

    #[test]
    fn rule_event_types_are_known() {
        for n in [
            "accept",
            "accept4",
            "bpf",
            "chmod",
            "connect",
            "creat",
            "dup",
            "dup2",
            "dup3",
            "execve",
            "execveat",
            "fchmod",
            "fchmodat",
            "finit_module",
            "init_module",
            "link",
            "linkat",
            "listen",
            "mkdir",
            "mkdirat",
            "open",
            "openat",
            "openat2",
            "ptrace",
            "recvfrom",
            "recvmsg",
            "rename",
            "renameat",
            "renameat2",
            "rmdir",
            "sendmsg",
            "sendto",
            "setns",
            "setuid",
            "socket",
            "symlink",
            "symlinkat",
            "unlink",
            "unlinkat",
            "unshare",
            "userfaultfd",
        ] {
            assert!(has_dedicated_event(n), "{n}");
            assert!(
                ids_for_name(n)
                    .iter()
                    .any(|&i| i % 2 == 1 && !info(i).unwrap().is_old_version()),
                "{n} has no current exit event"
            );
        }
    }
}
