//! The /proc scan that seeds the thread and fd tables before the first live
//! event, so processes started before Saker have ancestry and open fds.
//!
//! Everything is best effort: a process or thread that vanishes mid-scan is
//! skipped, and unreadable files leave fields at their defaults.

mod net;

pub use net::{L4_TCP, L4_UDP};

use saker_event::{FdInfo, FdType, GroupInfo, ProcInfo, Snapshot, SockInfo, UserInfo};
use std::collections::HashMap;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Scans `root`/proc and `root`/etc (pass `/` for the host).
pub fn scan(root: &Path) -> Snapshot {
    let proc = root.join("proc");
    let ctx = Ctx {
        socks: net::load(&proc),
        boot_ns: boot_time_ns(&proc),
        hz: clock_ticks(),
    };
    let mut snap = Snapshot {
        hostname: read_string(&proc.join("sys/kernel/hostname")).map(|s| s.trim().to_string()),
        users: read_users(&root.join("etc/passwd")),
        groups: read_groups(&root.join("etc/group")),
        ..Default::default()
    };
    let Ok(dir) = std::fs::read_dir(&proc) else {
        return snap;
    };
    let mut pids: Vec<i64> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    for pid in pids {
        scan_process(&ctx, &proc.join(pid.to_string()), pid, &mut snap);
    }
    snap
}

struct Ctx {
    socks: HashMap<u64, net::SockEntry>,
    boot_ns: u64,
    hz: u64,
}

/// Per-process data shared by all its threads.
struct ProcShared {
    exe: Vec<u8>,
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    exepath: Vec<u8>,
    cwd: Vec<u8>,
    root: Vec<u8>,
    fdlimit: i64,
    exe_md: Option<std::fs::Metadata>,
}

fn scan_process(ctx: &Ctx, dir: &Path, pid: i64, snap: &mut Snapshot) {
    let cmdline = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    let mut argv = split_nul(&cmdline);
    let exe = if argv.is_empty() {
        Vec::new()
    } else {
        argv.remove(0)
    };
    let shared = ProcShared {
        exe,
        args: argv,
        env: split_nul(&std::fs::read(dir.join("environ")).unwrap_or_default()),
        exepath: read_link(&dir.join("exe")),
        cwd: read_link(&dir.join("cwd")),
        root: read_link(&dir.join("root")),
        fdlimit: read_fdlimit(&dir.join("limits")),
        exe_md: std::fs::metadata(dir.join("exe")).ok(),
    };
    let mut tids: Vec<i64> = std::fs::read_dir(dir.join("task"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    tids.sort_unstable();
    let mut found = false;
    for tid in tids {
        if let Some(info) = scan_thread(
            ctx,
            &dir.join("task").join(tid.to_string()),
            tid,
            pid,
            &shared,
        ) {
            snap.procs.push(info);
            found = true;
        }
    }
    if found {
        scan_fds(ctx, dir, pid, &mut snap.fds);
    }
}

fn scan_thread(ctx: &Ctx, dir: &Path, tid: i64, pid: i64, sh: &ProcShared) -> Option<ProcInfo> {
    let stat = read_string(&dir.join("stat"))?;
    let close = stat.rfind(')')?;
    let open = stat.find('(')?;
    let comm = stat.get(open + 1..close)?.as_bytes().to_vec();
    let f: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|s| s.parse::<i64>().ok()).unwrap_or(0);
    let status = read_string(&dir.join("status")).unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| {
                l.strip_prefix(k)
                    .map(|v| v.split_whitespace().collect::<Vec<_>>())
            })
            .unwrap_or_default()
    };
    let nth_u32 = |k: &str, i: usize| {
        field(k)
            .get(i)
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0)
    };
    let last_i64 = |k: &str, dflt: i64| {
        field(k)
            .last()
            .and_then(|s| s.parse::<i64>().ok())
            .unwrap_or(dflt)
    };
    let hex = |k: &str| {
        field(k)
            .first()
            .and_then(|s| u64::from_str_radix(s, 16).ok())
            .unwrap_or(0)
    };
    let kb = |k: &str| nth_u32(k, 0);
    let start_ticks = num(19).max(0) as u64;
    let (ino, ctime, mtime) = match &sh.exe_md {
        Some(m) => (
            m.ino(),
            (m.ctime().max(0) as u64) * 1_000_000_000 + m.ctime_nsec().max(0) as u64,
            (m.mtime().max(0) as u64) * 1_000_000_000 + m.mtime_nsec().max(0) as u64,
        ),
        None => (0, 0, 0),
    };
    let exe = if sh.exe.is_empty() {
        comm.clone()
    } else {
        sh.exe.clone()
    };
    Some(ProcInfo {
        tid,
        pid,
        ptid: num(1),
        sid: num(3),
        pgid: num(2),
        vpgid: last_i64("NSpgid:", num(2)),
        vtid: last_i64("NSpid:", tid),
        vpid: last_i64("NStgid:", pid),
        comm,
        exe,
        exepath: sh.exepath.clone(),
        args: sh.args.clone(),
        env: sh.env.clone(),
        cwd: sh.cwd.clone(),
        root: sh.root.clone(),
        fdlimit: sh.fdlimit,
        flags: 0,
        uid: nth_u32("Uid:", 1),
        gid: nth_u32("Gid:", 1),
        loginuid: read_string(&dir.join("loginuid"))
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(u32::MAX),
        tty: num(4) as u32,
        cap_inheritable: hex("CapInh:"),
        cap_permitted: hex("CapPrm:"),
        cap_effective: hex("CapEff:"),
        exe_writable: false,
        exe_upper_layer: false,
        exe_lower_layer: false,
        exe_from_memfd: sh.exepath.starts_with(b"/memfd:"),
        exe_ino: ino,
        exe_ino_ctime: ctime,
        exe_ino_mtime: mtime,
        pidns_init_start_ts: 0,
        start_ts: ctx.boot_ns + start_ticks * 1_000_000_000 / ctx.hz.max(1),
        cgroups: read_cgroups(&dir.join("cgroup")),
        vmsize_kb: kb("VmSize:"),
        vmrss_kb: kb("VmRSS:"),
        vmswap_kb: kb("VmSwap:"),
        pfmajor: num(9).max(0) as u64,
        pfminor: num(7).max(0) as u64,
    })
}

