//! Event parsing: how each event updates the tables (events spec §2.3).

use saker_event::decode::PPM_AT_FDCWD;
use saker_event::{Event, FdType, SockInfo};

use crate::types::{clflags, oflags, Fd, NulList, Thread};
use crate::{dir_with_slash, paths, Pending, State};

pub(crate) fn int(ev: &Event, name: &str) -> Option<i64> {
    ev.int_by_name(name)
}

fn bytes<'e>(ev: &'e Event, name: &str) -> Option<&'e [u8]> {
    ev.bytes_by_name(name).filter(|b| !b.is_empty())
}

const CLONE_IDS: [u16; 4] = [223, 225, 227, 335];

/// The event type names the state engine parses (the rest only name their thread).
pub const PARSED: &[&str] = &[
    "accept",
    "accept4",
    "bind",
    "bpf",
    "capset",
    "chdir",
    "chroot",
    "clone",
    "clone3",
    "close",
    "close_range",
    "connect",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "fchdir",
    "fcntl",
    "fork",
    "getcwd",
    "inotify_init",
    "inotify_init1",
    "io_uring_setup",
    "memfd_create",
    "open",
    "open_by_handle_at",
    "openat",
    "openat2",
    "pidfd_getfd",
    "pidfd_open",
    "pipe",
    "pipe2",
    "pread",
    "preadv",
    "prlimit",
    "procexit",
    "pwrite",
    "pwritev",
    "read",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmsg",
    "send",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setgid",
    "setns",
    "setregid",
    "setresgid",
    "setresuid",
    "setreuid",
    "setrlimit",
    "setsid",
    "setuid",
    "signalfd",
    "signalfd4",
    "socket",
    "socketpair",
    "timerfd_create",
    "unshare",
    "userfaultfd",
    "vfork",
    "write",
    "writev",
];

/// Whether the parser handles events of type `et` (precomputed per id).
/// No such parameter.
const NONE: u8 = u8::MAX;

/// Parameter indexes of an open-family exit event.
#[derive(Clone, Copy)]
struct OpenIdx {
    name: u8,
    dirfd: u8,
    flags: u8,
    dev: u8,
    ino: u8,
    creat: bool,
}

#[derive(Clone, Copy)]
enum OpenParams {
    Open(OpenIdx),
    /// Index of the `fd` parameter.
    Close(u8),
}

/// Per event type: the open family and close, with their parameter indexes (a by-name
/// lookup per parameter per event cost more than the parse).
fn open_params(et: u16) -> Option<OpenParams> {
    static T: std::sync::OnceLock<Vec<Option<OpenParams>>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        (0..=saker_event::table::EVENT_MAX)
            .map(|i| {
                let inf = saker_event::info(i)?;
                if inf.dir != saker_event::table::Dir::Exit || !PARSED.contains(&inf.name) {
                    return None; // Enter events are not parsed.
                }
                let idx = |n: &str| {
                    inf.param_index(n)
                        .map_or(Some(NONE), |i| u8::try_from(i).ok())
                };
                match inf.name {
                    "open" | "openat" | "openat2" | "creat" | "open_by_handle_at" => {
                        let name = match inf.param_index("name") {
                            Some(i) => u8::try_from(i).ok()?,
                            None => idx("path")?,
                        };
                        Some(OpenParams::Open(OpenIdx {
                            name,
                            dirfd: idx("dirfd")?,
                            flags: idx("flags")?,
                            dev: idx("dev")?,
                            ino: idx("ino")?,
                            creat: inf.name == "creat",
                        }))
                    }
                    "close" => Some(OpenParams::Close(
                        u8::try_from(inf.param_index("fd")?).ok()?,
                    )),
                    _ => None,
                }
            })
            .collect()
    })
    .get(et as usize)
    .copied()
    .flatten()
}

fn parsed(et: u16) -> bool {
    static T: std::sync::OnceLock<Vec<bool>> = std::sync::OnceLock::new();
    T.get_or_init(|| {
        (0..=saker_event::table::EVENT_MAX)
            .map(|i| saker_event::info(i).is_some_and(|inf| PARSED.contains(&inf.name)))
            .collect()
    })
    .get(et as usize)
    .copied()
    .unwrap_or(false)
}

