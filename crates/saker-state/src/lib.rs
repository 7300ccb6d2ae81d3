//! saker-state: the process/fd/user state engine and field extraction.
//!
//! Per event the order is libsinsp's: parse the event into the tables, let
//! rules look at it, then apply deferred removals (closed fds, exited
//! threads), so that a `close` or `procexit` event still sees what it
//! removes:
//!
//! ```text
//! let ctx = state.process(&ev);   // updates the tables, returns a view
//! ruleset.evaluate(&ctx);         // ctx: saker_fields::EventView
//! state.finish();                 // deferred removals
//! ```

use std::path::PathBuf;

use rustc_hash::FxHashMap;
use saker_event::{Event, FdInfo, FdType, Snapshot, SockInfo};

mod container;
mod container_json;
mod extract;
mod extract_evt;
mod extract_fd;
mod extract_proc;
mod nul_list;
mod parse;
mod parse_net;
pub mod paths;
mod procfs;
mod render;
pub mod types;
pub mod users;

pub use container::{meta_from_json, ContainerMeta, Mount};
pub use container_json::meta_to_json;
pub use extract::EventCtx;
pub use parse::PARSED as PARSED_EVENTS;
pub use types::{Fd, FdTable, NulList, Thread};
pub use users::{load_host_users, Users};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("reading {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Limits and lookup policy.
#[derive(Debug, Clone)]
pub struct Config {
    /// Threads beyond this many are not added (counted in `Counters::threads_dropped`).
    pub max_threads: usize,
    /// fds per process beyond this many are not added.
    pub max_fds_per_process: usize,
    /// On a thread-table miss, read `<proc_root>/<tid>` (live mode only).
    pub proc_lookup: bool,
    pub proc_root: PathBuf,
    /// Create a UDP socket fd when `send*` uses an fd missing from the table
    /// (current libsinsp). Off by default, matching sysdig 0.29.3 replays.
    pub infer_udp: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            max_threads: 262_144,
            max_fds_per_process: 65_536,
            proc_lookup: false,
            proc_root: PathBuf::from("/proc"),
            infer_udp: false,
        }
    }
}

/// Counters for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub threads: u64,
    pub fds: u64,
    pub threads_added: u64,
    pub threads_removed: u64,
    pub threads_dropped: u64,
    pub fds_added: u64,
    pub fds_removed: u64,
    pub fds_dropped: u64,
    /// Thread-table misses (a stub or a /proc entry was created).
    pub failed_thread_lookups: u64,
    /// Events whose fd was not in the table.
    pub failed_fd_lookups: u64,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Pending {
    CloseFd { pid: i64, fd: i64 },
    RemoveThread { tid: i64 },
}

/// The state engine.
#[derive(Debug, Default)]
pub struct State {
    pub(crate) cfg: Config,
    pub(crate) threads: FxHashMap<i64, Thread>,
    /// fd tables keyed by process id (threads of a process share one).
    pub(crate) fdtables: FxHashMap<i64, FdTable>,
    pub(crate) users: Users,
    pub(crate) containers: FxHashMap<Vec<u8>, ContainerMeta>,
    pub(crate) hostname: Vec<u8>,
    pub(crate) counters: Counters,
    pub(crate) first_ts: u64,
    /// Timestamp of the previous event (for `evt.deltatime`).
    pub(crate) prev_ts: u64,
    pub(crate) last_ts: u64,
    pub(crate) pending: Vec<Pending>,
    pub(crate) name_changed: bool,
}

impl State {
    pub fn new(cfg: Config) -> State {
        State {
            cfg,
            ..State::default()
        }
    }