fn scan_fds(ctx: &Ctx, dir: &Path, pid: i64, out: &mut Vec<(i64, FdInfo)>) {
    let Ok(entries) = std::fs::read_dir(dir.join("fd")) else {
        return;
    };
    let mut fds: Vec<i64> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .collect();
    fds.sort_unstable();
    for fd in fds {
        let link_path = dir.join("fd").join(fd.to_string());
        let Ok(target) = std::fs::read_link(&link_path) else {
            continue; // closed meanwhile
        };
        let info = read_string(&dir.join("fdinfo").join(fd.to_string())).unwrap_or_default();
        let fdinfo = |k: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(k).map(|v| v.trim().to_string()))
        };
        let raw_flags = fdinfo("flags:")
            .and_then(|v| u32::from_str_radix(&v, 8).ok())
            .unwrap_or(0);
        let mut ino = fdinfo("ino:").and_then(|v| v.parse().ok()).unwrap_or(0);
        out.push((
            pid,
            classify(
                ctx,
                fd,
                target.as_os_str().as_bytes(),
                &link_path,
                raw_flags,
                &mut ino,
            ),
        ));
    }
}

fn bracket_num(s: &[u8], prefix: &[u8]) -> Option<u64> {
    let rest = s.strip_prefix(prefix)?.strip_suffix(b"]")?;
    std::str::from_utf8(rest).ok()?.parse().ok()
}