impl State {
    /// Finds the event's thread, creating it on a miss (except for the events
    /// whose parsers create it themselves).
    fn ensure_thread(&mut self, tid: i64) {
        if self.threads.contains_key(&tid) {
            return;
        }
        self.counters.failed_thread_lookups += 1;
        let t = if self.cfg.proc_lookup {
            crate::procfs::read_thread(&self.cfg.proc_root, tid)
                .unwrap_or_else(|| Thread::stub(tid))
        } else {
            Thread::stub(tid)
        };
        self.insert_thread(t);
    }

    pub(crate) fn pid_of(&self, tid: i64) -> i64 {
        self.threads.get(&tid).map_or(tid, |t| t.pid)
    }

    pub(crate) fn add_fd(&mut self, tid: i64, num: i64, fd: Fd) {
        if num < 0 {
            return;
        }
        let pid = self.pid_of(tid);
        self.insert_fd(pid, num, fd);
    }

    pub(crate) fn fd_mut(&mut self, tid: i64, num: i64) -> Option<&mut Fd> {
        let pid = self.pid_of(tid);
        self.fdtables.get_mut(&pid)?.get_mut(&num)
    }

    /// Directory a relative path of `ev` is resolved against: the dirfd's path
    /// or the thread's cwd.
    pub(crate) fn base_dir(&self, tid: i64, dirfd: Option<i64>) -> Vec<u8> {
        let cwd = || {
            self.threads
                .get(&tid)
                .map_or_else(|| b"/".to_vec(), |t| t.cwd.clone())
        };
        match dirfd {
            Some(d) if d != PPM_AT_FDCWD && d >= 0 => {
                match self.fds_of(tid).and_then(|t| t.get(&d)) {
                    Some(f) => f.name.clone(),
                    None => cwd(),
                }
            }
            _ => cwd(),
        }
    }

