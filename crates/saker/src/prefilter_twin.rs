//! `saker replay --prefilter`: the probe's prefilter decisions applied to a
//! recorded stream, so that captures show what the kernel filter would lose
//! (the differential tests replay each capture with and without it and
//! compare the alerts).
//!
//! Same decisions as bpf/prefilter.h: opens the plan does not admit are
//! dropped and remembered per (process, fd); their closes are dropped too
//! when the plan says so; an event that later reads such an fd first gets the
//! dropped open, re-announced for the state engine only. One difference, on
//! the strict side: a capture does not say whether an opened file is a
//! directory, so only O_DIRECTORY opens count as directories here.

use saker_event::{Event, CPU_STATE_ONLY};
use saker_rules::prefilter::{Plan, OPEN_FAMILY};
use saker_state::State;
use std::collections::HashMap;

/// Exit events that report new fds (besides the open family).
const FD_CREATORS: &[&str] = &[
    "dup",
    "dup2",
    "dup3",
    "socket",
    "accept",
    "accept4",
    "memfd_create",
    "userfaultfd",
    "bpf",
    "eventfd",
    "eventfd2",
    "signalfd",
    "signalfd4",
    "timerfd_create",
    "inotify_init",
    "inotify_init1",
    "epoll_create",
    "epoll_create1",
    "pidfd_open",
    "pidfd_getfd",
    "fanotify_init",
    "io_uring_setup",
    "open_by_handle_at",
];

const PPM_O_WRONLY: u32 = 1 << 1;
const PPM_O_DIRECTORY: u32 = 1 << 10;

pub struct Twin {
    plan: Plan,
    /// Dropped opens by (tgid, fd), kept to re-announce.
    dropped: HashMap<(i64, i64), Event>,
    /// The fd of each thread's last close enter event (old captures carry it
    /// only there).
    close_fd: HashMap<i64, i64>,
    pub filtered: u64,
}

impl Twin {
    pub fn new(plan: Plan) -> Twin {
        Twin {
            plan,
            dropped: HashMap::new(),
            close_fd: HashMap::new(),
            filtered: 0,
        }
    }

    /// Decides on `ev` (true: keep it); `inject` first receives any dropped
    /// open that `ev` reads, marked for the state engine only.
    pub fn filter(&mut self, ev: &Event, state: &State, inject: &mut dyn FnMut(&Event)) -> bool {
        let Some(info) = ev.info() else {
            return true;
        };
        let tgid = state.thread(ev.tid).map_or(ev.tid, |t| t.pid);
        let name = info.name;
        if OPEN_FAMILY.contains(&name) {
            if ev.is_enter() {
                return true;
            }
            let fd = ev.res().unwrap_or(-1);
            let path = ev
                .raw_by_name("name")
                .or_else(|| ev.raw_by_name("path"))
                .map(saker_event::decode::trim_nul)
                .unwrap_or_default();
            let flags = ev.int_by_name("flags").map(|f| f as u32);
            let write = flags.map_or(name == "creat", |f| f & PPM_O_WRONLY != 0);
            let dir = flags.is_some_and(|f| f & PPM_O_DIRECTORY != 0);
            if self.plan.open.admits(path, write, fd >= 0, dir) {
                self.dropped.remove(&(tgid, fd));
                return true;
            }
            if fd >= 0 {
                self.dropped.insert((tgid, fd), ev.clone());
            }
            self.filtered += 1;
            return false;
        }
        if name == "close" {
            let fd = if ev.is_enter() {
                let fd = ev.int_by_name("fd").unwrap_or(-1);
                self.close_fd.insert(ev.tid, fd);
                return true;
            } else {
                ev.int_by_name("fd")
                    .or_else(|| self.close_fd.remove(&ev.tid))
                    .unwrap_or(-1)
            };
            if self.dropped.remove(&(tgid, fd)).is_some() && self.plan.suppress_closes {
                self.filtered += 1;
                return false;
            }
            return true;
        }
        if ev.is_exit() && FD_CREATORS.contains(&name) {
            if let Some(fd) = ev.res().filter(|r| *r >= 0) {
                self.dropped.remove(&(tgid, fd));
            }
        }
        // A reader of a dropped fd: the open is reported first.
        for p in ["fd", "oldfd", "dirfd", "olddirfd"] {
            if let Some(fd) = ev.int_by_name(p) {
                if let Some(mut open) = self.dropped.remove(&(tgid, fd)) {
                    open.cpu |= CPU_STATE_ONLY;
                    inject(&open);
                }
            }
        }
        if ev.is_exit() && (name == "pipe" || name == "pipe2") {
            for p in ["fd1", "fd2"] {
                if let Some(fd) = ev.int_by_name(p) {
                    self.dropped.remove(&(tgid, fd));
                }
            }
        }
        true
    }
}
