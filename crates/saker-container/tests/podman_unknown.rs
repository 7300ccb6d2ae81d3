//! A container id that no runtime knows is answered as such right away (the event loop stops
//! holding its alerts), cached, and asked about again only after the retry period.
//! Needs root and podman (its Docker-compatible API on a private socket).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use saker_container::{Answer, Watcher, WatcherConfig};

fn skip() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let root = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        == Some("0");
    if !root {
        return Some("not running as root".into());
    }
    let podman = Command::new("podman")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !podman && std::env::var_os("CI").is_none() {
        return Some("podman is not installed".into());
    }
    None
}

/// `podman system service` on a private socket; killed (and its directory removed) on drop.
struct Service(Child, PathBuf);

impl Service {
    fn start(dir: &Path) -> Service {
        std::fs::create_dir_all(dir).expect("scratch dir");
        let sock = dir.join("podman.sock");
        let child = Command::new("podman")
            .args(["system", "service", "--time=0"])
            .arg(format!("unix://{}", sock.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn podman system service");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&sock).is_err() {
            assert!(Instant::now() < deadline, "podman socket did not appear");
            std::thread::sleep(Duration::from_millis(50));
        }
        Service(child, dir.to_path_buf())
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

/// Waits (up to 5 s) for the "unknown" answer about `id`; metadata answers are skipped.
fn unknown_answer(w: &mut Watcher, id: &str) -> Duration {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        match w.try_answer() {
            Some(Answer::Unknown(got)) if got == id => return t0.elapsed(),
            Some(_) => {}
            None => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    panic!("no 'unknown' answer about {id} within 5 s");
}

#[test]
fn unknown_containers_are_answered_and_cached() {
    if let Some(why) = skip() {
        eprintln!("SKIPPED unknown_containers_are_answered_and_cached: {why}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("saker-unknown-{}", std::process::id()));
    let _service = Service::start(&dir);
    let mut w = Watcher::start(WatcherConfig {
        docker_sockets: vec![dir.clone()],
        containerd_sockets: vec![],
        cri_sockets: vec![],
        rescan: Duration::from_secs(600),
        unknown_retry: Duration::from_millis(400),
        ..WatcherConfig::default()
    })
    .expect("watcher");
    let id = format!("{:064x}", 0x5a4e5f_u64 + u64::from(std::process::id()));
    assert!(w.request(&id), "the first request starts a lookup");
    assert!(w.in_flight(id.as_bytes()));
    assert!(!w.request(&id), "a lookup in flight is not started twice");
    let took = unknown_answer(&mut w, &id);
    eprintln!("'unknown' answer after {} ms", took.as_millis());
    assert!(took < Duration::from_secs(1), "answered in {took:?}");
    assert!(!w.in_flight(id.as_bytes()));
    // Cached: not asked again within the retry period...
    assert!(!w.request(&id));
    std::thread::sleep(Duration::from_millis(450));
    // ...and asked again after it.
    assert!(w.request(&id));
    assert!(w.in_flight(id.as_bytes()));
    unknown_answer(&mut w, &id);
}