    pub(crate) fn parse(&mut self, ev: &Event) {
        let et = ev.etype;
        let Some(info) = ev.info() else {
            return;
        };
        let name = info.name;
        let is_clone = CLONE_IDS.contains(&et)
            || (name == "clone" || name == "fork" || name == "vfork" || name == "clone3")
                && ev.is_exit();
        if !is_clone && et != 186 && name != "switch" && ev.tid > 0 && !info.is_internal() {
            self.ensure_thread(ev.tid);
        }
        if info.category & saker_event::table::EC_METAEVENT != 0 {
            self.parse_meta(ev, name);
            return;
        }
        if (ev.is_enter() && et != 186) || !parsed(et) {
            return;
        }
        let res = ev.res().unwrap_or(0);
        // The two commonest events skip the by-name dispatch below.
        match open_params(et) {
            Some(OpenParams::Close(fd_idx)) => {
                if res >= 0 {
                    if let Some(fd) = ev.int_at(fd_idx as usize) {
                        let pid = self.pid_of(ev.tid);
                        self.pending.push(Pending::CloseFd { pid, fd });
                    }
                }
                return;
            }
            Some(OpenParams::Open(op)) => {
                self.parse_open_fast(ev, res, op);
                return;
            }
            None => {}
        }
        match name {
            "read" | "write" | "pread" | "pwrite" | "readv" | "writev" | "preadv" | "pwritev"
            | "sendto" | "recvfrom" | "sendmsg" | "recvmsg" | "send" | "recv" | "sendmmsg"
            | "recvmmsg"
                if res >= 0 =>
            {
                self.parse_io_tuple(ev)
            }
            "clone" | "fork" | "vfork" | "clone3" => self.parse_clone(ev, res),
            "execve" | "execveat" if res >= 0 => self.parse_execve(ev),
            "procexit" => {
                if let Some(t) = self.threads.get_mut(&ev.tid) {
                    t.reaper = int(ev, "reaper_tid").unwrap_or(0);
                }
                self.pending.push(Pending::RemoveThread { tid: ev.tid });
            }
            "open" | "openat" | "openat2" | "creat" | "open_by_handle_at" => {
                self.parse_open(ev, res)
            }
            "socket" if res >= 0 => self.parse_socket(ev, res),
            "bind" if res >= 0 => self.parse_bind(ev),
            "connect" if res >= 0 || res == -115 => self.parse_connect(ev),
            "accept" | "accept4" if res >= 0 => self.parse_accept(ev, res),
            "close" if res >= 0 => {
                if let Some(fd) = int(ev, "fd") {
                    let pid = self.pid_of(ev.tid);
                    self.pending.push(Pending::CloseFd { pid, fd });
                }
            }
            "close_range" if res >= 0 => self.parse_close_range(ev),
            "dup" | "dup2" | "dup3" if res >= 0 => self.parse_dup(ev, res),
            "fcntl" if res >= 0 => self.parse_fcntl(ev, res),
            "pipe" | "pipe2" if res >= 0 => {
                let ino = int(ev, "ino").unwrap_or(0) as u64;
                let fl = int(ev, "flags").unwrap_or(0) as u32;
                for p in ["fd1", "fd2"] {
                    if let Some(n) = int(ev, p) {
                        let mut f = Fd::new(FdType::Fifo, Vec::new());
                        f.ino = ino;
                        f.cloexec = fl & oflags::CLOEXEC != 0;
                        self.add_fd(ev.tid, n, f);
                    }
                }
            }
            "socketpair" if res >= 0 => {
                let (src, peer) = (
                    int(ev, "source").unwrap_or(0) as u64,
                    int(ev, "peer").unwrap_or(0) as u64,
                );
                for (p, s, d) in [("fd1", src, peer), ("fd2", peer, src)] {
                    if let Some(n) = int(ev, p) {
                        let mut f = Fd::new(FdType::UnixSock, Vec::new());
                        f.sock = SockInfo::Unix { source: s, dest: d };
                        f.name = crate::render::tuple_name(&f.sock);
                        self.add_fd(ev.tid, n, f);
                    }
                }
            }
            "eventfd" | "eventfd2" => self.simple_fd(ev, res, FdType::Event),
            "signalfd" | "signalfd4" => self.simple_fd(ev, res, FdType::Signalfd),
            "timerfd_create" => self.simple_fd(ev, res, FdType::Timerfd),
            "inotify_init" | "inotify_init1" => self.simple_fd(ev, res, FdType::Inotify),
            "epoll_create" | "epoll_create1" => self.simple_fd(ev, res, FdType::Eventpoll),
            "bpf" => self.simple_fd(ev, res, FdType::Bpf),
            "userfaultfd" => self.simple_fd(ev, res, FdType::Userfaultfd),
            "io_uring_setup" => self.simple_fd(ev, res, FdType::IoUring),
            "memfd_create" if res >= 0 => {
                let mut n = b"memfd:".to_vec();
                n.extend_from_slice(bytes(ev, "name").unwrap_or_default());
                self.add_fd(ev.tid, res, Fd::new(FdType::Memfd, n));
            }
            "pidfd_open" if res >= 0 => {
                let pid = int(ev, "pid").unwrap_or(0);
                self.add_fd(
                    ev.tid,
                    res,
                    Fd::new(FdType::Pidfd, format!("pidfd:[{pid}]").into_bytes()),
                );
            }
            "pidfd_getfd" if res >= 0 => {
                let target = int(ev, "target_fd").unwrap_or(-1);
                let pidfd = int(ev, "pid_fd").unwrap_or(-1);
                let src_pid = self.fd(ev.tid, pidfd).and_then(|f| {
                    let n = f.name.strip_prefix(b"pidfd:[")?.strip_suffix(b"]")?;
                    std::str::from_utf8(n).ok()?.parse::<i64>().ok()
                });
                if let Some(f) = src_pid.and_then(|p| self.fd(p, target)).cloned() {
                    self.add_fd(ev.tid, res, f);
                }
            }
            "chdir" if res >= 0 => {
                if let Some(p) = bytes(ev, "path") {
                    let base = self.base_dir(ev.tid, None);
                    let cwd = dir_with_slash(&paths::resolve(&base, p));
                    self.set_cwd(ev.tid, cwd);
                }
            }
            "fchdir" if res >= 0 => {
                if let Some(n) = int(ev, "fd")
                    .and_then(|fd| self.fd(ev.tid, fd))
                    .map(|f| f.name.clone())
                {
                    self.set_cwd(ev.tid, dir_with_slash(&n));
                }
            }
            "getcwd" if res >= 0 => {
                if let Some(p) = bytes(ev, "path") {
                    self.set_cwd(ev.tid, dir_with_slash(p));
                }
            }
            "chroot" if res >= 0 => {
                if let Some(p) = bytes(ev, "path") {
                    let base = self.base_dir(ev.tid, None);
                    let r = paths::resolve(&base, p);
                    if let Some(t) = self.threads.get_mut(&ev.tid) {
                        t.root = r;
                    }
                }
            }
            "setuid" | "setresuid" | "setreuid" if res == 0 => {
                let v = if name == "setuid" {
                    int(ev, "uid")
                } else {
                    int(ev, "euid")
                };
                if let (Some(v), Some(t)) = (v, self.threads.get_mut(&ev.tid)) {
                    t.uid = v as u32;
                }
            }
            "setgid" | "setresgid" | "setregid" if res == 0 => {
                let v = if name == "setgid" {
                    int(ev, "gid")
                } else {
                    int(ev, "egid")
                };
                if let (Some(v), Some(t)) = (v, self.threads.get_mut(&ev.tid)) {
                    t.gid = v as u32;
                }
            }
            "setsid" if res >= 0 => {
                if let Some(t) = self.threads.get_mut(&ev.tid) {
                    t.sid = res;
                }
            }
            "capset" if res == 0 => {
                if let Some(t) = self.threads.get_mut(&ev.tid) {
                    t.cap_inheritable = int(ev, "cap_inheritable").unwrap_or(0) as u64;
                    t.cap_permitted = int(ev, "cap_permitted").unwrap_or(0) as u64;
                    t.cap_effective = int(ev, "cap_effective").unwrap_or(0) as u64;
                }
            }
            "unshare" | "setns" if res == 0 => {
                let fl = int(ev, "flags").or_else(|| int(ev, "nstype")).unwrap_or(0) as u32;
                if fl & clflags::CLONE_NEWUSER != 0 {
                    if let Some(t) = self.threads.get_mut(&ev.tid) {
                        let all = (1u64 << 41) - 1;
                        t.cap_inheritable = all;
                        t.cap_permitted = all;
                        t.cap_effective = all;
                    }
                }
            }
            // RLIMIT_NOFILE is PPM resource 7.
            "prlimit" | "setrlimit" if res == 0 && int(ev, "resource") == Some(7) => {
                let cur = int(ev, "newcur").or_else(|| int(ev, "cur")).unwrap_or(-1);
                let target = match int(ev, "pid") {
                    Some(p) if p > 0 => p,
                    _ => ev.tid,
                };
                if cur > 0 {
                    if let Some(t) = self.threads.get_mut(&target) {
                        t.fdlimit = cur;
                    }
                }
            }
            _ => {}
        }
    }