    /// Seeds the tables from a capture's (or /proc scan's) snapshot.
    pub fn seed(&mut self, snap: &Snapshot) {
        if let Some(h) = &snap.hostname {
            self.hostname = h.clone().into_bytes();
        } else if let Some(m) = &snap.machine {
            self.hostname = m.hostname.clone().into_bytes();
        }
        for p in &snap.procs {
            let mut t = Thread {
                tid: p.tid,
                pid: p.pid,
                ptid: p.ptid,
                sid: p.sid,
                vpgid: p.vpgid,
                pgid: p.pgid,
                vtid: p.vtid,
                vpid: p.vpid,
                comm: p.comm.clone(),
                exe: p.exe.clone(),
                exepath: p.exepath.clone(),
                args: p.args.iter().collect(),
                env: p.env.iter().collect(),
                cwd: dir_with_slash(&p.cwd),
                root: p.root.clone(),
                fdlimit: p.fdlimit,
                flags: p.flags,
                uid: p.uid,
                gid: p.gid,
                loginuid: p.loginuid,
                tty: p.tty,
                cap_inheritable: p.cap_inheritable,
                cap_permitted: p.cap_permitted,
                cap_effective: p.cap_effective,
                exe_writable: p.exe_writable,
                exe_upper_layer: p.exe_upper_layer,
                exe_lower_layer: p.exe_lower_layer,
                exe_from_memfd: p.exe_from_memfd,
                exe_ino: p.exe_ino,
                exe_ino_ctime: p.exe_ino_ctime,
                exe_ino_mtime: p.exe_ino_mtime,
                pidns_init_start_ts: p.pidns_init_start_ts,
                clone_ts: p.start_ts,
                cgroups: p.cgroups.iter().collect(),
                vmsize_kb: p.vmsize_kb,
                vmrss_kb: p.vmrss_kb,
                vmswap_kb: p.vmswap_kb,
                pfmajor: p.pfmajor,
                pfminor: p.pfminor,
                ..Thread::default()
            };
            t.container_id = paths::container_id(&t.cgroups);
            self.insert_thread(t);
        }
        for (tid, f) in &snap.fds {
            let pid = self.threads.get(tid).map_or(*tid, |t| t.pid);
            let fd = fd_from_snapshot(f);
            self.insert_fd(pid, f.fd, fd);
        }
        for u in &snap.users {
            self.users.add_user(u.clone());
        }
        for g in &snap.groups {
            self.users.add_group(g.clone());
        }
    }

    /// Adds users and groups (e.g. from [`load_host_users`]).
    pub fn add_users(
        &mut self,
        users: Vec<saker_event::UserInfo>,
        groups: Vec<saker_event::GroupInfo>,
    ) {
        users.into_iter().for_each(|u| self.users.add_user(u));
        groups.into_iter().for_each(|g| self.users.add_group(g));
    }

    pub fn set_hostname(&mut self, h: &str) {
        self.hostname = h.as_bytes().to_vec();
    }

    /// Stores metadata for a container id (full or 12-character form).
    pub fn set_container_meta(&mut self, id: &[u8], meta: ContainerMeta) {
        self.containers.insert(id.to_vec(), meta);
    }

    pub fn remove_container_meta(&mut self, id: &[u8]) {
        self.containers.remove(id);
    }

    /// Parses `ev` into the tables and returns a view for rule evaluation.
    /// Call [`State::finish`] after the view is no longer needed.
    pub fn process<'a>(&'a mut self, ev: &'a Event) -> EventCtx<'a> {
        self.apply_pending();
        if self.first_ts == 0 {
            self.first_ts = ev.ts;
        }
        self.prev_ts = if self.last_ts == 0 {
            ev.ts
        } else {
            self.last_ts
        };
        self.last_ts = ev.ts;
        self.name_changed = false;
        self.parse(ev);
        EventCtx::new(self, ev)
    }

    /// A view of `ev` without parsing it (state is left unchanged).
    pub fn view<'a>(&'a self, ev: &'a Event) -> EventCtx<'a> {
        EventCtx::new(self, ev)
    }

    /// Applies the removals deferred by the last [`State::process`].
    pub fn finish(&mut self) {
        self.apply_pending();
    }

    fn apply_pending(&mut self) {
        let pending = std::mem::take(&mut self.pending);
        for p in &pending {
            match *p {
                Pending::CloseFd { pid, fd } => self.remove_fd(pid, fd),
                Pending::RemoveThread { tid } => self.remove_thread(tid),
            }
        }
        self.pending = pending;
        self.pending.clear();
    }

    pub fn counters(&self) -> Counters {
        let mut c = self.counters;
        c.threads = self.threads.len() as u64;
        c.fds = self.fdtables.values().map(|t| t.len() as u64).sum();
        c
    }

    pub fn thread(&self, tid: i64) -> Option<&Thread> {
        self.threads.get(&tid)
    }

    /// fd table of the process `tid` belongs to.
    pub fn fds_of(&self, tid: i64) -> Option<&FdTable> {
        let pid = self.threads.get(&tid).map_or(tid, |t| t.pid);
        self.fdtables.get(&pid)
    }

