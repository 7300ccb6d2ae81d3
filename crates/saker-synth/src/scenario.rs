//! Case input → events and state seed.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use saker_event::table::{self, EventInfo, ParamType, EF_CREATES_FD};
use saker_event::{Event, ProcInfo, Snapshot, UserInfo};
use saker_state::{ContainerMeta, Mount};
use serde_norway::{Mapping, Value};

use crate::encode::{self, int_of, show};
use crate::model::{Case, ContainerSpec, Input, ProcSpec};

/// What a case feeds the pipeline.
#[derive(Debug, Clone, Default)]
pub struct Built {
    pub hostname: String,
    /// Threads, fds, users known before the first event.
    pub snapshot: Snapshot,
    /// Container metadata by full id, as a runtime lookup would give it.
    pub containers: Vec<(Vec<u8>, ContainerMeta)>,
    pub events: Vec<Event>,
    /// Only alerts of events whose `evt.num` is in this range count (capture slices).
    pub range: Option<(u64, u64)>,
}

/// 2024-01-02T03:04:05Z: a fixed clock so outputs are reproducible.
const BASE_TS: u64 = 1_704_164_645_000_000_000;
const HOSTNAME: &str = "saker-test";
/// /dev/pts/0.
const PTS0: i64 = 34816;
const ALL_CAPS: u64 = (1 << 41) - 1;
const AT_FDCWD: i64 = -100;

/// Builds the input of `case`; `dir` anchors relative file paths.
pub fn build(case: &Case, dir: &Path) -> Result<Built, String> {
    match case.input()? {
        Input::Scenario => Builder::new(case)?.run(case),
        Input::Scap(s) => scap(s, dir),
        Input::Audit(_) => Err(
            "k8s_audit input needs the k8s_audit event source, which this build of saker does not have yet"
                .into(),
        ),
    }
}

fn scap(s: &crate::ScapSpec, dir: &Path) -> Result<Built, String> {
    let path = if Path::new(&s.file).is_absolute() {
        Path::new(&s.file).to_path_buf()
    } else {
        dir.join(&s.file)
    };
    let mut r = saker_capture::Reader::open(&path)
        .map_err(|e| format!("cannot read capture {}: {e}", path.display()))?;
    let from = s.from.unwrap_or(0);
    let to = s.to.unwrap_or(u64::MAX);
    if from > to {
        return Err(format!("scap range from {from} is after to {to}"));
    }
    let mut events = Vec::new();
    let mut ev = Event::default();
    while r
        .next_event(&mut ev)
        .map_err(|e| format!("capture {}: {e}", path.display()))?
    {
        if ev.num > to {
            break;
        }
        events.push(ev.clone());
    }
    let snapshot = r.snapshot().clone();
    Ok(Built {
        hostname: snapshot.hostname.clone().unwrap_or_else(|| HOSTNAME.into()),
        snapshot,
        containers: Vec::new(),
        events,
        range: Some((from, to)),
    })
}

/// A process as the builder tracks it.
#[derive(Debug, Clone)]
struct Proc {
    spec: ProcSpec,
    info: ProcInfo,
    container: Option<String>,
}

struct Builder {
    procs: Vec<Proc>,
    by_name: HashMap<String, usize>,
    users: Vec<UserInfo>,
    containers: HashMap<String, (String, ContainerMeta, Option<IpAddr>)>,
    next_pid: i64,
    next_fd: HashMap<i64, i64>,
    last_fd: HashMap<i64, i64>,
    current: Option<usize>,
    events: Vec<Event>,
}