    /// Container and user/group meta events (capture files, plugins).
    fn parse_meta(&mut self, ev: &Event, name: &str) {
        match name {
            "container" => {
                if let Some(j) = bytes(ev, "json") {
                    if let Some((id, m)) = crate::container::meta_from_json(j) {
                        self.containers.insert(id.into_bytes(), m);
                    }
                } else if let Some(id) = bytes(ev, "id") {
                    let m = crate::ContainerMeta {
                        full_id: String::from_utf8_lossy(id).into_owned(),
                        name: String::from_utf8_lossy(bytes(ev, "name").unwrap_or_default())
                            .into_owned(),
                        image: String::from_utf8_lossy(bytes(ev, "image").unwrap_or_default())
                            .into_owned(),
                        ..Default::default()
                    };
                    self.containers.insert(id.to_vec(), m);
                }
            }
            "asyncevent" => match bytes(ev, "name") {
                Some(b"container") => {
                    if let Some((id, m)) = ev
                        .bytes_by_name("data")
                        .and_then(crate::container::meta_from_json)
                    {
                        self.containers.insert(id.into_bytes(), m);
                    }
                }
                Some(b"container_removed") => {
                    if let Some((id, _)) = ev
                        .bytes_by_name("data")
                        .and_then(crate::container::meta_from_json)
                    {
                        self.containers.remove(id.as_bytes());
                    }
                }
                _ => {}
            },
            "useradded" => {
                if let (Some(uid), Some(gid)) = (int(ev, "uid"), int(ev, "gid")) {
                    self.users.add_user(saker_event::UserInfo {
                        uid: uid as u32,
                        gid: gid as u32,
                        name: bytes(ev, "name").unwrap_or_default().to_vec(),
                        homedir: bytes(ev, "home").unwrap_or_default().to_vec(),
                        shell: bytes(ev, "shell").unwrap_or_default().to_vec(),
                    });
                }
            }
            "groupadded" => {
                if let Some(gid) = int(ev, "gid") {
                    self.users.add_group(saker_event::GroupInfo {
                        gid: gid as u32,
                        name: bytes(ev, "name").unwrap_or_default().to_vec(),
                    });
                }
            }
            _ => {}
        }
    }

