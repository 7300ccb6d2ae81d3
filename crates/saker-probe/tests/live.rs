//! Live tests: load the probe, cause real syscalls, check the events.
//! They need root and kernel BTF: marked `#[ignore = "needs root"]`, run by `make test`
//! (`--include-ignored`), and failing with the reason where root or BTF is absent.

use saker_event::Event;
use saker_probe::{check_environment, AttachMode, Family, Probe, ProbeConfig, ProbeError, Variant};
use std::ffi::CString;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

fn probe(syscalls: &[&str]) -> Probe {
    probe_with(ProbeConfig {
        state_set: false,
        ..ProbeConfig::for_event_types(syscalls.iter().copied())
    })
}

fn probe_with(cfg: ProbeConfig) -> Probe {
    ready();
    Probe::load(&cfg).unwrap_or_else(|e| panic!("load: {e}"))
}

/// These tests are `#[ignore = "needs root"]`: asked for (`make test` runs them as root) on a
/// machine that cannot run them, they fail with the reason instead of passing.
fn ready() {
    if let Err(e) = check_environment() {
        panic!("the live probe tests need root and kernel BTF: {e}");
    }
}

/// Polls until `done` holds on the events collected so far (or 5 s pass).
fn collect(p: &mut Probe, mut done: impl FnMut(&[Event]) -> bool) -> Vec<Event> {
    let mut evs = Vec::new();
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        p.poll(Duration::from_millis(50), |e| {
            // Every event the probe emits must match the event table.
            if let Err(msg) = saker_probe::validate(e) {
                panic!("malformed event: {msg}");
            }
            evs.push(e.clone())
        })
        .unwrap();
        if done(&evs) {
            break;
        }
    }
    evs
}