fn classify(
    ctx: &Ctx,
    fd: i64,
    target: &[u8],
    link: &Path,
    raw_flags: u32,
    ino: &mut u64,
) -> FdInfo {
    let mut info = FdInfo {
        fd,
        ino: *ino,
        ty: FdType::Unknown,
        open_flags: 0,
        dev: 0,
        name: target.to_vec(),
        sock: SockInfo::None,
    };
    if let Some(sino) = bracket_num(target, b"socket:[") {
        info.ino = sino;
        // Only close-on-exec: without it a socket made before the start (Rust's, Go's: all
        // close-on-exec) would outlive an exec in the fd table, and an fd number reused after
        // it would read as that socket.
        info.open_flags = open_flags_to_ppm(raw_flags) & PPM_O_CLOEXEC;
        match ctx.socks.get(&sino) {
            Some(e) => {
                info.ty = e.ty;
                info.sock = e.sock.clone();
                info.name = e.name.clone();
            }
            None => info.name.clear(),
        }
        return info;
    }
    if let Some(pino) = bracket_num(target, b"pipe:[") {
        info.ino = pino;
        info.ty = FdType::Fifo;
        info.open_flags = open_flags_to_ppm(raw_flags);
        return info;
    }
    if let Some(kind) = target.strip_prefix(b"anon_inode:") {
        info.open_flags = open_flags_to_ppm(raw_flags) & PPM_O_CLOEXEC;
        let kind = kind.trim_ascii_start().strip_prefix(b"[").unwrap_or(kind);
        let kind = kind.strip_suffix(b"]").unwrap_or(kind);
        info.ty = match kind {
            b"eventfd" => FdType::Event,
            b"eventpoll" => FdType::Eventpoll,
            b"inotify" => FdType::Inotify,
            b"signalfd" => FdType::Signalfd,
            b"timerfd" => FdType::Timerfd,
            b"userfaultfd" => FdType::Userfaultfd,
            b"io_uring" => FdType::IoUring,
            b"pidfd" => FdType::Pidfd,
            k if k.starts_with(b"bpf") => FdType::Bpf,
            _ => FdType::Unknown,
        };
        return info;
    }
    info.open_flags = open_flags_to_ppm(raw_flags);
    if target.starts_with(b"/memfd:") {
        info.ty = FdType::Memfd;
        return info;
    }
    if target.starts_with(b"/") {
        let md = std::fs::metadata(link).ok();
        info.ty = match &md {
            Some(m) if m.is_dir() => FdType::Directory,
            _ => FdType::FileV2,
        };
        if let Some(m) = md {
            info.dev = encode_dev(m.dev());
            if info.ino == 0 {
                info.ino = m.ino();
                *ino = m.ino();
            }
        }
        return info;
    }
    info.ty = FdType::Unsupported;
    info
}

/// glibc dev_t → the kernel's `new_encode_dev` layout used in events.
fn encode_dev(dev: u64) -> u32 {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    ((minor & 0xff) | (major << 8) | ((minor & !0xff) << 12)) as u32
}

/// PPM_O_CLOEXEC.
const PPM_O_CLOEXEC: u32 = 1 << 12;

/// Linux O_* → PPM_O_* (same mapping as the probe).
pub fn open_flags_to_ppm(f: u32) -> u32 {
    let mut r = match f & 3 {
        0 => 1,
        1 => 2,
        2 => 3,
        _ => 0,
    };
    for (bit, ppm) in [
        (0o100, 1 << 2),
        (0o2000, 1 << 3),
        (0o10000, 1 << 4),
        (0o200, 1 << 5),
        (0o4000, 1 << 6),
        (0o4000000, 1 << 7),
        (0o1000, 1 << 8),
        (0o40000, 1 << 9),
        (0o200000, 1 << 10),
        (0o100000, 1 << 11),
        (0o2000000, 1 << 12),
        (0o20000000, 1 << 13),
    ] {
        if f & bit != 0 {
            r |= ppm;
        }
    }
    r
}

fn read_string(p: &Path) -> Option<String> {
    std::fs::read(p)
        .ok()
        .map(|b| String::from_utf8_lossy(&b).into_owned())
}

fn read_link(p: &Path) -> Vec<u8> {
    std::fs::read_link(p)
        .map(|t: PathBuf| t.as_os_str().as_bytes().to_vec())
        .unwrap_or_default()
}

fn split_nul(b: &[u8]) -> Vec<Vec<u8>> {
    let b = b.strip_suffix(b"\0").unwrap_or(b);
    if b.is_empty() {
        return Vec::new();
    }
    b.split(|&c| c == 0).map(<[u8]>::to_vec).collect()
}