    fn set_cwd(&mut self, tid: i64, cwd: Vec<u8>) {
        // The cwd belongs to the process: update every thread that shares it.
        let pid = self.pid_of(tid);
        for t in self.threads.values_mut() {
            if t.pid == pid {
                t.cwd = cwd.clone();
            }
        }
    }

    fn simple_fd(&mut self, ev: &Event, res: i64, ty: FdType) {
        if res < 0 {
            return;
        }
        let fd = match ev.info().and_then(|i| i.params.first()) {
            Some(p) if p.name == "res" || p.name == "fd" => res,
            _ => return,
        };
        let name: &[u8] = match ty {
            FdType::Event => b"[eventfd]",
            FdType::Signalfd => b"[signalfd]",
            FdType::Timerfd => b"[timerfd]",
            FdType::Inotify => b"inotify",
            FdType::Eventpoll => b"[eventpoll]",
            FdType::Bpf => b"bpf",
            FdType::Userfaultfd => b"[userfaultfd]",
            FdType::IoUring => b"[io_uring]",
            _ => b"",
        };
        let mut f = Fd::new(ty, name.to_vec());
        f.open_flags = int(ev, "flags").unwrap_or(0) as u32;
        self.add_fd(ev.tid, fd, f);
    }

    fn parse_clone(&mut self, ev: &Event, res: i64) {
        if res < 0 {
            return;
        }
        let flags = int(ev, "flags").unwrap_or(0) as u32;
        let p_pid = int(ev, "pid").unwrap_or(ev.tid);
        let p_ptid = int(ev, "ptid").unwrap_or(-1);
        let vtid = int(ev, "vtid");
        let vpid = int(ev, "vpid");
        let from_params = |tid: i64| -> Thread {
            let mut t = Thread::stub(tid);
            t.stub = false;
            t.pid = p_pid;
            t.ptid = p_ptid;
            t.vtid = vtid.unwrap_or(tid);
            t.vpid = vpid.unwrap_or(p_pid);
            t.exe = bytes(ev, "exe").unwrap_or_default().to_vec();
            t.args = NulList::from_raw(ev.bytes_by_name("args").unwrap_or_default());
            t.comm = bytes(ev, "comm").unwrap_or_default().to_vec();
            if let Some(c) = bytes(ev, "cwd") {
                t.cwd = dir_with_slash(c);
            }
            t.fdlimit = int(ev, "fdlimit").unwrap_or(0);
            t.pfmajor = int(ev, "pgft_maj").unwrap_or(0) as u64;
            t.pfminor = int(ev, "pgft_min").unwrap_or(0) as u64;
            t.vmsize_kb = int(ev, "vm_size").unwrap_or(0) as u32;
            t.vmrss_kb = int(ev, "vm_rss").unwrap_or(0) as u32;
            t.vmswap_kb = int(ev, "vm_swap").unwrap_or(0) as u32;
            t.cgroups = NulList::from_raw(ev.bytes_by_name("cgroups").unwrap_or_default());
            t.container_id = paths::container_id(&t.cgroups);
            t.uid = int(ev, "uid").map_or(u32::MAX, |v| v as u32);
            t.gid = int(ev, "gid").map_or(u32::MAX, |v| v as u32);
            t.flags = flags;
            t.pidns_init_start_ts = int(ev, "pidns_init_start_ts").unwrap_or(0) as u64;
            t.clone_ts = ev.ts;
            t
        };
        if res == 0 {
            // Child side: the event's own thread is the child.
            let mut child = from_params(ev.tid);
            let parent_tid = if flags & clflags::CLONE_THREAD != 0 {
                self.threads
                    .values()
                    .find(|t| t.pid == p_pid && t.tid == p_pid)
                    .map(|t| t.tid)
            } else {
                Some(p_ptid)
            };
            if let Some(parent) = parent_tid.and_then(|p| self.threads.get(&p)) {
                inherit(&mut child, parent);
            }
            if let Some(old) = self.threads.get(&ev.tid) {
                if !old.stub {
                    child.clone_ts = old.clone_ts;
                }
            }
            if flags & clflags::CLONE_THREAD == 0 && !self.fdtables.contains_key(&child.pid) {
                if let Some(tab) = self.fdtables.get(&self.pid_of(p_ptid)).cloned() {
                    self.counters.fds_added += tab.len() as u64;
                    self.fdtables.insert(child.pid, tab);
                }
            }
            self.insert_thread(child);
            return;
        }
        // Caller side.
        let caller_valid = self.threads.get(&ev.tid).is_some_and(|t| !t.stub);
        if !caller_valid {
            let mut t = from_params(ev.tid);
            t.clone_ts = 0;
            if let Some(old) = self.threads.get(&ev.tid) {
                t.cwd = old.cwd.clone();
            }
            self.insert_thread(t);
        }
        let in_ns = flags & (clflags::CHILD_IN_PIDNS | clflags::CLONE_NEWPID) != 0
            || vtid.is_some_and(|v| v != ev.tid);
        let vfork =
            ev.info().is_some_and(|i| i.name == "vfork") || flags & clflags::CLONE_VFORK != 0;
        if in_ns || vfork || self.threads.contains_key(&res) {
            return;
        }
        let Some(caller) = self.threads.get(&ev.tid).cloned() else {
            return;
        };
        let mut child = from_params(res);
        if flags & clflags::CLONE_THREAD != 0 {
            child.pid = caller.pid;
            child.ptid = caller.ptid;
        } else {
            child.pid = res;
            child.ptid = caller.tid;
        }
        child.vtid = res;
        child.vpid = child.pid;
        inherit(&mut child, &caller);
        if flags & clflags::CLONE_THREAD == 0 {
            if let Some(tab) = self.fdtables.get(&caller.pid).cloned() {
                self.counters.fds_added += tab.len() as u64;
                self.fdtables.insert(res, tab);
            }
        }
        self.insert_thread(child);
    }

