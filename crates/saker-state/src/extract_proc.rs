//! `proc.*`, `thread.*`, `user.*`, `group.*`, `container.*`, `k8s.*`.

use std::borrow::Cow;

use saker_fields::{FieldArg, FieldRef, Value};

use crate::container::ContainerMeta;
use crate::extract::{bstr, owned, sstr, EventCtx};
use crate::types::{type_name, NulList, Thread};

const CAPS: [&str; 41] = [
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// Space-separated `CAP_*` names of a capability mask.
pub fn caps_text(mask: u64) -> String {
    let mut out = String::new();
    for (i, n) in CAPS.iter().enumerate() {
        if mask & (1 << i) != 0 {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(n);
        }
    }
    out
}

const SHELLS: &[&[u8]] = &[
    b"sh", b"bash", b"zsh", b"ksh", b"csh", b"tcsh", b"dash", b"fish", b"ash",
];

fn join(parts: &NulList, first: Option<&[u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    if let Some(f) = first {
        out.extend_from_slice(f);
    }
    for a in parts {
        if !out.is_empty() || first.is_some() {
            out.push(b' ');
        }
        out.extend_from_slice(a);
    }
    out
}

fn cmdline(t: &Thread) -> Vec<u8> {
    join(&t.args, Some(&t.comm))
}

fn env_get<'t>(t: &'t Thread, key: &str) -> Option<&'t [u8]> {
    t.env.iter().find_map(|e| {
        let rest = e.strip_prefix(key.as_bytes())?;
        rest.strip_prefix(b"=")
    })
}

impl<'a> EventCtx<'a> {
    pub(crate) fn parent(&self, t: &'a Thread) -> Option<&'a Thread> {
        if t.ptid == t.tid || t.ptid <= 0 {
            return None;
        }
        self.st.threads.get(&t.ptid)
    }

    /// The `n`-th ancestor (`0` = self), with loop protection.
    fn ancestor(&self, n: u32) -> Option<&'a Thread> {
        let mut t = self.th()?;
        for _ in 0..n {
            t = self.parent(t)?;
        }
        Some(t)
    }