impl Builder {
    fn new(case: &Case) -> Result<Builder, String> {
        let mut b = Builder {
            procs: Vec::new(),
            by_name: HashMap::new(),
            users: vec![user(0, 0, "root", "/root", "/bin/bash")],
            containers: HashMap::new(),
            next_pid: 1000,
            next_fd: HashMap::new(),
            last_fd: HashMap::new(),
            current: None,
            events: Vec::new(),
        };
        for u in &case.users {
            b.users.retain(|x| x.uid != u.uid);
            b.users.push(user(
                u.uid,
                u.gid.unwrap_or(u.uid),
                &u.name,
                u.home.as_deref().unwrap_or(&format!("/home/{}", u.name)),
                u.shell.as_deref().unwrap_or("/bin/bash"),
            ));
        }
        for (k, c) in &case.containers {
            let (id, meta) = container_meta(k, c)?;
            let ip =
                c.ip.as_deref()
                    .map(|s| {
                        s.parse::<IpAddr>()
                            .map_err(|_| format!("container '{k}': ip '{s}' is not an address"))
                    })
                    .transpose()?;
            b.containers.insert(k.clone(), (id, meta, ip));
        }
        // The host's init, unless the case declares its own pid 1.
        if !case.processes.iter().any(|p| p.pid == Some(1)) {
            let init = ProcSpec {
                name: "systemd".into(),
                pid: Some(1),
                exepath: Some("/usr/lib/systemd/systemd".into()),
                exe: Some("/sbin/init".into()),
                ..Default::default()
            };
            b.add_proc(&init, None)?;
            b.current = None;
        }
        for p in &case.processes {
            b.add_proc(p, None)?;
        }
        Ok(b)
    }

    fn run(mut self, case: &Case) -> Result<Built, String> {
        for (i, e) in case.events.iter().enumerate() {
            self.event(e)
                .map_err(|m| format!("event {} ({}): {m}", i + 1, event_label(e)))?;
        }
        let mut procs: Vec<ProcInfo> = self.procs.iter().map(|p| p.info.clone()).collect();
        // A name may have been re-used by a later exec: keep one thread per tid (the first seen
        // is the state before any event).
        let mut seen = std::collections::HashSet::new();
        procs.retain(|p| seen.insert(p.tid));
        let containers = self
            .containers
            .into_values()
            .map(|(id, m, _)| (id.into_bytes(), m))
            .collect();
        Ok(Built {
            hostname: HOSTNAME.into(),
            snapshot: Snapshot {
                hostname: Some(HOSTNAME.into()),
                procs,
                users: self.users,
                ..Snapshot::default()
            },
            containers,
            events: self.events,
            range: None,
        })
    }

    fn uid_of(&mut self, spec: &ProcSpec) -> (u32, u32) {
        if let Some(uid) = spec.uid {
            let gid = spec.gid.unwrap_or_else(|| {
                self.users
                    .iter()
                    .find(|u| u.uid == uid)
                    .map_or(uid, |u| u.gid)
            });
            if !self.users.iter().any(|u| u.uid == uid) {
                let name = spec.user.clone().unwrap_or_else(|| format!("user{uid}"));
                self.users
                    .push(user(uid, gid, &name, &format!("/home/{name}"), "/bin/sh"));
            }
            return (uid, gid);
        }
        match &spec.user {
            None => (0, spec.gid.unwrap_or(0)),
            Some(n) => {
                if let Some(u) = self.users.iter().find(|u| u.name == n.as_bytes()) {
                    return (u.uid, spec.gid.unwrap_or(u.gid));
                }
                let uid = 1000 + self.users.iter().filter(|u| u.uid >= 1000).count() as u32;
                self.users
                    .push(user(uid, uid, n, &format!("/home/{n}"), "/bin/bash"));
                (uid, spec.gid.unwrap_or(uid))
            }
        }
    }

    fn proc_idx(&self, name: &str) -> Result<usize, String> {
        self.by_name.get(name).copied().ok_or_else(|| {
            let mut known: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
            known.sort();
            format!("no process named '{name}' (known: {})", known.join(", "))
        })
    }