    fn parse_execve(&mut self, ev: &Event) {
        let tid = ev.tid;
        let Some(t) = self.threads.get_mut(&tid) else {
            return;
        };
        t.stub = false;
        if let Some(e) = bytes(ev, "exe") {
            t.exe = e.to_vec();
        }
        // set_raw reuses the buffers the thread already has.
        t.args.set_raw(ev.bytes_by_name("args").unwrap_or_default());
        match bytes(ev, "comm") {
            Some(c) => t.comm = c.to_vec(),
            None => t.comm = paths::basename(&t.exe).to_vec(),
        }
        if let Some(p) = int(ev, "pid") {
            t.pid = p;
        }
        if let Some(p) = int(ev, "ptid") {
            if t.ptid <= 0 {
                t.ptid = p;
            }
        }
        // The cwd is inherited across exec: libsinsp ignores the `cwd` parameter here.
        if let Some(v) = int(ev, "fdlimit") {
            t.fdlimit = v;
        }
        t.pfmajor = int(ev, "pgft_maj").unwrap_or(t.pfmajor as i64) as u64;
        t.pfminor = int(ev, "pgft_min").unwrap_or(t.pfminor as i64) as u64;
        t.vmsize_kb = int(ev, "vm_size").unwrap_or(0) as u32;
        t.vmrss_kb = int(ev, "vm_rss").unwrap_or(0) as u32;
        t.vmswap_kb = int(ev, "vm_swap").unwrap_or(0) as u32;
        if let Some(e) = ev.bytes_by_name("env") {
            t.env.set_raw(e);
        }
        if let Some(c) = ev.bytes_by_name("cgroups") {
            t.cgroups.set_raw(c);
            t.container_id = paths::container_id(&t.cgroups);
        }
        if let Some(v) = int(ev, "tty") {
            t.tty = v as u32;
        }
        if let Some(v) = int(ev, "vpgid") {
            t.vpgid = v;
        }
        if let Some(v) = int(ev, "pgid") {
            t.pgid = v;
        }
        if let Some(v) = int(ev, "loginuid") {
            t.loginuid = v as u32;
        }
        if let Some(f) = int(ev, "flags") {
            let f = f as u32;
            t.exe_writable = f & 1 != 0;
            t.exe_upper_layer = f & 2 != 0;
            t.exe_from_memfd = f & 4 != 0;
            t.exe_lower_layer = f & 8 != 0;
        }
        if let Some(v) = int(ev, "cap_inheritable") {
            t.cap_inheritable = v as u64;
            t.cap_permitted = int(ev, "cap_permitted").unwrap_or(0) as u64;
            t.cap_effective = int(ev, "cap_effective").unwrap_or(0) as u64;
        }
        if let Some(v) = int(ev, "exe_ino") {
            t.exe_ino = v as u64;
            t.exe_ino_ctime = int(ev, "exe_ino_ctime").unwrap_or(0) as u64;
            t.exe_ino_mtime = int(ev, "exe_ino_mtime").unwrap_or(0) as u64;
        }
        if let Some(v) = int(ev, "uid") {
            t.uid = v as u32;
        }
        if let Some(v) = int(ev, "gid") {
            t.gid = v as u32;
        }
        t.exepath = match bytes(ev, "trusted_exepath") {
            Some(p) => p.to_vec(),
            None => match bytes(ev, "filename") {
                Some(f) => paths::resolve(&t.cwd, f),
                // argv[0] is only a path when it has a slash; a bare name came from $PATH.
                None if t.exe.starts_with(b"/") => t.exe.clone(),
                None => Vec::new(),
            },
        };
        t.lastexec_ts = ev.ts;
        t.flags &= !(clflags::CLONE_THREAD | clflags::CLONE_VFORK);
        let pid = t.pid;
        // Close-on-exec fds do not survive; other threads of the group are gone.
        if let Some(tab) = self.fdtables.get_mut(&pid) {
            let before = tab.len();
            tab.retain(|_, f| !f.cloexec);
            self.counters.fds_removed += (before - tab.len()) as u64;
        }
        let others: Vec<i64> = self
            .threads
            .values()
            .filter(|o| o.pid == pid && o.tid != tid)
            .map(|o| o.tid)
            .collect();
        for o in others {
            if self.threads.remove(&o).is_some() {
                self.counters.threads_removed += 1;
            }
        }
    }

