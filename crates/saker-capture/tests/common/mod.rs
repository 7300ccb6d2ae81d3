#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

use saker_capture::Reader;
use saker_event::{Event, Snapshot};

pub const CAPTURES: [&str; 5] = [
    "cat_write.scap",
    "connect_localhost.scap",
    "open-multiple-files.scap",
    "ping_sendto.scap",
    "syscall.scap",
];

pub fn captures_dir() -> PathBuf {
    std::env::var_os("SAKER_CAPTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/captures")
        })
}

pub fn capture(name: &str) -> PathBuf {
    captures_dir().join(name)
}

pub fn read_all(path: &std::path::Path) -> (Snapshot, Vec<Event>) {
    let mut r = Reader::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut out = Vec::new();
    let mut ev = Event::default();
    while r
        .next_event(&mut ev)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    {
        out.push(ev.clone());
    }
    (r.snapshot().clone(), out)
}

/// `(num, type, dir)` lines as sysdig 0.29.3 prints them (internal events included).
pub fn sysdig_events(path: &std::path::Path) -> Vec<(u64, String, char)> {
    let out = Command::new("sysdig")
        .arg("-D")
        .arg("-r")
        .arg(path)
        .arg("-p")
        .arg("*%evt.num %evt.type %evt.dir")
        .output()
        .expect("sysdig must be installed (CI installs it)");
    assert!(
        out.status.success(),
        "sysdig failed on {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let num = it.next()?.parse().ok()?;
            let ty = it.next()?.to_string();
            let dir = it.next()?.chars().next()?;
            Some((num, ty, dir))
        })
        .collect()
}