    /// Resolves a spec into a thread; `parent_default` is used when the spec names no parent.
    fn resolve(&mut self, spec: &ProcSpec, parent_default: Option<usize>) -> Result<Proc, String> {
        if spec.name.is_empty() {
            return Err("a process needs a `name`".into());
        }
        let (uid, gid) = self.uid_of(spec);
        let parent = match &spec.parent {
            Some(p) => Some(self.proc_idx(p)?),
            None => parent_default,
        };
        let ptid = parent.map_or(if spec.pid == Some(1) { 0 } else { 1 }, |i| {
            self.procs[i].info.pid
        });
        let pid = match spec.pid {
            Some(p) => p,
            None => {
                self.next_pid += 1;
                self.next_pid
            }
        };
        let tid = spec.tid.unwrap_or(pid);
        let container = match &spec.container {
            Some(k) => {
                if !self.containers.contains_key(k) {
                    return Err(format!(
                        "process '{}': no container '{k}' in `containers`",
                        spec.name
                    ));
                }
                Some(k.clone())
            }
            // A child stays in its parent's container unless told otherwise.
            None => parent.and_then(|i| self.procs[i].container.clone()),
        };
        let cgroups = match &container {
            Some(k) => {
                let (id, m, _) = &self.containers[k];
                let path = if m.pod_name.is_empty() {
                    format!("/docker/{id}")
                } else {
                    format!("/kubepods/besteffort/pod{}/{id}", m.pod_uid)
                };
                vec![format!("cpuset={path}").into_bytes()]
            }
            None => vec![b"cpuset=/".to_vec()],
        };
        let tty = match &spec.tty {
            None | Some(Value::Null) | Some(Value::Bool(false)) => 0,
            Some(Value::Bool(true)) => PTS0,
            Some(v) => int_of(v)
                .ok_or_else(|| format!("tty: expected a number or true, got {}", show(v)))?,
        } as u32;
        let root = uid == 0;
        let exe = spec.exe.clone().unwrap_or_else(|| spec.name.clone());
        let exepath = spec.exepath.clone().unwrap_or_else(|| {
            if exe.starts_with('/') {
                exe.clone()
            } else {
                format!("/usr/bin/{}", spec.name)
            }
        });
        let home = self
            .users
            .iter()
            .find(|u| u.uid == uid)
            .map_or_else(|| b"/".to_vec(), |u| u.homedir.clone());
        let info = ProcInfo {
            tid,
            pid,
            ptid,
            sid: spec.sid.unwrap_or(pid),
            vpgid: spec.pgid.unwrap_or(pid),
            pgid: spec.pgid.unwrap_or(pid),
            vtid: spec.vpid.unwrap_or(tid),
            vpid: spec.vpid.unwrap_or(pid),
            comm: spec.name.clone().into_bytes(),
            exe: exe.into_bytes(),
            exepath: exepath.into_bytes(),
            args: spec.args.iter().map(|a| a.clone().into_bytes()).collect(),
            env: spec.env.iter().map(|a| a.clone().into_bytes()).collect(),
            cwd: spec.cwd.clone().map_or(home, String::into_bytes),
            root: b"/".to_vec(),
            fdlimit: 1024,
            uid,
            gid,
            loginuid: spec.loginuid.map_or(u32::MAX, |l| l as u32),
            tty,
            cap_inheritable: 0,
            cap_permitted: spec
                .cap_permitted
                .unwrap_or(if root { ALL_CAPS } else { 0 }),
            cap_effective: spec
                .cap_effective
                .unwrap_or(if root { ALL_CAPS } else { 0 }),
            exe_writable: spec.exe_writable,
            exe_upper_layer: spec.exe_upper_layer,
            exe_from_memfd: spec.exe_from_memfd,
            exe_ino: 4242,
            start_ts: BASE_TS - 60_000_000_000,
            cgroups,
            ..ProcInfo::default()
        };
        Ok(Proc {
            spec: spec.clone(),
            info,
            container,
        })
    }

    fn add_proc(
        &mut self,
        spec: &ProcSpec,
        parent_default: Option<usize>,
    ) -> Result<usize, String> {
        let p = self.resolve(spec, parent_default)?;
        if self.procs.iter().any(|q| q.info.tid == p.info.tid) {
            return Err(format!(
                "process '{}': tid {} is already used",
                spec.name, p.info.tid
            ));
        }
        self.procs.push(p);
        let i = self.procs.len() - 1;
        self.by_name.insert(spec.name.clone(), i);
        self.current = Some(i);
        Ok(i)
    }