fn i64p(e: &Event, i: usize) -> i64 {
    i64::from_le_bytes(e.param(i).unwrap().try_into().unwrap())
}
fn u32p(e: &Event, i: usize) -> u32 {
    u32::from_le_bytes(e.param(i).unwrap().try_into().unwrap())
}
fn strp(e: &Event, i: usize) -> String {
    let b = e.param(i).unwrap();
    assert_eq!(
        b.last(),
        Some(&0),
        "param {i} of event {} must end with NUL",
        e.etype
    );
    String::from_utf8_lossy(&b[..b.len() - 1]).into_owned()
}
fn gettid() -> i64 {
    // SAFETY: no preconditions.
    unsafe { libc::syscall(libc::SYS_gettid) }
}
fn tmpdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("saker-probe-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
fn cstr(s: &std::path::Path) -> CString {
    CString::new(s.as_os_str().as_encoded_bytes()).unwrap()
}

#[test]
#[ignore = "needs root"]
fn openat_reports_caller_path_dirfd_flags_and_inode() {
    let mut p = probe(&["openat"]);
    let dir = tmpdir("openat");
    let cdir = cstr(&dir);
    // SAFETY: valid C strings; fds closed below.
    let (dfd, fd) = unsafe {
        let dfd = libc::open(cdir.as_ptr(), libc::O_RDONLY | libc::O_DIRECTORY);
        let fd = libc::openat(
            dfd,
            c"f.txt".as_ptr(),
            libc::O_CREAT | libc::O_WRONLY,
            0o640,
        );
        (dfd, fd)
    };
    assert!(fd >= 0);
    let me = gettid();
    let evs = collect(&mut p, |evs| {
        evs.iter()
            .any(|e| e.etype == 307 && e.tid == me && i64p(e, 0) == fd as i64)
    });
    let e = evs
        .iter()
        .find(|e| e.etype == 307 && e.tid == me && i64p(e, 0) == fd as i64)
        .expect("openat exit event");
    assert_eq!(e.nparams(), 7);
    assert_eq!(i64p(e, 1), dfd as i64, "dirfd");
    let path = dir.join("f.txt");
    // As the caller passed it; user space resolves it against the dirfd's name.
    assert_eq!(strp(e, 2), "f.txt", "name is the caller's path");
    let flags = u32p(e, 3);
    assert_eq!(flags & 3, 2, "PPM_O_WRONLY");
    assert_ne!(flags & (1 << 2), 0, "PPM_O_CREAT");
    assert_ne!(flags & (1 << 14), 0, "PPM_O_F_CREATED");
    assert_eq!(u32p(e, 4), 0o640, "mode");
    let md = std::fs::metadata(&path).unwrap();
    assert_eq!(i64p(e, 6) as u64, md.ino(), "ino");
    assert_ne!(u32p(e, 5), 0, "dev");
    // SAFETY: fds opened above.
    unsafe {
        libc::close(fd);
        libc::close(dfd);
    }
    // A failed open carries the user's string and no inode.
    let missing = cstr(&dir.join("nope/x"));
    // SAFETY: valid C string.
    let r = unsafe { libc::openat(libc::AT_FDCWD, missing.as_ptr(), libc::O_RDONLY) };
    assert_eq!(r, -1);
    let evs = collect(&mut p, |evs| {
        evs.iter().any(|e| e.etype == 307 && e.tid == me)
    });
    let e = evs.iter().find(|e| e.etype == 307 && e.tid == me).unwrap();
    assert_eq!(i64p(e, 0), -(libc::ENOENT as i64));
    assert_eq!(i64p(e, 1), -100, "AT_FDCWD");
    assert_eq!(strp(e, 2), missing.to_string_lossy());
    assert_eq!(i64p(e, 6), 0);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs root"]
fn exec_clone_and_procexit_of_a_child() {
    let mut p = probe(&["execve", "clone", "clone3", "fork", "vfork"]);
    let me = std::process::id() as i64;
    // ptid is the kernel's real_parent: the thread that spawned the child.
    let spawner = gettid();
    let child = std::process::Command::new("/bin/true")
        .args(["alpha", "beta"])
        .spawn()
        .unwrap();
    let cpid = child.id() as i64;
    let mut child = child;
    child.wait().unwrap();
    let evs = collect(&mut p, |evs| {
        evs.iter().any(|e| e.etype == 186 && e.tid == cpid)
            && evs.iter().any(|e| e.etype == 293 && e.tid == cpid)
    });
    let exec = evs
        .iter()
        .find(|e| e.etype == 293 && e.tid == cpid)
        .expect("execve exit from the child");
    assert_eq!(exec.nparams(), 31);
    assert_eq!(i64p(exec, 0), 0);
    assert_eq!(strp(exec, 1), "/bin/true", "exe = argv[0]");
    assert_eq!(exec.param(2).unwrap(), b"alpha\0beta\0", "args");
    assert_eq!(i64p(exec, 3), cpid, "tid");
    assert_eq!(i64p(exec, 4), cpid, "pid");
    assert_eq!(i64p(exec, 5), spawner, "ptid");
    assert_eq!(strp(exec, 13), "true", "comm");
    let cg = String::from_utf8_lossy(exec.param(14).unwrap()).into_owned();
    assert!(
        cg.contains("memory=/") || cg.contains("unified=/"),
        "cgroups: {cg:?}"
    );
    // The probe and the /proc scan describe cgroups the same way (the child
    // runs in this process's cgroups).
    let scanned = saker_probe::procfs::read_cgroups(std::path::Path::new("/proc/self/cgroup"));
    for entry in exec
        .param(14)
        .unwrap()
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
    {
        assert!(
            scanned.iter().any(|s| s == entry),
            "{:?} not in {scanned:?}",
            String::from_utf8_lossy(entry)
        );
    }
    assert!(!exec.param(15).unwrap().is_empty(), "env");
    let exepath = strp(exec, 27);
    // The resolved executable (/bin/true may be a link, as to busybox in the kernel-matrix VMs).
    let real = std::fs::canonicalize("/bin/true").unwrap();
    assert_eq!(Path::new(&exepath), real, "trusted_exepath");
    assert_eq!(strp(exec, 30), "/bin/true", "filename");
    assert_ne!(i64p(exec, 23), 0, "exe_ino");
    assert_eq!(u32p(exec, 26), 0, "euid of root");

    let clone_types = [223u16, 225, 227, 335];
    let caller = evs
        .iter()
        .find(|e| clone_types.contains(&e.etype) && i64p(e, 0) == cpid)
        .expect("caller-side clone with res = child pid");
    assert_eq!(caller.nparams(), 21);
    assert_eq!(i64p(caller, 4), me, "caller pid");
    let child_side = evs
        .iter()
        .find(|e| clone_types.contains(&e.etype) && e.tid == cpid && i64p(e, 0) == 0)
        .expect("child-side clone with res 0");
    assert_eq!(i64p(child_side, 3), cpid);
    assert_eq!(i64p(child_side, 5), spawner, "child's ptid");
    assert_eq!(i64p(child_side, 18), cpid, "vtid in the host pid namespace");

    let exit = evs
        .iter()
        .find(|e| e.etype == 186 && e.tid == cpid)
        .unwrap();
    assert_eq!(exit.nparams(), 5);
    assert_eq!(i64p(exit, 0), 0, "status");
    assert!(exit.num > exec.num, "procexit after execve");
}

#[test]
#[ignore = "needs root"]
fn failed_execve_is_reported_from_sys_exit() {
    let mut p = probe(&["execve"]);
    let r = std::process::Command::new("/nonexistent-saker/prog")
        .arg("x")
        .spawn();
    assert!(r.is_err());
    let evs = collect(&mut p, |evs| {
        evs.iter()
            .any(|e| e.etype == 293 && e.param(30) == Some(b"/nonexistent-saker/prog\0"))
    });
    let e = evs
        .iter()
        .find(|e| e.etype == 293 && e.param(30) == Some(b"/nonexistent-saker/prog\0"))
        .expect("failed execve event");
    assert_eq!(i64p(e, 0), -(libc::ENOENT as i64));
    assert_eq!(strp(e, 1), "/nonexistent-saker/prog");
    assert_eq!(e.param(2).unwrap(), b"x\0");
}

#[test]
#[ignore = "needs root"]
fn symlink_and_chmod_carry_their_arguments() {
    let mut p = probe(&["symlink", "chmod"]);
    let dir = tmpdir("symlink");
    let link = dir.join("lnk");
    let file = dir.join("file");
    std::fs::write(&file, b"x").unwrap();
    let (cl, cf) = (cstr(&link), cstr(&file));
    // SAFETY: valid C strings.
    unsafe {
        assert_eq!(
            libc::syscall(libc::SYS_symlink, c"/etc".as_ptr(), cl.as_ptr()),
            0
        );
        assert_eq!(libc::syscall(libc::SYS_chmod, cf.as_ptr(), 0o4755), 0);
    }
    let me = gettid();
    let evs = collect(&mut p, |evs| {
        evs.iter()
            .filter(|e| e.tid == me && (e.etype == 179 || e.etype == 315))
            .count()
            == 2
    });
    let s = evs
        .iter()
        .find(|e| e.tid == me && e.etype == 179)
        .expect("symlink");
    assert_eq!(i64p(s, 0), 0);
    assert_eq!(strp(s, 1), "/etc");
    assert_eq!(strp(s, 2), link.to_string_lossy());
    let c = evs
        .iter()
        .find(|e| e.tid == me && e.etype == 315)
        .expect("chmod");
    assert_eq!(strp(c, 1), file.to_string_lossy());
    assert_eq!(u32p(c, 2), 0o4755);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
#[ignore = "needs root"]
fn connect_and_accept_carry_the_tuple() {
    let mut p = probe(&["connect", "accept", "accept4", "socket"]);
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let lport = s.local_addr().unwrap().port();
    let (_a, _) = l.accept().unwrap();
    let dport = |e: &Event| {
        e.param(1)
            .filter(|t| t.len() == 13)
            .map(|t| u16::from_le_bytes([t[11], t[12]]))
    };
    let evs = collect(&mut p, |evs| {
        evs.iter().any(|e| e.etype == 23 && dport(e) == Some(port))
            && evs
                .iter()
                .any(|e| matches!(e.etype, 247 | 389) && dport(e) == Some(port))
    });
    let c = evs
        .iter()
        .find(|e| e.etype == 23 && dport(e) == Some(port))
        .expect("connect");
    assert_eq!(i64p(c, 0), 0);
    let t = c.param(1).unwrap();
    assert_eq!(t[0], 2, "AF_INET");
    assert_eq!(&t[1..5], &[127, 0, 0, 1]);
    assert_eq!(u16::from_le_bytes([t[5], t[6]]), lport, "source port");
    assert_eq!(&t[7..11], &[127, 0, 0, 1]);
    let addr = c.param(3).unwrap();
    assert_eq!(addr.len(), 7);
    assert_eq!(addr[0], 2);
    assert_eq!(u16::from_le_bytes([addr[5], addr[6]]), port);
    let a = evs
        .iter()
        .find(|e| matches!(e.etype, 247 | 389) && dport(e) == Some(port))
        .expect("accept");
    let t = a.param(1).unwrap();
    assert_eq!(
        u16::from_le_bytes([t[5], t[6]]),
        lport,
        "accept tuple is remote→local"
    );
    assert!(i64p(a, 0) >= 0);
    let sock = evs.iter().find(|e| e.etype == 19 && e.tid == gettid());
    if let Some(sock) = sock {
        assert_eq!(u32p(sock, 1), 2, "domain AF_INET");
    }
}

#[test]
#[ignore = "needs root"]
fn unshare_and_setns_report_ppm_clone_flags() {
    let mut p = probe(&["unshare", "setns"]);
    let tid = std::thread::spawn(|| {
        let own = std::fs::File::open("/proc/thread-self/ns/uts").unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: plain syscalls on this thread's own namespaces.
        unsafe {
            assert_eq!(libc::unshare(libc::CLONE_NEWUTS), 0);
            assert_eq!(libc::setns(own.as_raw_fd(), libc::CLONE_NEWUTS), 0);
        }
        (gettid(), own.as_raw_fd() as i64)
    })
    .join()
    .unwrap();
    let evs = collect(&mut p, |evs| {
        evs.iter().filter(|e| e.tid == tid.0).count() >= 2
    });
    let u = evs
        .iter()
        .find(|e| e.tid == tid.0 && e.etype == 285)
        .expect("unshare");
    assert_eq!(i64p(u, 0), 0);
    assert_eq!(u32p(u, 1), 1 << 7, "PPM_CL_CLONE_NEWUTS");
    let s = evs
        .iter()
        .find(|e| e.tid == tid.0 && e.etype == 241)
        .expect("setns");
    assert_eq!(i64p(s, 1), tid.1);
    assert_eq!(u32p(s, 2), 1 << 7);
}

#[test]
#[ignore = "needs root"]
fn memfd_and_finit_module_fallback() {
    let mut p = probe(&["memfd_create", "finit_module"]);
    // SAFETY: valid C string; fd closed below.
    let fd = unsafe { libc::memfd_create(c"saker-test".as_ptr(), libc::MFD_CLOEXEC) };
    assert!(fd >= 0);
    // SAFETY: invalid fd on purpose; the call fails.
    let r = unsafe { libc::syscall(libc::SYS_finit_module, -1, c"".as_ptr(), 0) };
    assert_eq!(r, -1);
    let me = gettid();
    let evs = collect(&mut p, |evs| {
        evs.iter().any(|e| e.tid == me && e.etype == 405)
            && evs.iter().any(|e| e.tid == me && e.etype == 413)
    });
    let m = evs
        .iter()
        .find(|e| e.tid == me && e.etype == 405)
        .expect("memfd_create");
    assert_eq!(i64p(m, 0), fd as i64);
    assert_eq!(strp(m, 1), "saker-test");
    assert_eq!(u32p(m, 2), libc::MFD_CLOEXEC);
    let f = evs
        .iter()
        .find(|e| e.tid == me && e.etype == 413)
        .expect("finit_module (tracepoint or fallback)");
    assert!(i64p(f, 0) < 0);
    assert_eq!(i64p(f, 1), -1);
    // SAFETY: fd from memfd_create.
    unsafe { libc::close(fd) };
}

#[test]
#[ignore = "needs root"]
fn unselected_syscalls_run_no_program() {
    let mut p = probe(&["openat"]);
    let openat = if p.attach_mode() == AttachMode::Fexit {
        "f_openat"
    } else {
        "x_openat"
    };
    let mut expected = vec!["sched_exit", openat];
    expected.sort();
    assert_eq!(
        p.attached(),
        expected,
        "only the selected program and procexit"
    );
    let me = gettid();
    for _ in 0..1000 {
        // SAFETY: no preconditions.
        unsafe { libc::getpid() };
    }
    let _ = std::fs::File::open("/etc/hostname");
    let evs = collect(&mut p, |evs| {
        evs.iter().any(|e| e.tid == me && e.etype == 307)
    });
    let mine: Vec<u16> = evs
        .iter()
        .filter(|e| e.tid == me)
        .map(|e| e.etype)
        .collect();
    assert!(mine.contains(&307));
    assert!(
        mine.iter().all(|&t| t == 307),
        "only openat from this thread, got {mine:?}"
    );
    assert!(evs.iter().all(|e| e.etype == 307 || e.etype == 186));
}

#[test]
#[ignore = "needs root"]
fn drops_are_counted_per_cpu_and_spare_the_state_ring() {
    ready();
    let cfg = ProbeConfig {
        state_set: false,
        main_ring_bytes: 8192,
        ..ProbeConfig::for_event_types(["openat"])
    };
    let mut p = Probe::load(&cfg).unwrap();
    for _ in 0..5000 {
        let _ = std::fs::File::open("/etc/hostname");
    }
    // A child's exit goes to the state ring, which the flood cannot fill.
    let mut c = std::process::Command::new("/bin/true").spawn().unwrap();
    let cpid = c.id() as i64;
    c.wait().unwrap();
    let st = p.stats().unwrap();
    let open = st.family(Family::Open);
    assert!(open.events >= 5000, "events counted: {open:?}");
    assert!(
        open.drops_buffer > 0,
        "an 8 KiB ring must overflow: {open:?}"
    );
    assert!((0..st.per_cpu.len()).map(|c| st.cpu_drops(c)).sum::<u64>() == st.drops());
    assert_eq!(st.family(Family::Exit).drops_buffer, 0);
    let falco: std::collections::HashMap<_, _> = st.falco_counters().into_iter().collect();
    assert_eq!(falco["n_drops_buffer_open_exit"], open.drops_buffer);
    assert_eq!(falco["n_drops"], st.drops());
    assert!(falco["n_evts"] >= open.events);
    let evs = collect(&mut p, |evs| {
        evs.iter().any(|e| e.etype == 186 && e.tid == cpid)
    });
    assert!(
        evs.iter().any(|e| e.etype == 186 && e.tid == cpid),
        "procexit survived the flood"
    );
}

/// Every syscall selected, in generic mode (the module syscalls need the
/// generic hook here) and with per-syscall tracepoints only.
fn all_syscalls(generic: bool) -> Probe {
    let all: Vec<&str> = saker_probe::SYSCALLS.iter().map(|d| d.name).collect();
    let p = probe_with(ProbeConfig {
        state_set: false,
        generic_fallback: generic,
        attach: if generic {
            AttachMode::Generic
        } else {
            AttachMode::Tracepoint
        },
        ..ProbeConfig::for_event_types(all)
    });
    let no_tp: Vec<String> = saker_probe::SYSCALLS
        .iter()
        .filter(|d| !saker_probe::has_exit_tracepoint(d.tracepoint))
        .map(|d| d.name.to_string())
        .collect();
    if generic {
        assert!(
            p.unavailable().is_empty(),
            "unavailable: {:?}",
            p.unavailable()
        );
        assert!(p.attached().contains(&"sys_exit_dispatch".to_string()));
        assert!(!p.attached().iter().any(|a| a.starts_with("x_")));
    } else {
        let mut unavailable = p.unavailable().to_vec();
        unavailable.sort();
        let mut no_tp = no_tp;
        no_tp.sort();
        assert_eq!(unavailable, no_tp, "only syscalls without a tracepoint");
        assert!(!p.attached().contains(&"sys_exit_dispatch".to_string()));
    }
    p
}

#[test]
#[ignore = "needs root"]
fn every_program_loads_and_emits_table_conformant_events() {
    every_program(true);
}

#[test]
#[ignore = "needs root"]
fn every_classic_program_loads_and_emits_table_conformant_events() {
    every_program(false);
}

fn every_program(generic: bool) {
    let mut p = all_syscalls(generic);
    let dir = tmpdir("all");
    let script = "mkdir d && ln -s /etc/passwd d/l && ln d/l d/h && mv d/h d/h2 && chmod 600 d/h2 \
                  && chown 0:0 d/h2 && rm d/h2 d/l && rmdir d";
    let st = std::process::Command::new("/bin/sh")
        .args(["-c", script])
        .current_dir(&dir)
        .status()
        .unwrap();
    assert!(st.success());
    // A ptrace request on a process we do not trace fails, but is reported.
    // SAFETY: PEEKDATA on a non-traced pid only returns ESRCH.
    let r = unsafe { libc::ptrace(libc::PTRACE_PEEKDATA, 1, 0usize, 0usize) };
    assert_eq!(r, -1);
    let me = gettid();
    // collect() validates every event against the table.
    let evs = collect(&mut p, |evs| {
        evs.iter().any(|e| e.etype == 169 && e.tid == me)
    });
    let pt = evs
        .iter()
        .find(|e| e.etype == 169 && e.tid == me)
        .expect("ptrace event");
    assert_eq!(
        pt.param(3).unwrap(),
        3u16.to_le_bytes(),
        "PPM_PTRACE_PEEKDATA"
    );
    assert_eq!(i64p(pt, 4), 1);
    let seen: std::collections::BTreeSet<u16> = evs.iter().map(|e| e.etype).collect();
    // mkdir(at), symlink(at), link(at), rename*, chmod family, chown family, unlink(at), rmdir
    let groups: [&[u16]; 8] = [
        &[277, 305],
        &[179, 181],
        &[309, 311],
        &[175, 177, 319],
        &[315, 317, 313],
        &[379, 381, 383, 385],
        &[301, 303],
        &[279, 303],
    ];
    for g in groups {
        assert!(
            g.iter().any(|t| seen.contains(t)),
            "none of {g:?} in {seen:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Mounts an overlay with `true` copied into the lower and the upper layer.
struct Overlay {
    base: std::path::PathBuf,
    merged: std::path::PathBuf,
}

impl Overlay {
    fn new() -> Overlay {
        let base = tmpdir("ovl");
        for d in ["lower", "upper", "work", "merged"] {
            std::fs::create_dir_all(base.join(d)).unwrap();
        }
        std::fs::copy("/bin/true", base.join("lower/low-true")).unwrap();
        std::fs::copy("/bin/true", base.join("upper/up-true")).unwrap();
        let merged = base.join("merged");
        let opts = format!(
            "lowerdir={},upperdir={},workdir={}",
            base.join("lower").display(),
            base.join("upper").display(),
            base.join("work").display()
        );
        let (m, o) = (cstr(&merged), CString::new(opts).unwrap());
        // SAFETY: valid C strings.
        let r = unsafe {
            libc::mount(
                c"overlay".as_ptr(),
                m.as_ptr(),
                c"overlay".as_ptr(),
                0,
                o.as_ptr().cast(),
            )
        };
        assert_eq!(r, 0, "mount overlay: {}", std::io::Error::last_os_error());
        Overlay { base, merged }
    }
}

impl Drop for Overlay {
    fn drop(&mut self) {
        let m = cstr(&self.merged);
        // SAFETY: valid C string; detaching our own mount.
        unsafe { libc::umount2(m.as_ptr(), libc::MNT_DETACH) };
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

#[test]
#[ignore = "needs root"]
fn exec_flags_tell_overlay_upper_from_lower_layer() {
    let mut p = probe(&["execve"]);
    let ovl = Overlay::new();
    let mut pids = Vec::new();
    for exe in ["up-true", "low-true"] {
        let mut c = std::process::Command::new(ovl.merged.join(exe))
            .spawn()
            .unwrap();
        pids.push(c.id() as i64);
        c.wait().unwrap();
    }
    let evs = collect(&mut p, |evs| {
        pids.iter()
            .all(|pid| evs.iter().any(|e| e.etype == 293 && e.tid == *pid))
    });
    let flags = |pid: i64| {
        let e = evs
            .iter()
            .find(|e| e.etype == 293 && e.tid == pid)
            .expect("execve");
        u32p(e, 19)
    };
    const UPPER: u32 = 1 << 1;
    const LOWER: u32 = 1 << 3;
    assert_eq!(
        flags(pids[0]) & (UPPER | LOWER),
        UPPER,
        "copied into the upper dir"
    );
    assert_eq!(
        flags(pids[1]) & (UPPER | LOWER),
        LOWER,
        "only in the lower dir"
    );
}

/// Whether this kernel has what the modern object needs (6.2+).
fn modern_kernel() -> bool {
    let r = saker_probe::kernel_release();
    let mut it = r.split(|c: char| !c.is_ascii_digit());
    let v: (u32, u32) = (
        it.next().and_then(|x| x.parse().ok()).unwrap_or(0),
        it.next().and_then(|x| x.parse().ok()).unwrap_or(0),
    );
    v >= (6, 2)
}

/// One workload's events, normalised so runs can be compared byte for byte:
/// the file's events, and the child side of a fork (fields that differ
/// between runs, such as pids and page-fault counts, masked).
type Run = Vec<(u16, Vec<Vec<u8>>)>;

fn run_workload(p: &mut Probe, file: &std::path::Path) -> Run {
    let cfile = cstr(file);
    // SAFETY: valid C string; fds closed right away; the child only calls _exit.
    let (fd, child) = unsafe {
        let fd = libc::openat(
            libc::AT_FDCWD,
            cfile.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        assert!(fd >= 0);
        libc::fchmod(fd, 0o600);
        let d = libc::dup2(fd, 200);
        libc::close(d);
        libc::close(fd);
        libc::close(-1);
        let child = libc::fork();
        if child == 0 {
            libc::_exit(0);
        }
        libc::waitpid(child, std::ptr::null_mut(), 0);
        (fd, child)
    };
    // The fd number depends on how many fds the probe holds.
    let fd_bytes = (fd as i64).to_le_bytes().to_vec();
    let me = gettid();
    let child = child as i64;
    let evs = collect(p, |evs| {
        evs.iter().filter(|e| e.tid == me && e.etype == 5).count() >= 3
            && evs.iter().any(|e| e.tid == child && e.etype == 223)
    });
    // From the open of our file on (loading the probe opened files too).
    let first = evs
        .iter()
        .position(|e| e.tid == me && e.etype == 307 && strp(e, 2) == file.to_string_lossy())
        .expect("openat of the test file");
    evs[first..]
        .iter()
        .filter(|e| e.tid == me || e.tid == child)
        .map(|e| {
            let params = (0..e.nparams())
                .map(|i| {
                    let v = e.param(i).unwrap().to_vec();
                    // clone: res, tid, pid, ptid, page faults, vm sizes, vtid, vpid and
                    // the pid namespace start (epoch offset estimated per load)
                    let varying = [0usize, 3, 4, 5, 8, 9, 10, 11, 12, 18, 19, 20];
                    if e.etype == 223 && varying.contains(&i) {
                        b"VARIES".to_vec()
                    } else if v == fd_bytes {
                        b"FD".to_vec()
                    } else {
                        v
                    }
                })
                .collect();
            let who = if e.tid == child { 1 } else { 0 };
            (e.etype | who << 15, params)
        })
        .collect::<Run>()
        .into_iter()
        // Parent and child run concurrently: compare each side in its own order.
        .fold((Run::new(), Run::new()), |(mut a, mut b), x| {
            if x.0 & 1 << 15 == 0 {
                a.push(x)
            } else {
                b.push(x)
            }
            (a, b)
        })
        .into_iter_concat()
}

trait Concat {
    fn into_iter_concat(self) -> Run;
}
impl Concat for (Run, Run) {
    fn into_iter_concat(self) -> Run {
        let (mut a, b) = self;
        a.extend(b);
        a
    }
}

/// The same syscalls give byte-identical events from both objects and every
/// attach mode this kernel allows (fexit, per-syscall tracepoints, generic),
/// including the child side of clone, which fexit reports from schedule_tail.
#[test]
#[ignore = "needs root"]
fn every_object_and_attach_mode_emit_identical_events() {
    ready();
    let dir = tmpdir("modes");
    let file = dir.join("f");
    std::fs::write(&file, b"x").unwrap();
    let mut runs: Vec<(String, Run)> = Vec::new();
    let variants: &[Variant] = if modern_kernel() {
        &[Variant::Modern, Variant::Core]
    } else {
        &[Variant::Core]
    };
    for &variant in variants {
        for attach in [
            AttachMode::Tracepoint,
            AttachMode::Generic,
            AttachMode::Fexit,
        ] {
            let label = format!("{} object, {} mode", variant.name(), attach.name());
            let cfg = ProbeConfig {
                state_set: false,
                generic_fallback: false,
                attach,
                variant: Some(variant),
                ..ProbeConfig::for_event_types(["openat", "close", "fchmod", "dup2", "clone"])
            };
            let mut p = match Probe::load(&cfg) {
                Ok(p) => p,
                Err(e @ ProbeError::AttachUnavailable { .. }) => {
                    eprintln!("{label}: not available on this kernel: {e}");
                    continue;
                }
                Err(e) => panic!("{label}: {e}"),
            };
            assert_eq!(p.attach_mode(), attach, "{label}");
            assert_eq!(p.variant(), variant, "{label}");
            assert_eq!(
                p.attached().contains(&"sys_exit_dispatch".to_string()),
                attach == AttachMode::Generic,
                "{label}: {:?}",
                p.attached()
            );
            let run = run_workload(&mut p, &file);
            assert_eq!(
                run.iter().map(|m| m.0).collect::<Vec<_>>(),
                [307, 317, 363, 5, 5, 5, 223, 223 | 1 << 15, 186 | 1 << 15],
                "{label}: openat, fchmod, dup2, close x3, clone (parent, child), procexit"
            );
            eprintln!("{label}: {} events", run.len());
            runs.push((label, run));
        }
    }
    assert!(runs.len() >= 2, "at least two modes ran");
    for (label, run) in &runs[1..] {
        assert_eq!(run, &runs[0].1, "{label} vs {}", runs[0].0);
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The prefilter keeps what the plan admits (here: successful opens below a
/// directory), directories, relative and non-normal paths, and drops the
/// rest with their closes, counting them; a dup of a dropped fd re-announces
/// its open (state only) and both closes then pass.
#[test]
#[ignore = "needs root"]
fn prefilter_drops_unneeded_opens_and_their_closes() {
    for variant in [Variant::Modern, Variant::Core] {
        if variant == Variant::Modern && !modern_kernel() {
            continue;
        }
        let dir = tmpdir("prefilter");
        std::fs::write(dir.join("keep.txt"), "k").unwrap();
        std::fs::write(dir.join("drop.txt"), "d").unwrap();
        let keep_dir = dir.join("kept");
        std::fs::create_dir(&keep_dir).unwrap();
        std::fs::write(keep_dir.join("a"), "a").unwrap();
        let mut prefix = keep_dir.as_os_str().as_encoded_bytes().to_vec();
        prefix.push(b'/');
        let mut p = probe_with(ProbeConfig {
            state_set: false,
            variant: Some(variant),
            prefilter: Some(saker_probe::Prefilter {
                any_mask: 0,
                suppress_closes: true,
                paths: vec![
                    (prefix.clone(), false, 4),
                    (
                        dir.join("keep.txt").as_os_str().as_encoded_bytes().to_vec(),
                        true,
                        1,
                    ),
                ],
            }),
            ..ProbeConfig::for_event_types(["openat", "close", "dup"])
        });
        let me = gettid();
        let open = |path: &Path, flags: i32| {
            let c = cstr(path);
            // SAFETY: valid C string.
            unsafe { libc::openat(libc::AT_FDCWD, c.as_ptr(), flags) }
        };
        let kept_a = open(&keep_dir.join("a"), libc::O_RDONLY);
        let keep = open(&dir.join("keep.txt"), libc::O_RDONLY);
        let drop = open(&dir.join("drop.txt"), libc::O_RDONLY);
        let drop2 = open(&dir.join("drop.txt"), libc::O_RDONLY);
        let failed = open(&keep_dir.join("missing"), libc::O_RDONLY);
        let subdir = open(&dir, libc::O_RDONLY | libc::O_DIRECTORY);
        let dotted = open(&dir.join("./drop.txt"), libc::O_RDONLY);
        let doubled = open(
            Path::new(&format!("{}//drop.txt", dir.display())),
            libc::O_RDONLY,
        );
        // SAFETY: valid C string; the fd is closed below.
        let relative = unsafe { libc::openat(subdir, c"drop.txt".as_ptr(), libc::O_RDONLY) };
        // A dup of a dropped fd onto a new number: the dup is reported, so the
        // close of its number must pass, while the dropped original's close does not.
        // SAFETY: plain fd calls on fds opened above.
        let dupd = unsafe { libc::dup(drop) };
        assert!(kept_a >= 0 && keep >= 0 && drop >= 0 && drop2 >= 0 && failed < 0 && subdir >= 0);
        assert!(dotted >= 0 && doubled >= 0 && relative >= 0 && dupd >= 0);
        let all = [
            kept_a, keep, drop, drop2, subdir, dotted, doubled, relative, dupd,
        ];
        for fd in all {
            // SAFETY: fds opened above.
            unsafe { libc::close(fd) };
        }
        let evs = collect(&mut p, |evs| {
            evs.iter()
                .any(|e| e.etype == 5 && e.tid == me && i64p(e, 1) == dupd as i64)
        });
        let opened: Vec<String> = evs
            .iter()
            .filter(|e| e.etype == 307 && e.tid == me && !e.is_state_only())
            .map(|e| strp(e, 2))
            .collect();
        // The dup read a dropped fd: its open was re-announced, for the state engine only,
        // with the path the kernel resolves.
        let late: Vec<(String, i64)> = evs
            .iter()
            .filter(|e| e.etype == 307 && e.tid == me && e.is_state_only())
            .map(|e| (strp(e, 2), i64p(e, 0)))
            .collect();
        let d = dir.display();
        assert_eq!(
            late,
            [(format!("{d}/drop.txt"), drop as i64)],
            "{variant:?}"
        );
        assert_eq!(
            opened,
            [
                format!("{d}/kept/a"),
                format!("{d}/keep.txt"),
                format!("{d}"),
                format!("{d}/./drop.txt"),
                format!("{d}//drop.txt"),
                "drop.txt".to_string(),
            ],
            "{variant:?}"
        );
        let closed: Vec<i64> = evs
            .iter()
            .filter(|e| e.etype == 5 && e.tid == me)
            .map(|e| i64p(e, 1))
            .collect();
        // drop2's close is dropped; drop's passes (its open was re-announced).
        let want: Vec<i64> = [kept_a, keep, drop, subdir, dotted, doubled, relative, dupd]
            .iter()
            .map(|&f| f as i64)
            .collect();
        assert_eq!(
            closed, want,
            "{variant:?}: the dropped open's close is dropped"
        );
        let st = p.stats().unwrap();
        assert!(
            st.family(Family::Open).filtered >= 2,
            "{:?}",
            st.family(Family::Open)
        );
        assert!(
            st.family(Family::Close).filtered >= 1,
            "{:?}",
            st.family(Family::Close)
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