    pub fn fd(&self, tid: i64, fd: i64) -> Option<&Fd> {
        self.fds_of(tid)?.get(&fd)
    }

    pub fn users(&self) -> &Users {
        &self.users
    }

    pub fn container_meta(&self, id: &[u8]) -> Option<&ContainerMeta> {
        self.containers.get(id)
    }

    /// A container.* / k8s.* field of container `id` (full id) at time `ts`, from its metadata
    /// only: alerts held while a container's metadata was pending are rendered again with it.
    pub fn container_field<'a>(
        &'a self,
        id: &'a [u8],
        ts: u64,
        f: &saker_fields::FieldRef,
    ) -> Option<saker_fields::Value<'a>> {
        let name = f.info().name;
        match name {
            "container.id" => Some(saker_fields::Value::Str(std::borrow::Cow::Borrowed(
                &id[..id.len().min(12)],
            ))),
            "container.full_id" => Some(saker_fields::Value::Str(std::borrow::Cow::Borrowed(id))),
            _ => crate::extract_proc::meta_field(self.container_meta(id)?, ts, name, f),
        }
    }

    pub(crate) fn insert_thread(&mut self, t: Thread) -> bool {
        if !self.threads.contains_key(&t.tid) && self.threads.len() >= self.cfg.max_threads {
            self.counters.threads_dropped += 1;
            return false;
        }
        if self.threads.insert(t.tid, t).is_none() {
            self.counters.threads_added += 1;
        }
        true
    }

    pub(crate) fn remove_thread(&mut self, tid: i64) {
        let Some(t) = self.threads.remove(&tid) else {
            return;
        };
        self.counters.threads_removed += 1;
        // Re-parent children to the announced reaper, as the kernel did.
        let reaper = if t.reaper > 0 { t.reaper } else { 1 };
        let mut group_alive = false;
        for o in self.threads.values_mut() {
            if o.ptid == tid && o.pid != t.pid {
                o.ptid = reaper;
            }
            if o.pid == t.pid {
                group_alive = true;
            }
        }
        if !group_alive {
            if let Some(tab) = self.fdtables.remove(&t.pid) {
                self.counters.fds_removed += tab.len() as u64;
            }
        }
    }

    pub(crate) fn insert_fd(&mut self, pid: i64, num: i64, fd: Fd) {
        let max = self.cfg.max_fds_per_process;
        let tab = self.fdtables.entry(pid).or_default();
        if !tab.contains_key(&num) && tab.len() >= max {
            self.counters.fds_dropped += 1;
            return;
        }
        if tab.insert(num, fd).is_none() {
            self.counters.fds_added += 1;
        }
    }

    pub(crate) fn remove_fd(&mut self, pid: i64, num: i64) {
        if let Some(tab) = self.fdtables.get_mut(&pid) {
            if tab.remove(&num).is_some() {
                self.counters.fds_removed += 1;
            }
        }
    }
}

/// `cwd` with a trailing slash (libsinsp keeps it that way); empty stays empty (unknown).
pub(crate) fn dir_with_slash(p: &[u8]) -> Vec<u8> {
    let mut v = p.to_vec();
    if !v.is_empty() && !v.ends_with(b"/") {
        v.push(b'/');
    }
    v
}

fn fd_from_snapshot(f: &FdInfo) -> Fd {
    let mut fd = Fd::new(f.ty, f.name.clone());
    fd.ino = f.ino;
    fd.dev = f.dev;
    fd.open_flags = f.open_flags;
    fd.cloexec = f.open_flags & types::oflags::CLOEXEC != 0;
    fd.sock = f.sock.clone();
    match &f.sock {
        SockInfo::Ip { l4proto, .. } => {
            fd.l4proto = *l4proto;
            fd.connected = true;
            fd.name = render::tuple_name(&f.sock);
        }
        SockInfo::IpServer { l4proto, .. } => {
            fd.l4proto = *l4proto;
            fd.is_server = true;
            fd.name = render::tuple_name(&f.sock);
        }
        _ => {}
    }
    if f.ty == FdType::File || f.ty == FdType::FileV2 || f.ty == FdType::Directory {
        fd.nameraw = f.name.clone();
    }
    fd
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_extra;
