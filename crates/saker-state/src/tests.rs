//! Unit tests: state transitions and field families, on hand-built events.

use saker_event::{Event, FdInfo, FdType, ProcInfo, Snapshot, SockInfo, UserInfo};
use saker_fields::{lookup, EventView, FieldArg, FieldRef, Value};

use crate::{Config, State};

/// A parameter value for [`ev`]: integers take the table's width.
pub(crate) enum P<'a> {
    I(i64),
    S(&'a str),
    B(&'a [u8]),
}

/// Builds an exit event by parameter names; unnamed parameters stay empty.
pub(crate) fn ev(num: u64, etype: u16, tid: i64, params: &[(&str, P<'_>)]) -> Event {
    let info = saker_event::info(etype).unwrap();
    let mut e = Event::new(num, 1_000_000_000 * num, tid, 0, etype);
    for pi in info.params {
        match params.iter().find(|(n, _)| *n == pi.name) {
            Some((_, P::I(v))) => {
                let w = pi.ty.fixed_size().unwrap_or(8);
                e.push_param(&v.to_le_bytes()[..w]);
            }
            Some((_, P::S(s))) => {
                let mut b = s.as_bytes().to_vec();
                b.push(0);
                e.push_param(&b);
            }
            Some((_, P::B(b))) => e.push_param(b),
            None => e.push_param(&[]),
        }
    }
    e
}

pub(crate) fn field(name: &str) -> FieldRef {
    let (base, arg) = match name.find('[') {
        Some(i) => {
            let inner = &name[i + 1..name.len() - 1];
            let arg = inner
                .parse()
                .map_or(FieldArg::Key(inner.into()), FieldArg::Index);
            (&name[..i], arg)
        }
        None => match (
            name.strip_prefix("evt.arg."),
            name.strip_prefix("evt.rawarg."),
        ) {
            (Some(k), _) => ("evt.arg", FieldArg::Key(k.into())),
            (_, Some(k)) => ("evt.rawarg", FieldArg::Key(k.into())),
            _ => (name, FieldArg::None),
        },
    };
    FieldRef::new(
        lookup(base).unwrap_or_else(|| panic!("no field {base}")),
        arg,
    )
}

/// Text of a field (`<NA>` when missing), as outputs show it.
pub(crate) fn txt(v: &impl EventView, name: &str) -> String {
    fn one(v: &Value<'_>) -> String {
        match v {
            Value::Str(s) | Value::Buf(s) => String::from_utf8_lossy(s).into_owned(),
            Value::U64(x) => x.to_string(),
            Value::I64(x) => x.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Ip(i) => i.to_string(),
            Value::Net(a, p) => format!("{a}/{p}"),
            Value::List(l) => format!("({})", l.iter().map(one).collect::<Vec<_>>().join(",")),
        }
    }
    v.extract(&field(name)).map_or("<NA>".into(), |x| one(&x))
}

pub(crate) fn proc(tid: i64, pid: i64, ptid: i64, comm: &str) -> ProcInfo {
    ProcInfo {
        tid,
        pid,
        ptid,
        comm: comm.as_bytes().to_vec(),
        exe: comm.as_bytes().to_vec(),
        exepath: format!("/usr/bin/{comm}").into_bytes(),
        cwd: b"/home/bob".to_vec(),
        uid: 1000,
        gid: 1000,
        loginuid: u32::MAX,
        sid: 10,
        vpgid: 10,
        vpid: pid,
        vtid: tid,
        ..ProcInfo::default()
    }
}

pub(crate) fn seeded() -> State {
    let mut st = State::new(Config::default());
    let mut snap = Snapshot {
        hostname: Some("box".into()),
        procs: vec![
            proc(1, 1, 0, "systemd"),
            proc(10, 10, 1, "sshd"),
            proc(20, 20, 10, "bash"),
        ],
        users: vec![UserInfo {
            uid: 1000,
            gid: 1000,
            name: b"bob".to_vec(),
            homedir: b"/home/bob".to_vec(),
            shell: b"/bin/bash".to_vec(),
        }],
        ..Snapshot::default()
    };
    snap.procs[1].uid = 0;
    snap.fds.push((
        20,
        FdInfo {
            fd: 0,
            ino: 5,
            ty: FdType::File,
            open_flags: 1,
            dev: 0,
            name: b"/dev/pts/0".to_vec(),
            sock: SockInfo::None,
        },
    ));
    st.seed(&snap);
    st
}

#[test]
fn seed_gives_process_user_and_ancestry_fields() {
    let mut st = seeded();
    let e = ev(1, 5, 20, &[("res", P::I(-9)), ("fd", P::I(7))]);
    let c = st.process(&e);
    assert_eq!(txt(&c, "proc.name"), "bash");
    assert_eq!(txt(&c, "proc.pname"), "sshd");
    assert_eq!(txt(&c, "proc.aname[2]"), "systemd");
    assert_eq!(txt(&c, "proc.aname[3]"), "<NA>");
    assert_eq!(txt(&c, "proc.aname"), "(sshd,systemd)");
    assert_eq!(txt(&c, "proc.apid"), "(10,1)");
    assert_eq!(txt(&c, "proc.cwd"), "/home/bob/");
    assert_eq!(txt(&c, "proc.sname"), "sshd");
    assert_eq!(txt(&c, "proc.vpgid.name"), "sshd");
    assert_eq!(txt(&c, "proc.stdin.name"), "/dev/pts/0");
    assert_eq!(txt(&c, "proc.stdin.type"), "file");
    assert_eq!(txt(&c, "user.name"), "bob");
    assert_eq!(txt(&c, "user.homedir"), "/home/bob");
    assert_eq!(txt(&c, "user.loginuid"), "-1");
    assert_eq!(txt(&c, "user.loginname"), "<NA>");
    assert_eq!(txt(&c, "group.gid"), "1000");
    assert_eq!(txt(&c, "container.id"), "host");
    assert_eq!(txt(&c, "container.name"), "host");
    assert_eq!(txt(&c, "container.image.repository"), "<NA>");
    assert_eq!(txt(&c, "evt.type"), "close");
    assert_eq!(txt(&c, "evt.dir"), "<");
    assert_eq!(txt(&c, "evt.res"), "EBADF");
    assert_eq!(txt(&c, "evt.rawres"), "-9");
    assert_eq!(txt(&c, "evt.failed"), "true");
    assert_eq!(txt(&c, "evt.hostname"), "box");
    assert_eq!(txt(&c, "evt.num"), "1");
    assert_eq!(txt(&c, "fd.num"), "7");
    assert_eq!(txt(&c, "fd.name"), "");
    assert_eq!(txt(&c, "thread.ismain"), "true");
    st.finish();
    // The parent of a process in the same session: sid leader is sshd (pid 10).
    let e = ev(2, 5, 10, &[("res", P::I(0)), ("fd", P::I(3))]);
    let c = st.process(&e);
    assert_eq!(txt(&c, "user.name"), "root");
    assert_eq!(txt(&c, "proc.is_sid_leader"), "true");
}

#[test]
fn openat_resolves_paths_and_close_is_deferred() {
    let mut st = seeded();
    let e = ev(
        1,
        307,
        20,
        &[
            ("fd", P::I(3)),
            ("dirfd", P::I(-100)),
            ("name", P::S("../alice/./notes.txt")),
            ("flags", P::I(1 | 4096)),
            ("mode", P::I(0)),
            ("dev", P::I(0x803)),
            ("ino", P::I(42)),
        ],
    );
    let c = st.process(&e);
    assert_eq!(txt(&c, "fd.name"), "/home/alice/notes.txt");
    assert_eq!(txt(&c, "fd.nameraw"), "../alice/./notes.txt");
    assert_eq!(txt(&c, "fd.directory"), "/home/alice");
    assert_eq!(txt(&c, "fd.filename"), "notes.txt");
    assert_eq!(txt(&c, "fd.typechar"), "f");
    assert_eq!(txt(&c, "fd.type"), "file");
    assert_eq!(txt(&c, "fd.ino"), "42");
    assert_eq!(txt(&c, "fd.dev.major"), "8");
    assert_eq!(txt(&c, "fd.dev.minor"), "3");
    assert_eq!(txt(&c, "evt.arg.fd"), "<f>/home/alice/notes.txt");
    assert_eq!(txt(&c, "evt.arg.name"), "/home/alice/notes.txt");
    assert_eq!(txt(&c, "evt.arg.flags"), "O_RDONLY|O_CLOEXEC");
    assert_eq!(txt(&c, "evt.arg.dirfd"), "AT_FDCWD");
    assert_eq!(txt(&c, "evt.is_open_read"), "true");
    assert_eq!(txt(&c, "evt.is_open_write"), "false");
    assert_eq!(txt(&c, "evt.abspath"), "/home/alice/notes.txt");
    assert_eq!(txt(&c, "fs.path.name"), "/home/alice/notes.txt");
    assert_eq!(txt(&c, "evt.category"), "file");
    let args = txt(&c, "evt.args");
    assert!(args.starts_with("fd=3(<f>/home/alice/notes.txt) dirfd=AT_FDCWD name=../alice/./notes.txt(/home/alice/notes.txt) flags=4097(O_RDONLY|O_CLOEXEC)"), "{args}");
    st.finish();
    // A directory fd as dirfd, then close: the close event still sees the fd.
    let d = ev(
        2,
        307,
        20,
        &[
            ("fd", P::I(4)),
            ("dirfd", P::I(-100)),
            ("name", P::S("/etc")),
            ("flags", P::I(1024 | 1)),
        ],
    );
    assert_eq!(txt(&st.process(&d), "fd.typechar"), "d");
    st.finish();
    let o = ev(
        3,
        307,
        20,
        &[
            ("fd", P::I(5)),
            ("dirfd", P::I(4)),
            ("name", P::S("passwd")),
            ("flags", P::I(1)),
        ],
    );
    assert_eq!(txt(&st.process(&o), "fd.name"), "/etc/passwd");
    st.finish();
    let cl = ev(4, 5, 20, &[("res", P::I(0)), ("fd", P::I(5))]);
    assert_eq!(txt(&st.process(&cl), "fd.name"), "/etc/passwd");
    st.finish();
    assert!(st.fd(20, 5).is_none());
    assert_eq!(st.fd(20, 4).unwrap().name, b"/etc");
    // Failed open: no fd, the path comes from the parameters.
    let f = ev(
        5,
        307,
        20,
        &[
            ("fd", P::I(-2)),
            ("dirfd", P::I(-100)),
            ("name", P::S("x/y")),
            ("flags", P::I(2)),
        ],
    );
    let c = st.process(&f);
    assert_eq!(txt(&c, "fd.name"), "/home/bob/x/y");
    assert_eq!(txt(&c, "fd.directory"), "/home/bob/x");
    assert_eq!(txt(&c, "fd.typechar"), "f");
    assert_eq!(txt(&c, "evt.res"), "ENOENT");
    assert_eq!(txt(&c, "evt.arg.fd"), "ENOENT");
    let cnt = st.counters();
    assert_eq!(cnt.fds, 3);
    assert_eq!(cnt.fds_removed, 1);
}

fn clone_ev(num: u64, tid: i64, res: i64, pid: i64, ptid: i64, comm: &str, flags: i64) -> Event {
    ev(
        num,
        223,
        tid,
        &[
            ("res", P::I(res)),
            ("exe", P::S(comm)),
            ("args", P::B(b"-c\0ls\0")),
            ("tid", P::I(tid)),
            ("pid", P::I(pid)),
            ("ptid", P::I(ptid)),
            ("cwd", P::S("/home/bob")),
            ("comm", P::S(comm)),
            ("cgroups", P::B(b"cpu=/\0")),
            ("flags", P::I(flags)),
            ("uid", P::I(1000)),
            ("gid", P::I(1000)),
            ("vtid", P::I(tid)),
            ("vpid", P::I(pid)),
        ],
    )
}

#[test]
fn clone_exec_and_exit_maintain_the_tree() {
    let mut st = seeded();
    // bash forks 30: caller side creates the child with a copy of the fd table.
    let c = clone_ev(1, 20, 30, 20, 10, "bash", 0);
    st.process(&c);
    st.finish();
    let child = st.thread(30).unwrap();
    assert_eq!((child.pid, child.ptid), (30, 20));
    assert_eq!(child.clone_ts, 1_000_000_000);
    assert_eq!(st.fd(30, 0).unwrap().name, b"/dev/pts/0");
    // A thread of 30 shares its fd table.
    st.process(&clone_ev(2, 30, 31, 30, 20, "bash", 8192 | 1));
    st.finish();
    assert_eq!(st.thread(31).unwrap().pid, 30);
    // exec in 30: cloexec fds go, identity changes.
    let o = ev(
        3,
        307,
        31,
        &[
            ("fd", P::I(9)),
            ("dirfd", P::I(-100)),
            ("name", P::S("/tmp/a")),
            ("flags", P::I(1 | 4096)),
        ],
    );
    st.process(&o);
    st.finish();
    assert!(st.fd(30, 9).is_some());
    let cg =
        b"cpu=/\0memory=/docker/3f1e2d4c5b6a79881726354453627180a9b8c7d6e5f40312a1b2c3d4e5f60718\0";
    let x = ev(
        4,
        293,
        30,
        &[
            ("res", P::I(0)),
            ("exe", P::S("cat")),
            ("args", P::B(b"/etc/shadow\0")),
            ("tid", P::I(30)),
            ("pid", P::I(30)),
            ("ptid", P::I(20)),
            ("cwd", P::S("/home/bob")),
            ("comm", P::S("cat")),
            ("cgroups", P::B(cg)),
            ("env", P::B(b"HOME=/home/bob\0TERM=xterm\0")),
            ("tty", P::I(34816)),
            ("loginuid", P::I(1000)),
            ("flags", P::I(1 | 2)),
            ("cap_effective", P::I(1 << 21)),
            ("cap_permitted", P::I(3)),
            ("cap_inheritable", P::I(0)),
            ("uid", P::I(0)),
            ("gid", P::I(0)),
            ("trusted_exepath", P::S("/usr/bin/cat")),
        ],
    );
    let c = st.process(&x);
    assert_eq!(txt(&c, "proc.name"), "cat");
    assert_eq!(txt(&c, "proc.cmdline"), "cat /etc/shadow");
    assert_eq!(txt(&c, "proc.args"), "/etc/shadow");
    assert_eq!(txt(&c, "proc.args[0]"), "/etc/shadow");
    assert_eq!(txt(&c, "proc.args[1]"), "");
    assert_eq!(txt(&c, "proc.exepath"), "/usr/bin/cat");
    assert_eq!(txt(&c, "proc.pname"), "bash");
    assert_eq!(txt(&c, "proc.pcmdline"), "bash");
    assert_eq!(txt(&c, "proc.aname[2]"), "sshd");
    assert_eq!(txt(&c, "proc.env[TERM]"), "xterm");
    assert_eq!(txt(&c, "proc.env"), "HOME=/home/bob TERM=xterm");
    assert_eq!(txt(&c, "proc.tty"), "34816");
    assert_eq!(txt(&c, "proc.is_exe_writable"), "true");
    assert_eq!(txt(&c, "proc.is_exe_upper_layer"), "true");
    assert_eq!(txt(&c, "proc.is_exe_from_memfd"), "false");
    assert_eq!(txt(&c, "thread.cap_effective"), "CAP_SYS_ADMIN");
    assert_eq!(
        txt(&c, "thread.cap_permitted"),
        "CAP_CHOWN CAP_DAC_OVERRIDE"
    );
    assert_eq!(txt(&c, "user.name"), "root");
    assert_eq!(txt(&c, "user.loginname"), "bob");
    assert_eq!(txt(&c, "container.id"), "3f1e2d4c5b6a");
    assert_eq!(txt(&c, "container.full_id").len(), 64);
    assert_eq!(txt(&c, "container.name"), "<NA>");
    assert_eq!(txt(&c, "proc.duration"), "3000000000");
    assert_eq!(txt(&c, "thread.cgroup[memory]").len(), 72);
    st.finish();
    assert!(st.fd(30, 9).is_none(), "cloexec fd survived exec");
    assert!(st.thread(31).is_none(), "other threads survive exec");
    assert!(st.fd(30, 0).is_some());
    // Container metadata, once known, is extracted.
    st.set_container_meta(
        b"3f1e2d4c5b6a79881726354453627180a9b8c7d6e5f40312a1b2c3d4e5f60718",
        crate::ContainerMeta {
            name: "web".into(),
            image_repository: "docker.io/library/nginx".into(),
            privileged: Some(true),
            pod_name: "web-0".into(),
            ..Default::default()
        },
    );
    let e = ev(5, 5, 30, &[("res", P::I(0)), ("fd", P::I(0))]);
    let c = st.process(&e);
    assert_eq!(txt(&c, "container.name"), "web");
    assert_eq!(
        txt(&c, "container.image.repository"),
        "docker.io/library/nginx"
    );
    assert_eq!(txt(&c, "container.privileged"), "true");
    assert_eq!(txt(&c, "k8s.pod.name"), "web-0");
    assert_eq!(txt(&c, "k8s.ns.name"), "<NA>");
    st.finish();
    // bash exits: 30 is re-parented to the reaper, bash's entry goes after the event.
    let px = ev(6, 186, 20, &[("status", P::I(0)), ("reaper_tid", P::I(1))]);
    let c = st.process(&px);
    assert_eq!(txt(&c, "proc.name"), "bash");
    st.finish();
    assert!(st.thread(20).is_none());
    assert_eq!(st.thread(30).unwrap().ptid, 1);
    assert!(st.fds_of(20).is_none());
    let e = ev(7, 5, 30, &[("res", P::I(0)), ("fd", P::I(0))]);
    assert_eq!(txt(&st.process(&e), "proc.pname"), "systemd");
}

#[test]
fn child_side_clone_and_missing_threads() {
    let mut st = seeded();
    // Child inside a container reports itself (res 0); its parent is known.
    st.process(&clone_ev(1, 40, 0, 40, 20, "bash", 1 << 29));
    st.finish();
    let t = st.thread(40).unwrap();
    assert_eq!((t.pid, t.ptid), (40, 20));
    assert_eq!(st.fd(40, 0).unwrap().name, b"/dev/pts/0");
    // Caller side with CHILD_IN_PIDNS does not create the child.
    st.process(&clone_ev(2, 20, 77, 20, 10, "bash", 1 << 29));
    st.finish();
    assert!(st.thread(77).is_none());
    // An unknown thread gets a stub: proc.name <NA>, user <NA>.
    let e = ev(3, 5, 999, &[("res", P::I(0)), ("fd", P::I(1))]);
    let c = st.process(&e);
    assert_eq!(txt(&c, "proc.name"), "<NA>");
    assert_eq!(txt(&c, "proc.pname"), "<NA>");
    assert_eq!(txt(&c, "user.name"), "<NA>");
    st.finish();
    assert_eq!(st.counters().failed_thread_lookups, 1);
}

#[test]
fn sockets_connect_accept_and_io() {
    let mut st = seeded();
    let s = ev(
        1,
        19,
        20,
        &[
            ("fd", P::I(3)),
            ("domain", P::I(2)),
            ("type", P::I(1)),
            ("proto", P::I(0)),
        ],
    );
    st.process(&s);
    st.finish();
    let mut tuple = vec![2u8, 10, 0, 0, 5];
    tuple.extend_from_slice(&40000u16.to_le_bytes());
    tuple.extend_from_slice(&[93, 184, 216, 34]);
    tuple.extend_from_slice(&443u16.to_le_bytes());
    let c = ev(
        2,
        23,
        20,
        &[
            ("res", P::I(-115)),
            ("tuple", P::B(&tuple)),
            ("fd", P::I(3)),
        ],
    );
    let v = st.process(&c);
    assert_eq!(txt(&v, "fd.name"), "10.0.0.5:40000->93.184.216.34:443");
    assert_eq!(txt(&v, "fd.sip"), "93.184.216.34");
    assert_eq!(txt(&v, "fd.sport"), "443");
    assert_eq!(txt(&v, "fd.cip"), "10.0.0.5");
    assert_eq!(txt(&v, "fd.lport"), "40000");
    assert_eq!(txt(&v, "fd.rip"), "93.184.216.34");
    assert_eq!(txt(&v, "fd.l4proto"), "tcp");
    assert_eq!(txt(&v, "fd.sockfamily"), "ip");
    assert_eq!(txt(&v, "fd.typechar"), "4");
    assert_eq!(txt(&v, "fd.connected"), "true");
    assert_eq!(txt(&v, "fd.is_server"), "false");
    assert_eq!(txt(&v, "fd.name_changed"), "true");
    assert_eq!(txt(&v, "fd.ip"), "(10.0.0.5,93.184.216.34)");
    assert_eq!(txt(&v, "fd.sproto"), "https");
    assert_eq!(
        txt(&v, "evt.arg.fd"),
        "<4t>10.0.0.5:40000->93.184.216.34:443"
    );
    assert_eq!(txt(&v, "evt.res"), "EINPROGRESS");
    st.finish();
    let w = ev(
        3,
        9,
        20,
        &[
            ("res", P::I(5)),
            ("data", P::B(b"hello")),
            ("fd", P::I(3)),
            ("size", P::I(5)),
        ],
    );
    let v = st.process(&w);
    assert_eq!(txt(&v, "fd.name_changed"), "false");
    assert_eq!(txt(&v, "evt.buffer"), "hello");
    assert_eq!(txt(&v, "evt.buflen"), "5");
    assert_eq!(txt(&v, "evt.is_io_write"), "true");
    assert_eq!(txt(&v, "evt.io_dir"), "w");
    st.finish();
    // Server: accept gives a server-side fd; local is the server end.
    let a = ev(4, 247, 10, &[("fd", P::I(6)), ("tuple", P::B(&tuple))]);
    let v = st.process(&a);
    assert_eq!(txt(&v, "fd.is_server"), "true");
    assert_eq!(txt(&v, "fd.lip"), "93.184.216.34");
    assert_eq!(txt(&v, "fd.rport"), "40000");
    assert_eq!(txt(&v, "fd.num"), "6");
    st.finish();
    // dup2 and pipe.
    let d = ev(
        5,
        363,
        20,
        &[("res", P::I(1)), ("oldfd", P::I(3)), ("newfd", P::I(1))],
    );
    st.process(&d);
    st.finish();
    assert_eq!(
        st.fd(20, 1).unwrap().name,
        b"10.0.0.5:40000->93.184.216.34:443"
    );
    let p = ev(
        6,
        61,
        20,
        &[
            ("res", P::I(0)),
            ("fd1", P::I(7)),
            ("fd2", P::I(8)),
            ("ino", P::I(99)),
        ],
    );
    st.process(&p);
    st.finish();
    assert_eq!(st.fd(20, 8).unwrap().ty, FdType::Fifo);
    assert_eq!(st.fd(20, 7).unwrap().ino, 99);
}

#[test]
fn uid_changes_cwd_and_rendering() {
    let mut st = seeded();
    let e = ev(1, 199, 20, &[("res", P::I(0)), ("uid", P::I(0))]);
    let c = st.process(&e);
    assert_eq!(txt(&c, "evt.arg.uid"), "root");
    assert_eq!(txt(&c, "user.uid"), "0");
    assert_eq!(txt(&c, "evt.rawarg.uid"), "0");
    st.finish();
    let e = ev(
        2,
        193,
        20,
        &[
            ("res", P::I(0)),
            ("ruid", P::I(5)),
            ("euid", P::I(1000)),
            ("suid", P::I(5)),
        ],
    );
    let c = st.process(&e);
    assert_eq!(txt(&c, "user.name"), "bob");
    assert_eq!(txt(&c, "evt.arg.ruid"), "<NA>");
    st.finish();
    let e = ev(3, 95, 20, &[("res", P::I(0)), ("path", P::S("../../tmp"))]);
    let c = st.process(&e);
    assert_eq!(txt(&c, "proc.cwd"), "/tmp/");
    st.finish();
    let e = ev(4, 275, 20, &[("res", P::I(20))]);
    st.process(&e);
    st.finish();
    assert_eq!(st.thread(20).unwrap().sid, 20);
    let e = ev(5, 285, 20, &[("res", P::I(0)), ("flags", P::I(1 << 20))]);
    st.process(&e);
    st.finish();
    assert!(st.thread(20).unwrap().cap_effective.count_ones() >= 40);
}

#[test]
fn thread_limit_is_enforced_and_counted() {
    let mut st = State::new(Config {
        max_threads: 2,
        ..Config::default()
    });
    for tid in [1, 2, 3] {
        let e = ev(tid as u64, 5, tid, &[("res", P::I(0)), ("fd", P::I(0))]);
        st.process(&e);
        st.finish();
    }
    let c = st.counters();
    assert_eq!(c.threads, 2);
    assert_eq!(c.threads_dropped, 1);
    assert_eq!(c.failed_thread_lookups, 3);
}

#[test]
fn live_mode_reads_missing_threads_from_proc() {
    let mut st = State::new(Config {
        proc_lookup: true,
        ..Config::default()
    });
    let me = std::process::id() as i64;
    let e = ev(1, 5, me, &[("res", P::I(0)), ("fd", P::I(0))]);
    let c = st.process(&e);
    let comm = std::fs::read_to_string("/proc/self/comm").unwrap();
    assert_eq!(txt(&c, "proc.name"), comm.trim_end());
    assert_eq!(txt(&c, "proc.pid"), me.to_string());
    let exe = std::fs::read_link("/proc/self/exe").unwrap();
    assert_eq!(txt(&c, "proc.exepath"), exe.to_string_lossy());
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(txt(&c, "proc.cwd"), format!("{}/", cwd.display()));
    assert_ne!(txt(&c, "proc.ppid"), "-1");
}

#[test]
fn time_fields_and_pid_rendering() {
    let mut st = seeded();
    let e1 = ev(1, 5, 20, &[("res", P::I(0)), ("fd", P::I(0))]);
    st.process(&e1);
    st.finish();
    // kill(10, SIGTERM): the pid renders as the target's name.
    let mut k = ev(
        3,
        129,
        20,
        &[("res", P::I(0)), ("pid", P::I(10)), ("sig", P::I(15))],
    );
    k.ts = 3_500_000_123;
    let c = st.process(&k);
    assert_eq!(txt(&c, "evt.arg.pid"), "sshd");
    assert_eq!(txt(&c, "evt.arg.sig"), "SIGTERM");
    assert_eq!(txt(&c, "evt.rawarg.pid"), "10");
    assert_eq!(txt(&c, "evt.rawtime"), "3500000123");
    assert_eq!(txt(&c, "evt.rawtime.s"), "3");
    assert_eq!(txt(&c, "evt.rawtime.ns"), "500000123");
    assert_eq!(txt(&c, "evt.reltime"), "2500000123");
    assert_eq!(txt(&c, "evt.deltatime"), "2500000123");
    assert_eq!(txt(&c, "evt.arg.nosuch"), "<NA>");
    assert_eq!(txt(&c, "fd.name"), "<NA>");
    assert_eq!(txt(&c, "fd.num"), "<NA>");
    assert_eq!(txt(&c, "evt.count"), "1");
    assert_eq!(txt(&c, "evt.type.is[kill]"), "1");
}

#[test]
fn snapshot_sockets_and_rename_paths() {
    let mut st = seeded();
    let mut snap = Snapshot::default();
    snap.fds.push((
        10,
        FdInfo {
            fd: 3,
            ino: 0,
            ty: FdType::Ipv4ServSock,
            open_flags: 0,
            dev: 0,
            name: Vec::new(),
            sock: SockInfo::IpServer {
                ip: "0.0.0.0".parse().unwrap(),
                port: 22,
                l4proto: crate::types::l4::TCP,
            },
        },
    ));
    st.seed(&snap);
    let e = ev(
        1,
        25,
        10,
        &[("res", P::I(0)), ("fd", P::I(3)), ("backlog", P::I(5))],
    );
    let c = st.process(&e);
    assert_eq!(txt(&c, "fd.name"), "0.0.0.0:22");
    assert_eq!(txt(&c, "fd.sport"), "22");
    assert_eq!(txt(&c, "fd.is_server"), "true");
    assert_eq!(txt(&c, "fd.cip"), "<NA>");
    assert_eq!(txt(&c, "fd.l4proto"), "tcp");
    assert_eq!(txt(&c, "evt.arg.fd"), "<4t>0.0.0.0:22");
    st.finish();
    let r = ev(
        2,
        177,
        20,
        &[
            ("res", P::I(0)),
            ("olddirfd", P::I(-100)),
            ("oldpath", P::S("a.txt")),
            ("newdirfd", P::I(-100)),
            ("newpath", P::S("/tmp/b.txt")),
        ],
    );
    let c = st.process(&r);
    assert_eq!(txt(&c, "fs.path.source"), "/home/bob/a.txt");
    assert_eq!(txt(&c, "fs.path.sourceraw"), "a.txt");
    assert_eq!(txt(&c, "fs.path.target"), "/tmp/b.txt");
    assert_eq!(txt(&c, "evt.abspath[src]"), "/home/bob/a.txt");
    assert_eq!(txt(&c, "evt.arg.oldpath"), "/home/bob/a.txt");
    assert_eq!(txt(&c, "fs.path.name"), "<NA>");
}