    /// [`State::parse_open`] with the parameter indexes of the event type.
    fn parse_open_fast(&mut self, ev: &Event, res: i64, op: OpenIdx) {
        if res < 0 {
            return;
        }
        let int_at = |i: u8| (i != NONE).then(|| ev.int_at(i as usize)).flatten();
        let raw = if op.name != NONE {
            ev.param(op.name as usize)
                .map(saker_event::decode::trim_nul)
                .unwrap_or_default()
        } else {
            &[]
        };
        let dirfd = int_at(op.dirfd);
        let name = if raw.starts_with(b"/") && paths::is_normal_abs(raw) {
            raw.to_vec()
        } else {
            paths::resolve(&self.base_dir(ev.tid, dirfd), raw)
        };
        let mut flags = int_at(op.flags).unwrap_or(0) as u32;
        if op.creat {
            flags |= oflags::CREAT | oflags::WRONLY;
        }
        let ty = if flags & oflags::DIRECTORY != 0 {
            FdType::Directory
        } else {
            FdType::FileV2
        };
        // The raw name is kept only when it differs (`fd.nameraw` falls back to the name).
        let nameraw = if raw == name.as_slice() {
            Vec::new()
        } else {
            raw.to_vec()
        };
        let mut f = Fd::new(ty, name);
        f.nameraw = nameraw;
        f.open_flags = flags;
        f.dev = int_at(op.dev).unwrap_or(0) as u32;
        f.ino = int_at(op.ino).unwrap_or(0) as u64;
        f.cloexec = flags & oflags::CLOEXEC != 0;
        self.add_fd(ev.tid, res, f);
    }