    fn push(&mut self, mut ev: Event) {
        let n = self.events.len() as u64 + 1;
        ev.num = n;
        ev.ts = BASE_TS + n * 1_000_000;
        self.events.push(ev);
    }

    fn event(&mut self, e: &Value) -> Result<(), String> {
        let Value::Mapping(m) = e else {
            return Err("an event is a one-key map like `- openat: {name: /etc/shadow}`".into());
        };
        if m.len() != 1 {
            return Err("an event is a one-key map: the syscall name, then its arguments".into());
        }
        let (k, v) = m.iter().next().expect("one entry");
        let name = k.as_str().ok_or("the syscall name must be a string")?;
        let args = match v {
            Value::Null => Mapping::new(),
            Value::Mapping(a) => a.clone(),
            other => {
                return Err(format!(
                    "arguments of {name} must be a map, got {}",
                    show(other)
                ))
            }
        };
        match name {
            "execve" | "execveat" => self.exec(name, args),
            _ => self.syscall(name, args),
        }
    }

    fn take_proc(&mut self, args: &mut Mapping) -> Result<usize, String> {
        match args.remove("proc") {
            Some(Value::String(p)) => self.proc_idx(&p),
            Some(other) => Err(format!(
                "proc: expected a process name, got {}",
                show(&other)
            )),
            None => self.current.ok_or_else(|| {
                "no process to run it: declare `processes:` or give `proc:`".to_string()
            }),
        }
    }

