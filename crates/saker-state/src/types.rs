//! Thread and fd records kept by the state engine.

use rustc_hash::FxHashMap;
use saker_event::{FdType, SockInfo};

pub use crate::nul_list::NulList;

/// scap layer-4 protocol codes (as in fd lists).
pub mod l4 {
    pub const UNKNOWN: u8 = 0;
    pub const NA: u8 = 1;
    pub const TCP: u8 = 2;
    pub const UDP: u8 = 3;
    pub const ICMP: u8 = 4;
    pub const RAW: u8 = 5;
}

/// PPM_O_* open flags used by the parser and extractors.
pub mod oflags {
    pub const RDONLY: u32 = 1;
    pub const WRONLY: u32 = 2;
    pub const CREAT: u32 = 4;
    pub const DIRECTORY: u32 = 1024;
    pub const CLOEXEC: u32 = 4096;
    pub const TMPFILE: u32 = 8192;
    pub const F_CREATED: u32 = 16384;
    pub const FD_UPPER_LAYER: u32 = 32768;
    pub const FD_LOWER_LAYER: u32 = 65536;
}

/// PPM_CL_* clone flags.
pub mod clflags {
    pub const CLONE_FILES: u32 = 1;
    pub const CLONE_NEWPID: u32 = 64;
    pub const CLONE_PARENT: u32 = 256;
    pub const CLONE_THREAD: u32 = 8192;
    pub const CLONE_NEWUSER: u32 = 1 << 20;
    pub const CLONE_VFORK: u32 = 1 << 27;
    pub const CHILD_IN_PIDNS: u32 = 1 << 29;
}

/// One thread (task) of the thread table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Thread {
    pub tid: i64,
    pub pid: i64,
    pub ptid: i64,
    /// Reaper announced by procexit (0 when none).
    pub reaper: i64,
    pub sid: i64,
    pub vpgid: i64,
    pub pgid: i64,
    pub vtid: i64,
    pub vpid: i64,
    pub comm: Vec<u8>,
    /// argv[0].
    pub exe: Vec<u8>,
    pub exepath: Vec<u8>,
    pub args: NulList,
    pub env: NulList,
    /// Always ends with `/`.
    pub cwd: Vec<u8>,
    pub root: Vec<u8>,
    pub fdlimit: i64,
    /// PPM_CL_* flags of the creating clone.
    pub flags: u32,
    pub uid: u32,
    pub gid: u32,
    pub loginuid: u32,
    pub tty: u32,
    pub cap_inheritable: u64,
    pub cap_permitted: u64,
    pub cap_effective: u64,
    pub exe_writable: bool,
    pub exe_upper_layer: bool,
    pub exe_lower_layer: bool,
    pub exe_from_memfd: bool,
    pub exe_ino: u64,
    pub exe_ino_ctime: u64,
    pub exe_ino_mtime: u64,
    pub pidns_init_start_ts: u64,
    pub clone_ts: u64,
    pub lastexec_ts: u64,
    pub cgroups: NulList,
    /// Full container id from the cgroups; empty for host processes.
    pub container_id: Vec<u8>,
    pub vmsize_kb: u32,
    pub vmrss_kb: u32,
    pub vmswap_kb: u32,
    pub pfmajor: u64,
    pub pfminor: u64,
    /// Created from a table miss, not from a snapshot or a clone/exec.
    pub stub: bool,
}

impl Thread {
    /// The entry libsinsp creates for a thread it cannot find anywhere.
    pub fn stub(tid: i64) -> Thread {
        Thread {
            tid,
            pid: tid,
            ptid: -1,
            vtid: -1,
            vpid: -1,
            comm: b"<NA>".to_vec(),
            exe: b"<NA>".to_vec(),
            uid: u32::MAX,
            gid: u32::MAX,
            loginuid: u32::MAX,
            stub: true,
            ..Thread::default()
        }
    }

    pub fn is_main(&self) -> bool {
        self.tid == self.pid
    }
}

/// One open fd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fd {
    pub ty: FdType,
    /// PPM_O_* flags (files).
    pub open_flags: u32,
    pub dev: u32,
    pub ino: u64,
    /// Resolved name: absolute path, connection tuple text, unix path, ...
    pub name: Vec<u8>,
    /// Path as the syscall passed it.
    pub nameraw: Vec<u8>,
    pub sock: SockInfo,
    pub l4proto: u8,
    /// This process is the server side (bind/accept).
    pub is_server: bool,
    pub connected: bool,
    pub cloexec: bool,
}

impl Fd {
    pub fn new(ty: FdType, name: Vec<u8>) -> Fd {
        Fd {
            ty,
            open_flags: 0,
            dev: 0,
            ino: 0,
            name,
            nameraw: Vec::new(),
            sock: SockInfo::None,
            l4proto: l4::UNKNOWN,
            is_server: false,
            connected: false,
            cloexec: false,
        }
    }

    pub fn is_file(&self) -> bool {
        matches!(
            self.ty,
            FdType::File | FdType::FileV2 | FdType::Directory | FdType::Memfd
        )
    }

    pub fn is_ip(&self) -> bool {
        matches!(
            self.ty,
            FdType::Ipv4Sock | FdType::Ipv6Sock | FdType::Ipv4ServSock | FdType::Ipv6ServSock
        )
    }
}

/// fd table of one process, shared by its threads.
pub type FdTable = FxHashMap<i64, Fd>;

/// `fd.typechar` of an fd type.
pub fn typechar(t: FdType) -> &'static str {
    use FdType::*;
    match t {
        File | FileV2 => "f",
        Directory => "d",
        Ipv4Sock | Ipv4ServSock => "4",
        Ipv6Sock | Ipv6ServSock => "6",
        Fifo => "p",
        UnixSock => "u",
        Event => "e",
        Unsupported => "X",
        Unknown => "o",
        Signalfd => "s",
        Eventpoll => "l",
        Inotify => "i",
        Timerfd => "t",
        Netlink => "n",
        Bpf => "b",
        Userfaultfd => "u",
        IoUring => "r",
        Memfd => "m",
        Pidfd => "P",
    }
}

/// `fd.type` of an fd type (`None` prints `<NA>`).
pub fn type_name(t: FdType) -> Option<&'static str> {
    use FdType::*;
    Some(match t {
        File | FileV2 => "file",
        Directory => "directory",
        Ipv4Sock | Ipv4ServSock => "ipv4",
        Ipv6Sock | Ipv6ServSock => "ipv6",
        Fifo => "pipe",
        UnixSock => "unix",
        Event => "event",
        Signalfd => "signalfd",
        Eventpoll => "eventpoll",
        Inotify => "inotify",
        Timerfd => "timerfd",
        Netlink => "netlink",
        Bpf => "bpf",
        Userfaultfd => "userfaultfd",
        IoUring => "io_uring",
        Memfd => "memfd",
        Pidfd => "pidfd",
        Unknown | Unsupported => return None,
    })
}

/// `fd.l4proto` text.
pub fn l4proto_name(p: u8) -> Option<&'static str> {
    match p {
        l4::TCP => Some("tcp"),
        l4::UDP => Some("udp"),
        l4::ICMP => Some("icmp"),
        l4::RAW => Some("raw"),
        _ => None,
    }
}

/// One-letter protocol suffix used in `evt.arg.fd` (`<4t>`).
pub fn l4proto_char(p: u8) -> &'static str {
    match p {
        l4::TCP => "t",
        l4::UDP => "u",
        l4::ICMP => "i",
        l4::RAW => "r",
        _ => "",
    }
}