    fn parse_open(&mut self, ev: &Event, res: i64) {
        if res < 0 {
            return;
        }
        let raw = ev
            .bytes_by_name("name")
            .or_else(|| ev.bytes_by_name("path"))
            .unwrap_or_default();
        let dirfd = int(ev, "dirfd");
        let name = if raw.starts_with(b"/") && paths::is_normal_abs(raw) {
            raw.to_vec()
        } else {
            paths::resolve(&self.base_dir(ev.tid, dirfd), raw)
        };
        let mut flags = int(ev, "flags").unwrap_or(0) as u32;
        if ev.info().is_some_and(|i| i.name == "creat") {
            flags |= oflags::CREAT | oflags::WRONLY;
        }
        let ty = if flags & oflags::DIRECTORY != 0 {
            FdType::Directory
        } else {
            FdType::FileV2
        };
        let mut f = Fd::new(ty, name);
        f.nameraw = raw.to_vec();
        f.open_flags = flags;
        f.dev = int(ev, "dev").unwrap_or(0) as u32;
        f.ino = int(ev, "ino").unwrap_or(0) as u64;
        f.cloexec = flags & oflags::CLOEXEC != 0;
        self.add_fd(ev.tid, res, f);
    }
}

/// Copies what a new thread inherits from its creator.
fn inherit(child: &mut Thread, parent: &Thread) {
    child.cwd = parent.cwd.clone();
    child.env = parent.env.clone();
    child.exepath = parent.exepath.clone();
    child.exe_writable = parent.exe_writable;
    child.exe_upper_layer = parent.exe_upper_layer;
    child.exe_lower_layer = parent.exe_lower_layer;
    child.exe_from_memfd = parent.exe_from_memfd;
    child.root = parent.root.clone();
    child.sid = parent.sid;
    child.vpgid = parent.vpgid;
    child.pgid = parent.pgid;
    child.tty = parent.tty;
    child.loginuid = parent.loginuid;
    child.cap_inheritable = parent.cap_inheritable;
    child.cap_permitted = parent.cap_permitted;
    child.cap_effective = parent.cap_effective;
    child.exe_ino = parent.exe_ino;
    child.exe_ino_ctime = parent.exe_ino_ctime;
    child.exe_ino_mtime = parent.exe_ino_mtime;
    if child.cgroups.is_empty() {
        child.cgroups = parent.cgroups.clone();
        child.container_id = parent.container_id.clone();
    }
    if child.uid == u32::MAX {
        child.uid = parent.uid;
        child.gid = parent.gid;
    }
}