    /// execve/execveat: `proc: X` re-executes X (with the given overrides); otherwise a new
    /// child of `parent` (default: the current process) executes the program.
    fn exec(&mut self, name: &str, mut args: Mapping) -> Result<(), String> {
        let res = match args.remove("res") {
            Some(v) => int_of(&v)
                .ok_or_else(|| format!("res: expected a number or errno name, got {}", show(&v)))?,
            None => 0,
        };
        let (idx, caller) = if args.contains_key("proc") {
            let i = self.take_proc(&mut args)?;
            let mut base =
                serde_norway::to_value(&self.procs[i].spec).map_err(|e| e.to_string())?;
            if let Value::Mapping(b) = &mut base {
                for (k, v) in args {
                    b.insert(k, v);
                }
                // Identity stays: the same thread executes.
                b.insert("pid".into(), Value::from(self.procs[i].info.pid));
                b.insert("tid".into(), Value::from(self.procs[i].info.tid));
            }
            let spec: ProcSpec = serde_norway::from_value(base).map_err(|e| e.to_string())?;
            let parent = self
                .procs
                .iter()
                .position(|p| p.info.pid == self.procs[i].info.ptid);
            let mut p = self.resolve(
                &ProcSpec {
                    parent: None,
                    ..spec
                },
                parent,
            )?;
            p.info.ptid = self.procs[i].info.ptid;
            (p, i)
        } else {
            let spec: ProcSpec = serde_norway::from_value(Value::Mapping(args))
                .map_err(|e| format!("{name}: {e}"))?;
            let cur = self.current;
            let p = self.resolve(&spec, cur)?;
            let parent = self
                .procs
                .iter()
                .position(|q| q.info.pid == p.info.ptid)
                .unwrap_or(0);
            // The forked child, before it executes: a copy of its parent.
            let mut child = self.procs[parent].clone();
            child.info.tid = p.info.tid;
            child.info.pid = p.info.pid;
            child.info.ptid = self.procs[parent].info.pid;
            child.info.vtid = p.info.vtid;
            child.info.vpid = p.info.vpid;
            child.info.cgroups = p.info.cgroups.clone();
            child.container = p.container.clone();
            if self.procs.iter().any(|q| q.info.tid == p.info.tid) {
                return Err(format!("pid {} is already used", p.info.tid));
            }
            self.procs.push(child);
            (p, self.procs.len() - 1)
        };
        let before = self.procs[caller].info.clone();
        // A failed exec reports the caller's own image.
        let img = if res == 0 { &idx.info } else { &before };
        let info = current_exit(name)?;
        let mut ev = Event::new(0, 0, before.tid, 0, info.id);
        let flags = (img.exe_writable as i64)
            | ((img.exe_upper_layer as i64) << 1)
            | ((img.exe_from_memfd as i64) << 2)
            | ((img.exe_lower_layer as i64) << 3);
        for pi in info.params {
            let w = pi.ty.fixed_size().unwrap_or(8);
            let int = |v: i64| v.to_le_bytes()[..w].to_vec();
            let s = |b: &[u8]| {
                let mut v = b.to_vec();
                v.push(0);
                v
            };
            let bytes = match pi.name {
                "res" => int(res),
                "exe" => s(&img.exe),
                "args" => encode::nul_list(&img.args),
                "tid" => int(img.tid),
                "pid" => int(img.pid),
                "ptid" => int(img.ptid),
                "cwd" => s(&img.cwd),
                "fdlimit" => int(img.fdlimit),
                "comm" => s(&img.comm),
                "cgroups" => encode::nul_list(&img.cgroups),
                "env" => encode::nul_list(&img.env),
                "tty" => int(img.tty as i64),
                "vpgid" => int(img.vpgid),
                "pgid" => int(img.pgid),
                "loginuid" => int(img.loginuid as i64),
                "flags" => int(flags),
                "cap_inheritable" => int(img.cap_inheritable as i64),
                "cap_permitted" => int(img.cap_permitted as i64),
                "cap_effective" => int(img.cap_effective as i64),
                "exe_ino" => int(img.exe_ino as i64),
                "exe_ino_ctime" | "exe_ino_mtime" => int(BASE_TS as i64 - 86_400_000_000_000),
                "uid" => int(img.uid as i64),
                "gid" => int(img.gid as i64),
                "trusted_exepath" => s(&img.exepath),
                "filename" => s(&idx.info.exepath),
                "dirfd" => int(AT_FDCWD),
                _ => encode::zero(pi),
            };
            ev.push_param(&bytes);
        }
        self.push(ev);
        if res == 0 {
            let spec_name = idx.spec.name.clone();
            // The snapshot keeps the pre-exec thread (the entry at `caller`); the new image is
            // tracked as its own entry so later events name it.
            self.procs.push(idx);
            let i = self.procs.len() - 1;
            self.by_name.insert(spec_name, i);
            self.current = Some(i);
        }
        Ok(())
    }

    fn alloc_fd(&mut self, pid: i64) -> i64 {
        let n = self.next_fd.entry(pid).or_insert(3);
        let fd = *n;
        *n += 1;
        fd
    }