    /// Strict ancestors, oldest last; stops on a loop. Chains are short, so the
    /// loop check scans what was collected rather than building a hash set per call.
    fn ancestors(&self) -> Vec<&'a Thread> {
        let mut out: Vec<&'a Thread> = Vec::new();
        let Some(mut t) = self.th() else { return out };
        let me = t.tid;
        while let Some(p) = self.parent(t) {
            if p.tid == me || out.iter().any(|a| a.tid == p.tid) || out.len() >= 256 {
                break;
            }
            out.push(p);
            t = p;
        }
        out
    }

    /// Leader of a session or process group: the ancestor whose id equals the
    /// group id, else the eldest ancestor still in the same group.
    fn group_leader(
        &self,
        t: &'a Thread,
        group: impl Fn(&Thread) -> i64,
        id: impl Fn(&Thread) -> i64,
    ) -> &'a Thread {
        let g = group(t);
        let mut leader = t;
        if id(t) == g {
            return t;
        }
        for a in self.ancestors() {
            if group(a) != g {
                break;
            }
            leader = a;
            if id(a) == g {
                break;
            }
        }
        leader
    }

    fn main_of(&self, t: &'a Thread) -> &'a Thread {
        self.st.threads.get(&t.pid).unwrap_or(t)
    }

    fn by_pid(&self, pid: i64) -> Option<&'a Thread> {
        self.st.threads.get(&pid)
    }

    /// Ancestor field: with index the n-th ancestor's value, without a list of
    /// strict ancestors' values.
    fn anc<F>(&self, f: &FieldRef, get: F) -> Option<Value<'a>>
    where
        F: Fn(&'a Thread) -> Value<'a>,
    {
        match f.arg {
            FieldArg::Index(n) => Some(get(self.ancestor(n)?)),
            _ => {
                let l: Vec<Value<'a>> = self.ancestors().into_iter().map(get).collect();
                self.th()?;
                Some(Value::List(l))
            }
        }
    }

    pub(crate) fn extract_proc(&self, name: &str, f: &FieldRef) -> Option<Value<'a>> {
        let t = self.th()?;
        let ts = self.ev.ts;
        Some(match name {
            "proc.pid" => Value::I64(t.pid),
            "proc.exe" => bstr(&t.exe),
            "proc.name" => bstr(&t.comm),
            "proc.args" => match f.arg {
                FieldArg::Index(i) => bstr(t.args.get(i as usize).unwrap_or_default()),
                _ => owned(join(&t.args, None)),
            },
            "proc.aargs" => self.anc(f, |a| owned(join(&a.args, None)))?,
            "proc.env" => match &f.arg {
                FieldArg::Key(k) => bstr(env_get(t, k)?),
                _ => owned(join(&t.env, None)),
            },
            "proc.aenv" => match &f.arg {
                FieldArg::Key(k) => {
                    let l = self
                        .ancestors()
                        .into_iter()
                        .filter_map(|a| env_get(a, k).map(bstr))
                        .collect();
                    Value::List(l)
                }
                _ => self.anc(f, |a| owned(join(&a.env, None)))?,
            },
            "proc.cmdline" => owned(cmdline(t)),
            "proc.exeline" => owned(join(&t.args, Some(&t.exe))),
            "proc.cmdnargs" => Value::U64(t.args.len() as u64),
            // The items plus one separator between each two.
            "proc.cmdlenargs" => Value::U64(t.args.as_bytes().len() as u64),
            "proc.exepath" => bstr(&t.exepath),
            "proc.cwd" => bstr(&t.cwd),
            "proc.loginshellid" => {
                let mut id = None;
                for a in std::iter::once(t).chain(self.ancestors()) {
                    if SHELLS.contains(&a.comm.as_slice()) {
                        id = Some(a.pid);
                    }
                }
                Value::I64(id?)
            }
            "proc.tty" => Value::U64(t.tty as u64),
            "proc.ppid" => Value::I64(self.parent(t).map_or(t.ptid, |p| p.pid)),
            "proc.pname" => bstr(&self.parent(t)?.comm),
            "proc.pcmdline" => owned(cmdline(self.parent(t)?)),
            "proc.pexe" => bstr(&self.parent(t)?.exe),
            "proc.pexepath" => bstr(&self.parent(t)?.exepath),
            "proc.apid" => self.anc(f, |a| Value::I64(a.pid))?,
            "proc.aname" => self.anc(f, |a| bstr(&a.comm))?,
            "proc.aexe" => self.anc(f, |a| bstr(&a.exe))?,
            "proc.aexepath" => self.anc(f, |a| bstr(&a.exepath))?,
            "proc.acmdline" => self.anc(f, |a| owned(cmdline(a)))?,
            "proc.vpid" if t.vpid >= 0 => Value::I64(t.vpid),
            "proc.pvpid" => Value::I64(self.parent(t)?.vpid),
            "proc.sid" => Value::I64(t.sid),
            "proc.sname" => bstr(&self.group_leader(t, |x| x.sid, |x| x.pid).comm),
            "proc.sid.exe" => bstr(&self.group_leader(t, |x| x.sid, |x| x.pid).exe),
            "proc.sid.exepath" => bstr(&self.group_leader(t, |x| x.sid, |x| x.pid).exepath),
            "proc.vpgid" => Value::I64(t.vpgid),
            "proc.vpgid.name" => bstr(&self.group_leader(t, |x| x.vpgid, |x| x.vpid).comm),
            "proc.vpgid.exe" => bstr(&self.group_leader(t, |x| x.vpgid, |x| x.vpid).exe),
            "proc.vpgid.exepath" => bstr(&self.group_leader(t, |x| x.vpgid, |x| x.vpid).exepath),
            "proc.pgid" => Value::I64(t.pgid),
            "proc.pgid.name" => bstr(&self.by_pid(t.pgid)?.comm),
            "proc.pgid.exe" => bstr(&self.by_pid(t.pgid)?.exe),
            "proc.pgid.exepath" => bstr(&self.by_pid(t.pgid)?.exepath),
            "proc.duration" => {
                let m = self.main_of(t);
                if m.clone_ts == 0 {
                    return None;
                }
                Value::U64(ts.saturating_sub(m.clone_ts))
            }
            "proc.ppid.duration" => {
                let p = self.parent(t)?;
                if p.clone_ts == 0 {
                    return None;
                }
                Value::U64(ts.saturating_sub(p.clone_ts))
            }
            "proc.pid.ts" => Value::U64(self.main_of(t).clone_ts),
            "proc.ppid.ts" => Value::U64(self.parent(t)?.clone_ts),
            "proc.is_exe_writable" => Value::Bool(t.exe_writable),
            "proc.is_exe_upper_layer" => Value::Bool(t.exe_upper_layer),
            "proc.is_exe_lower_layer" => Value::Bool(t.exe_lower_layer),
            "proc.is_exe_from_memfd" => Value::Bool(t.exe_from_memfd),
            "proc.is_sid_leader" => Value::Bool(t.sid == t.vpid),
            "proc.is_vpgid_leader" => Value::Bool(t.vpgid == t.vpid),
            "proc.is_pgid_leader" => Value::Bool(t.pgid == t.pid),
            "proc.exe_ino" => Value::U64(t.exe_ino),
            "proc.exe_ino.ctime" => Value::U64(t.exe_ino_ctime),
            "proc.exe_ino.mtime" => Value::U64(t.exe_ino_mtime),
            "proc.exe_ino.ctime_duration_proc_start" => {
                let start = self.main_of(t).clone_ts;
                if t.exe_ino_ctime == 0 || start < t.exe_ino_ctime {
                    return None;
                }
                Value::U64(start - t.exe_ino_ctime)
            }
            "proc.exe_ino.ctime_duration_pidns_start" => {
                if t.exe_ino_ctime == 0
                    || t.pidns_init_start_ts == 0
                    || t.exe_ino_ctime < t.pidns_init_start_ts
                {
                    return None;
                }
                Value::U64(t.exe_ino_ctime - t.pidns_init_start_ts)
            }
            "proc.pidns_init_start_ts" => Value::U64(t.pidns_init_start_ts),
            "proc.fdopencount" => {
                Value::U64(self.st.fdtables.get(&t.pid).map_or(0, |x| x.len()) as u64)
            }
            "proc.fdlimit" => Value::I64(t.fdlimit),
            "proc.fdusage" => {
                if t.fdlimit <= 0 {
                    return None;
                }
                let n = self.st.fdtables.get(&t.pid).map_or(0, |x| x.len()) as u64;
                Value::U64(n * 100 / t.fdlimit as u64)
            }
            "proc.vmsize" | "thread.vmsize" => Value::U64(t.vmsize_kb as u64),
            "proc.vmrss" | "thread.vmrss" => Value::U64(t.vmrss_kb as u64),
            "proc.vmswap" => Value::U64(t.vmswap_kb as u64),
            "thread.vmsize.b" => Value::U64(t.vmsize_kb as u64 * 1024),
            "thread.vmrss.b" => Value::U64(t.vmrss_kb as u64 * 1024),
            "thread.pfmajor" => Value::U64(t.pfmajor),
            "thread.pfminor" => Value::U64(t.pfminor),
            "proc.nthreads" => {
                Value::U64(self.st.threads.values().filter(|o| o.pid == t.pid).count() as u64)
            }
            "proc.nchilds" => {
                Value::U64(self.st.threads.values().filter(|o| o.ptid == t.tid).count() as u64)
            }
            "proc.stdin.type" | "proc.stdout.type" | "proc.stderr.type" | "proc.stdin.name"
            | "proc.stdout.name" | "proc.stderr.name" => {
                let n = if name.contains("stdin") {
                    0
                } else if name.contains("stdout") {
                    1
                } else {
                    2
                };
                let fd = self.st.fdtables.get(&t.pid)?.get(&n)?;
                if name.ends_with("type") {
                    sstr(type_name(fd.ty)?)
                } else {
                    bstr(&fd.name)
                }
            }
            "proc.is_container_healthcheck"
            | "proc.is_container_liveness_probe"
            | "proc.is_container_readiness_probe" => {
                let m = self.meta();
                let cmd = match (name, m) {
                    ("proc.is_container_healthcheck", Some(m)) => &m.healthcheck,
                    ("proc.is_container_liveness_probe", Some(m)) => &m.liveness_probe,
                    (_, Some(m)) => &m.readiness_probe,
                    _ => return Some(Value::Bool(false)),
                };
                Value::Bool(!cmd.is_empty() && join(&t.args, Some(&t.exe)) == cmd.as_bytes())
            }
            "thread.tid" => Value::I64(t.tid),
            "thread.ismain" => Value::Bool(t.is_main()),
            "thread.vtid" if t.vtid >= 0 => Value::I64(t.vtid),
            "thread.cap_permitted" => owned(caps_text(t.cap_permitted).into_bytes()),
            "thread.cap_inheritable" => owned(caps_text(t.cap_inheritable).into_bytes()),
            "thread.cap_effective" => owned(caps_text(t.cap_effective).into_bytes()),
            "thread.cgroups" => owned(join(&t.cgroups, None)),
            "thread.cgroup" => {
                let FieldArg::Key(k) = &f.arg else {
                    return None;
                };
                let v = t.cgroups.iter().find_map(|c| {
                    let (sub, path) = c.split_at(c.iter().position(|&b| b == b'=')?);
                    sub.split(|&b| b == b',')
                        .any(|s| s == k.as_bytes())
                        .then_some(&path[1..])
                })?;
                bstr(v)
            }
            "thread.nametid" => {
                owned(format!("{}{}", String::from_utf8_lossy(&t.comm), t.tid).into_bytes())
            }
            "thread.exectime" | "thread.totexectime" | "thread.cpu" | "thread.cpu.user"
            | "thread.cpu.system" => Value::U64(0),
            _ => return None,
        })
    }

    pub(crate) fn extract_user(&self, name: &str) -> Option<Value<'a>> {
        let t = self.th()?;
        let u = &self.st.users;
        Some(match name {
            "user.uid" => Value::U64(t.uid as u64),
            "user.name" => bstr(u.user_name(t.uid)),
            "user.homedir" => bstr(&u.users.get(&t.uid)?.homedir),
            "user.shell" => bstr(&u.users.get(&t.uid)?.shell),
            "user.loginuid" => Value::I64(if t.loginuid == u32::MAX {
                -1
            } else {
                t.loginuid as i64
            }),
            "user.loginname" => bstr(u.user_name(t.loginuid)),
            "group.gid" => Value::U64(t.gid as u64),
            "group.name" => bstr(u.group_name(t.gid)),
            _ => return None,
        })
    }

    fn meta(&self) -> Option<&'a ContainerMeta> {
        let id = &self.th()?.container_id;
        if id.is_empty() {
            return None;
        }
        self.st
            .containers
            .get(id.as_slice())
            .or_else(|| self.st.containers.get(&id[..id.len().min(12)]))
    }

    pub(crate) fn extract_container(&self, name: &str, f: &FieldRef) -> Option<Value<'a>> {
        let t = self.th()?;
        let host = t.container_id.is_empty();
        match name {
            "container.id" => {
                return Some(if host {
                    sstr("host")
                } else {
                    bstr(&t.container_id[..t.container_id.len().min(12)])
                })
            }
            "container.full_id" => {
                return Some(if host {
                    sstr("host")
                } else {
                    bstr(&t.container_id)
                })
            }
            "container.name" | "container.image" | "container.type" if host => {
                return Some(sstr("host"))
            }
            _ => {}
        }
        if host {
            return None;
        }
        let m = self.meta()?;
        meta_field(m, self.ev.ts, name, f)
    }
}