fn read_fdlimit(p: &Path) -> i64 {
    read_string(p)
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// "4:memory:/user.slice" → "memory=/user.slice"; the cgroup2 line ("0::/x")
/// becomes "unified=/x", as the probe reports it; v1 "blkio" is reported as
/// "io". Named hierarchies are skipped.
pub fn read_cgroups(p: &Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for line in read_string(p).unwrap_or_default().lines() {
        let mut it = line.splitn(3, ':');
        let (Some(_), Some(ctrls), Some(path)) = (it.next(), it.next(), it.next()) else {
            continue;
        };
        if ctrls.is_empty() {
            out.push(format!("unified={path}").into_bytes());
            continue;
        }
        for c in ctrls.split(',').filter(|c| !c.starts_with("name=")) {
            // v1 shows the io controller by its legacy name; the probe uses "io".
            let c = if c == "blkio" { "io" } else { c };
            out.push(format!("{c}={path}").into_bytes());
        }
    }
    out
}

fn boot_time_ns(proc: &Path) -> u64 {
    read_string(&proc.join("stat"))
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("btime "))
                .and_then(|v| v.trim().parse::<u64>().ok())
        })
        .map(|s| s * 1_000_000_000)
        .unwrap_or(0)
}

fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

fn read_users(p: &Path) -> Vec<UserInfo> {
    let text = read_string(p).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(UserInfo {
                name: f.first()?.as_bytes().to_vec(),
                uid: f.get(2)?.parse().ok()?,
                gid: f.get(3)?.parse().ok()?,
                homedir: f.get(5)?.as_bytes().to_vec(),
                shell: f.get(6).unwrap_or(&"").as_bytes().to_vec(),
            })
        })
        .collect()
}

fn read_groups(p: &Path) -> Vec<GroupInfo> {
    let text = read_string(p).unwrap_or_default();
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some(GroupInfo {
                name: f.first()?.as_bytes().to_vec(),
                gid: f.get(2)?.parse().ok()?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_flags_and_dev_encoding() {
        assert_eq!(
            open_flags_to_ppm(0o2 | 0o100 | 0o2000000),
            3 | (1 << 2) | (1 << 12)
        );
        assert_eq!(open_flags_to_ppm(0), 1);
        // major 8, minor 1 (sda1) in glibc's layout
        assert_eq!(encode_dev((8 << 8) | 1), (8 << 8) | 1);
        // minor 300 spills into the high bits
        let glibc = (8u64 << 8) | (300 & 0xff) | ((300u64 & !0xff) << 12);
        assert_eq!(
            encode_dev(glibc),
            (300 & 0xff) | (8 << 8) | ((300 & !0xff) << 12)
        );
    }

    #[test]
    fn sockets_and_anon_inodes_keep_close_on_exec_from_fdinfo() {
        let ctx = Ctx {
            socks: HashMap::new(),
            boot_ns: 0,
            hz: 100,
        };
        let link = Path::new("/proc/1/fd/3");
        for target in [&b"socket:[77]"[..], b"anon_inode:[eventfd]"] {
            let with = classify(&ctx, 3, target, link, 0o2000002, &mut 0);
            assert_eq!(with.open_flags, PPM_O_CLOEXEC, "{target:?}");
            let without = classify(&ctx, 3, target, link, 0o2, &mut 0);
            assert_eq!(without.open_flags, 0, "{target:?}");
        }
    }

    #[test]
    fn cgroup_lines_become_subsys_entries() {
        let dir = std::env::temp_dir().join(format!("saker-cg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("cgroup");
        std::fs::write(
            &f,
            "5:cpu,cpuacct:/docker/abc\n1:name=systemd:/x\n3:blkio:/b\n0::/docker/abc\n",
        )
        .unwrap();
        assert_eq!(
            read_cgroups(&f),
            vec![
                b"cpu=/docker/abc".to_vec(),
                b"cpuacct=/docker/abc".to_vec(),
                b"io=/b".to_vec(),
                b"unified=/docker/abc".to_vec()
            ]
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn passwd_and_group_parsing_skips_bad_lines() {
        let dir = std::env::temp_dir().join(format!("saker-pw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("passwd"),
            "root:x:0:0:root:/root:/bin/bash\nbad line\n",
        )
        .unwrap();
        std::fs::write(dir.join("group"), "wheel:x:10:a,b\n").unwrap();
        let u = read_users(&dir.join("passwd"));
        assert_eq!(u.len(), 1);
        assert_eq!((u[0].uid, &u[0].shell[..]), (0, &b"/bin/bash"[..]));
        assert_eq!(read_groups(&dir.join("group"))[0].gid, 10);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