    fn syscall(&mut self, name: &str, mut args: Mapping) -> Result<(), String> {
        let info = current_exit(name)?;
        let pidx = self.take_proc(&mut args)?;
        let (tid, pid) = (self.procs[pidx].info.tid, self.procs[pidx].info.pid);
        let is_net_send = matches!(name, "connect" | "sendto" | "sendmsg");
        // A connection needs a socket: open one first unless the case names the fd.
        if is_net_send && !args.contains_key("fd") {
            let dst = args
                .get("addr")
                .and_then(Value::as_str)
                .map(encode::sockaddr_of)
                .transpose()?;
            let v6 = dst.is_some_and(|d| d.is_ipv6());
            let mut sock = Mapping::new();
            sock.insert("domain".into(), Value::from(if v6 { 10 } else { 2 }));
            sock.insert(
                "type".into(),
                Value::from(if name == "connect" { 1 } else { 2 }),
            );
            sock.insert(
                "proc".into(),
                Value::from(self.procs[pidx].spec.name.clone()),
            );
            self.syscall("socket", sock)?;
        }
        if is_net_send && !args.contains_key("tuple") {
            if let Some(dst) = args.get("addr").and_then(Value::as_str) {
                let dst = encode::sockaddr_of(dst)?;
                let ip = self.procs[pidx]
                    .container
                    .as_ref()
                    .and_then(|k| self.containers[k].2);
                let src_ip = match (ip, dst.is_ipv4()) {
                    (Some(ip), _) => ip,
                    (None, true) => IpAddr::from([10, 0, 0, 2]),
                    (None, false) => "fd00::2".parse().expect("literal"),
                };
                let src = SocketAddr::new(src_ip, 40_000 + self.events.len() as u16);
                args.insert("tuple".into(), Value::from(format!("{src}->{dst}")));
            }
        }
        if name == "socket" {
            if let Some(Value::String(t)) = args.get("type") {
                let v = match t.as_str() {
                    "SOCK_STREAM" => 1,
                    "SOCK_DGRAM" => 2,
                    "SOCK_RAW" => 3,
                    "SOCK_PACKET" => 10,
                    other => {
                        return Err(format!(
                        "socket type '{other}': use SOCK_STREAM, SOCK_DGRAM, SOCK_RAW or a number"
                    ))
                    }
                };
                args.insert("type".into(), Value::from(v));
            }
        }
        let known: Vec<&str> = info.params.iter().map(|p| p.name).collect();
        for k in args.keys() {
            let k = k.as_str().unwrap_or("?");
            if !known.contains(&k) {
                return Err(format!(
                    "{name} has no parameter '{k}' (its parameters: {}; and `proc`)",
                    known.join(", ")
                ));
            }
        }
        let creates_fd = info.flags & EF_CREATES_FD != 0;
        let mut ev = Event::new(0, 0, tid, 0, info.id);
        let mut new_fd = None;
        for (i, pi) in info.params.iter().enumerate() {
            let given = args.get(pi.name);
            let bytes = match given {
                Some(v) => encode::encode(pi, v).map_err(|m| format!("{}: {m}", pi.name))?,
                None => {
                    let w = pi.ty.fixed_size().unwrap_or(8);
                    let int = |v: i64| v.to_le_bytes()[..w].to_vec();
                    if i == 0 && matches!(pi.name, "res" | "fd") {
                        if creates_fd {
                            let fd = match args.get("newfd").and_then(int_of) {
                                Some(n) => n,
                                None => self.alloc_fd(pid),
                            };
                            int(fd)
                        } else {
                            int(0)
                        }
                    } else if pi.name.contains("dirfd") || matches!(pi.name, "olddir" | "newdir") {
                        int(AT_FDCWD)
                    } else if matches!(pi.ty, ParamType::Fd | ParamType::Fd32) {
                        int(self.last_fd.get(&pid).copied().unwrap_or(-1))
                    } else {
                        encode::zero(pi)
                    }
                }
            };
            if i == 0 && creates_fd {
                let w = bytes.len().min(8);
                let mut b = [0u8; 8];
                b[..w].copy_from_slice(&bytes[..w]);
                let v = i64::from_le_bytes(b);
                // Sign-extend narrower results.
                let v = if w < 8 && bytes.get(w - 1).is_some_and(|x| x & 0x80 != 0) {
                    v | (!0i64 << (w * 8))
                } else {
                    v
                };
                new_fd = (v >= 0).then_some(v);
            }
            ev.push_param(&bytes);
        }
        if let Some(fd) = new_fd {
            self.last_fd.insert(pid, fd);
            let n = self.next_fd.entry(pid).or_insert(3);
            *n = (*n).max(fd + 1);
        }
        self.current = Some(pidx);
        self.push(ev);
        Ok(())
    }
}

fn user(uid: u32, gid: u32, name: &str, home: &str, shell: &str) -> UserInfo {
    UserInfo {
        uid,
        gid,
        name: name.as_bytes().to_vec(),
        homedir: home.as_bytes().to_vec(),
        shell: shell.as_bytes().to_vec(),
    }
}

