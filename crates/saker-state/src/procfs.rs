//! Live-mode fallback: build a thread entry from `/proc/<tid>`.

use std::path::Path;

use crate::types::{NulList, Thread};
use crate::{dir_with_slash, paths};

fn status_field(status: &str, key: &str) -> Option<i64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Reads a thread from `<proc_root>/<tid>`; `None` if it is gone.
pub(crate) fn read_thread(proc_root: &Path, tid: i64) -> Option<Thread> {
    let dir = proc_root.join(tid.to_string());
    let status = std::fs::read_to_string(dir.join("status")).ok()?;
    let mut t = Thread::stub(tid);
    t.stub = false;
    t.pid = status_field(&status, "Tgid:").unwrap_or(tid);
    t.ptid = status_field(&status, "PPid:").unwrap_or(-1);
    t.uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(u32::MAX);
    t.gid = status
        .lines()
        .find_map(|l| l.strip_prefix("Gid:"))
        .and_then(|v| v.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(u32::MAX);
    if let Ok(c) = std::fs::read(dir.join("comm")) {
        t.comm = c.strip_suffix(b"\n").unwrap_or(&c).to_vec();
    }
    if let Ok(c) = std::fs::read(dir.join("cmdline")) {
        let mut l = NulList::from_raw(&c);
        if let Some(exe) = l.remove_first() {
            t.exe = exe;
            t.args = l;
        }
    }
    if let Ok(p) = std::fs::read_link(dir.join("exe")) {
        t.exepath = p.into_os_string().into_encoded_bytes();
    }
    if let Ok(p) = std::fs::read_link(dir.join("cwd")) {
        t.cwd = dir_with_slash(&p.into_os_string().into_encoded_bytes());
    }
    if let Ok(c) = std::fs::read(dir.join("cgroup")) {
        // `hier:controllers:path` → `controllers=path`.
        t.cgroups = c
            .split(|&b| b == b'\n')
            .filter_map(|l| {
                let mut it = l.splitn(3, |&b| b == b':');
                let (_, ctl, path) = (it.next()?, it.next()?, it.next()?);
                Some([ctl, &b"="[..], path].concat())
            })
            .collect();
        t.container_id = paths::container_id(&t.cgroups);
    }
    Some(t)
}
