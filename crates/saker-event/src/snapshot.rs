//! Snapshots of existing processes, fds and users, as found in a capture's
//! proclist/fdlist/userlist blocks or by scanning /proc at startup. Sources
//! produce these; the state engine seeds its tables from them.

use std::net::IpAddr;

/// One thread, as known before the event stream starts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcInfo {
    pub tid: i64,
    pub pid: i64,
    pub ptid: i64,
    pub sid: i64,
    pub vpgid: i64,
    pub pgid: i64,
    pub vtid: i64,
    pub vpid: i64,
    pub comm: Vec<u8>,
    /// `argv[0]`.
    pub exe: Vec<u8>,
    pub exepath: Vec<u8>,
    /// Arguments after `argv[0]`.
    pub args: Vec<Vec<u8>>,
    pub env: Vec<Vec<u8>>,
    pub cwd: Vec<u8>,
    pub root: Vec<u8>,
    pub fdlimit: i64,
    /// PPM_CL_* thread flags.
    pub flags: u32,
    pub uid: u32,
    pub gid: u32,
    /// u32::MAX when unset.
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
    /// Process start (clone) time, ns since the epoch; 0 if unknown.
    pub start_ts: u64,
    /// `subsys=path` entries, as in the execve `cgroups` parameter.
    pub cgroups: Vec<Vec<u8>>,
    pub vmsize_kb: u32,
    pub vmrss_kb: u32,
    pub vmswap_kb: u32,
    pub pfmajor: u64,
    pub pfminor: u64,
}

/// scap fd types (values as in the scap format).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FdType {
    Unknown = 0,
    File = 1,
    Directory = 2,
    Ipv4Sock = 3,
    Ipv6Sock = 4,
    Ipv4ServSock = 5,
    Ipv6ServSock = 6,
    Fifo = 7,
    UnixSock = 8,
    Event = 9,
    Unsupported = 10,
    Signalfd = 11,
    Eventpoll = 12,
    Inotify = 13,
    Timerfd = 14,
    Netlink = 15,
    FileV2 = 16,
    Bpf = 17,
    Userfaultfd = 18,
    IoUring = 19,
    Memfd = 20,
    Pidfd = 21,
}

impl FdType {
    pub fn from_u8(v: u8) -> FdType {
        use FdType::*;
        match v {
            0 => Unknown,
            1 => File,
            2 => Directory,
            3 => Ipv4Sock,
            4 => Ipv6Sock,
            5 => Ipv4ServSock,
            6 => Ipv6ServSock,
            7 => Fifo,
            8 => UnixSock,
            9 => Event,
            11 => Signalfd,
            12 => Eventpoll,
            13 => Inotify,
            14 => Timerfd,
            15 => Netlink,
            16 => FileV2,
            17 => Bpf,
            18 => Userfaultfd,
            19 => IoUring,
            20 => Memfd,
            21 => Pidfd,
            _ => Unsupported,
        }
    }
}

/// Socket endpoints of an fd.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SockInfo {
    None,
    /// A connected (or connecting) IP socket: source → destination as the scap tuple has it.
    Ip {
        sip: IpAddr,
        sport: u16,
        dip: IpAddr,
        dport: u16,
        l4proto: u8,
    },
    /// A listening/bound IP socket.
    IpServer {
        ip: IpAddr,
        port: u16,
        l4proto: u8,
    },
    Unix {
        source: u64,
        dest: u64,
    },
}

/// One open fd of a thread, as known before the event stream starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FdInfo {
    pub fd: i64,
    pub ino: u64,
    pub ty: FdType,
    /// PPM_O_* open flags (files).
    pub open_flags: u32,
    pub dev: u32,
    /// File path, unix socket path, or other fd name.
    pub name: Vec<u8>,
    pub sock: SockInfo,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub uid: u32,
    pub gid: u32,
    pub name: Vec<u8>,
    pub homedir: Vec<u8>,
    pub shell: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub gid: u32,
    pub name: Vec<u8>,
}

/// Machine description (scap MI block).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineInfo {
    pub num_cpus: u32,
    pub memory_size_bytes: u64,
    pub max_pid: u64,
    pub hostname: String,
    /// Boot time, ns since the epoch (0 when unknown).
    pub boot_ts_epoch: u64,
    pub flags: u64,
}

/// One network interface address (scap IL block).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IfaceInfo {
    pub name: Vec<u8>,
    pub addr: IpAddr,
    pub netmask: IpAddr,
    pub bcast: IpAddr,
    /// `None` for the "no link speed" entry types.
    pub linkspeed: Option<u64>,
}

/// Everything a source knows before its first event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub hostname: Option<String>,
    pub procs: Vec<ProcInfo>,
    /// `(tid-of-owning-process, fd)` pairs.
    pub fds: Vec<(i64, FdInfo)>,
    pub users: Vec<UserInfo>,
    pub groups: Vec<GroupInfo>,
    pub machine: Option<MachineInfo>,
    pub interfaces: Vec<IfaceInfo>,
}