/// The event the current probe emits for a syscall: its exit event of the newest version.
fn current_exit(name: &str) -> Result<&'static EventInfo, String> {
    table::ids_for_name(name)
        .iter()
        .filter_map(|&id| table::info(id))
        .filter(|i| i.id & 1 == 1 && !i.is_old_version())
        .max_by_key(|i| i.id)
        .ok_or_else(|| {
            if table::is_known_name(name) {
                format!("'{name}' has no exit event in the event table")
            } else {
                format!("unknown syscall or event '{name}'")
            }
        })
}

fn event_label(e: &Value) -> String {
    match e {
        Value::Mapping(m) => m
            .keys()
            .next()
            .and_then(Value::as_str)
            .unwrap_or("?")
            .to_string(),
        _ => "?".into(),
    }
}

/// A stable 64-hex id from a container key.
fn derived_id(key: &str) -> String {
    // FNV-1a, widened: ids only need to be distinct and well-formed.
    let mut out = String::new();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for round in 0..4u8 {
        for b in key.bytes().chain([round]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out
}

fn container_meta(key: &str, c: &ContainerSpec) -> Result<(String, ContainerMeta), String> {
    let id = match &c.id {
        Some(id) => {
            if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!(
                    "container '{key}': id must be 64 hex digits (the full id)"
                ));
            }
            id.to_ascii_lowercase()
        }
        None => derived_id(key),
    };
    let image = c.image.clone().unwrap_or_default();
    // repository[:tag][@digest]; a colon before the last slash is a registry port.
    let (no_digest, digest) = match image.split_once('@') {
        Some((a, d)) => (a.to_string(), d.to_string()),
        None => (image.clone(), String::new()),
    };
    let slash = no_digest.rfind('/').map_or(0, |i| i + 1);
    let (repo, tag) = match no_digest[slash..].rfind(':') {
        Some(i) => (
            no_digest[..slash + i].to_string(),
            no_digest[slash + i + 1..].to_string(),
        ),
        None => (
            no_digest.clone(),
            if image.is_empty() {
                String::new()
            } else {
                "latest".into()
            },
        ),
    };
    let mounts = c
        .mounts
        .iter()
        .map(|m| {
            let parts: Vec<&str> = m.split(':').collect();
            if parts.len() < 2 {
                return Err(format!(
                    "container '{key}': mount '{m}' must be `source:dest[:ro]`"
                ));
            }
            let ro = parts.get(2) == Some(&"ro");
            Ok(Mount {
                source: parts[0].into(),
                dest: parts[1].into(),
                mode: if ro { "ro".into() } else { "rw".into() },
                rdwr: !ro,
                propagation: "rprivate".into(),
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pod = c.pod.as_ref();
    let meta = ContainerMeta {
        full_id: id.clone(),
        runtime: c.runtime.clone().unwrap_or_else(|| {
            if pod.is_some() {
                "containerd".into()
            } else {
                "docker".into()
            }
        }),
        name: c.name.clone().unwrap_or_else(|| key.to_string()),
        image: image.clone(),
        image_id: derived_id(&image),
        image_repository: repo,
        image_tag: tag,
        image_digest: digest,
        privileged: Some(c.privileged),
        mounts,
        labels: c
            .labels
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        start_ts: BASE_TS - 120_000_000_000,
        ip: c.ip.clone().unwrap_or_default(),
        host_pid: Some(c.host_pid),
        host_network: Some(c.host_network),
        host_ipc: Some(false),
        pod_name: pod.map(|p| p.name.clone()).unwrap_or_default(),
        pod_namespace: pod.map(|p| p.namespace.clone()).unwrap_or_default(),
        pod_uid: pod
            .map(|p| p.uid.clone().unwrap_or_else(|| uuid_like(&p.name)))
            .unwrap_or_default(),
        pod_sandbox_id: pod
            .map(|p| derived_id(&format!("sandbox-{}", p.name)))
            .unwrap_or_default(),
        pod_labels: pod
            .map(|p| {
                p.labels
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect()
            })
            .unwrap_or_default(),
        pod_ip: c.ip.clone().unwrap_or_default(),
        ..ContainerMeta::default()
    };
    Ok((id, meta))
}

fn uuid_like(seed: &str) -> String {
    let h = derived_id(seed);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}