/// A container.* / k8s.* field from a container's metadata at time `ts`: shared by event
/// extraction and [`crate::State::container_field`] (alerts rendered again once metadata arrives).
pub(crate) fn meta_field<'a>(
    m: &'a ContainerMeta,
    ts: u64,
    name: &str,
    f: &FieldRef,
) -> Option<Value<'a>> {
    let s = |v: &'a String| -> Option<Value<'a>> {
        if v.is_empty() {
            None
        } else {
            Some(bstr(v.as_bytes()))
        }
    };
    let labels = |l: &'a [(String, String)]| -> Value<'a> {
        owned(
            l.iter()
                .map(|(k, v)| format!("{k}:{v}"))
                .collect::<Vec<_>>()
                .join(", ")
                .into_bytes(),
        )
    };
    let key = match &f.arg {
        FieldArg::Key(k) => Some(k.as_str()),
        _ => None,
    };
    let idx = match f.arg {
        FieldArg::Index(i) => Some(i),
        _ => None,
    };
    match name {
        "container.name" => s(&m.name),
        "container.image" => s(&m.image),
        "container.image.id" => s(&m.image_id),
        "container.image.repository" => s(&m.image_repository),
        "container.image.tag" => s(&m.image_tag),
        "container.image.digest" => s(&m.image_digest),
        "container.type" => s(&m.runtime),
        "container.privileged" => m.privileged.map(Value::Bool),
        "container.mounts" => Some(owned(
            m.mounts
                .iter()
                .map(ContainerMeta::mount_text)
                .collect::<Vec<_>>()
                .join(",")
                .into_bytes(),
        )),
        "container.mount" => Some(owned(
            ContainerMeta::mount_text(m.find_mount(idx, key)?).into_bytes(),
        )),
        "container.mount.source" => {
            // Keyed by destination path.
            let mt = match key {
                Some(k) => m
                    .mounts
                    .iter()
                    .find(|x| saker_types::glob(k.as_bytes(), x.dest.as_bytes()))?,
                None => m.find_mount(idx, None)?,
            };
            Some(bstr(mt.source.as_bytes()))
        }
        "container.mount.dest" => Some(bstr(m.find_mount(idx, key)?.dest.as_bytes())),
        "container.mount.mode" => Some(bstr(m.find_mount(idx, key)?.mode.as_bytes())),
        "container.mount.rdwr" => Some(sstr(if m.find_mount(idx, key)?.rdwr {
            "true"
        } else {
            "false"
        })),
        "container.mount.propagation" => Some(bstr(m.find_mount(idx, key)?.propagation.as_bytes())),
        "container.healthcheck" => s(&m.healthcheck),
        "container.liveness_probe" => s(&m.liveness_probe),
        "container.readiness_probe" => s(&m.readiness_probe),
        "container.start_ts" => (m.start_ts > 0).then_some(Value::U64(m.start_ts)),
        "container.duration" => (m.start_ts > 0).then(|| Value::U64(ts.saturating_sub(m.start_ts))),
        "container.ip" => s(&m.ip),
        "container.cni.json" => s(&m.cni_json),
        "container.host_pid" => m.host_pid.map(Value::Bool),
        "container.host_network" => m.host_network.map(Value::Bool),
        "container.host_ipc" => m.host_ipc.map(Value::Bool),
        "container.label" => Some(Value::Str(Cow::Borrowed(m.label(key?)?.as_bytes()))),
        "container.labels" => Some(labels(&m.labels)),
        "k8s.pod.name" => s(&m.pod_name),
        "k8s.ns.name" => s(&m.pod_namespace),
        "k8s.pod.id" | "k8s.pod.uid" => s(&m.pod_uid),
        "k8s.pod.sandbox_id" => {
            let v = m.pod_sandbox_id.as_bytes();
            (!v.is_empty()).then(|| bstr(&v[..v.len().min(12)]))
        }
        "k8s.pod.full_sandbox_id" => s(&m.pod_sandbox_id),
        "k8s.pod.label" => {
            let k = key?;
            m.pod_labels
                .iter()
                .find(|(lk, _)| lk == k)
                .map(|(_, v)| bstr(v.as_bytes()))
        }
        "k8s.pod.labels" => Some(labels(&m.pod_labels)),
        "k8s.pod.ip" => s(&m.pod_ip),
        "k8s.pod.cni.json" => s(&m.pod_cni_json),
        _ => None,
    }
}
