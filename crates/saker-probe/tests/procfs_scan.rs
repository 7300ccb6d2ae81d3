//! The /proc scan finds this very process with its exe, cwd, args and fds.

use saker_event::{FdType, SockInfo};
use std::os::fd::AsRawFd;

#[test]
fn scan_finds_this_process_its_threads_and_fds() {
    let path = std::env::temp_dir().join(format!("saker-scan-{}.txt", std::process::id()));
    let file = std::fs::File::create(&path).unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let worker = std::thread::spawn(move || rx.recv());

    let snap = saker_probe::procfs::scan(std::path::Path::new("/"));
    let pid = std::process::id() as i64;
    let me = snap
        .procs
        .iter()
        .find(|p| p.tid == pid)
        .expect("main thread found");
    assert_eq!(me.pid, pid);
    let exe = std::fs::canonicalize(std::env::current_exe().unwrap()).unwrap();
    assert_eq!(me.exepath, exe.as_os_str().as_encoded_bytes());
    let cwd = std::env::current_dir().unwrap();
    assert_eq!(me.cwd, cwd.as_os_str().as_encoded_bytes());
    let argv: Vec<Vec<u8>> = std::env::args().map(|a| a.into_bytes()).collect();
    assert_eq!(me.exe, argv[0]);
    assert_eq!(me.args, argv[1..]);
    assert!(!me.env.is_empty());
    assert_eq!(me.ptid, std::os::unix::process::parent_id() as i64);
    assert!(
        me.start_ts > 1_600_000_000_000_000_000,
        "start_ts is epoch ns"
    );
    assert!(me.fdlimit > 0);
    assert!(!me.cgroups.is_empty());
    assert!(
        snap.procs.iter().any(|p| p.pid == pid && p.tid != pid),
        "threads are listed"
    );
    assert!(snap.procs.iter().any(|p| p.pid == 1), "init is listed");

    let fd = file.as_raw_fd() as i64;
    let f = snap
        .fds
        .iter()
        .find(|(owner, f)| *owner == pid && f.fd == fd)
        .map(|(_, f)| f)
        .expect("open file fd");
    assert_eq!(f.ty, FdType::FileV2);
    assert_eq!(f.name, path.as_os_str().as_encoded_bytes());
    assert_eq!(f.open_flags & 3, 2, "PPM_O_WRONLY");
    let l = snap
        .fds
        .iter()
        .find(|(owner, f)| *owner == pid && f.fd == listener.as_raw_fd() as i64)
        .map(|(_, f)| f)
        .expect("listener fd");
    assert_eq!(l.ty, FdType::Ipv4ServSock);
    assert!(matches!(l.sock, SockInfo::IpServer { port: p, l4proto: 2, .. } if p == port));
    assert!(snap.users.iter().any(|u| u.uid == 0 && u.name == b"root"));
    assert!(snap.groups.iter().any(|g| g.gid == 0));
    assert!(snap.hostname.as_deref().is_some_and(|h| !h.is_empty()));

    tx.send(()).unwrap();
    worker.join().unwrap().unwrap();
    let _ = std::fs::remove_file(&path);
}
