//! Capture on alert (Falco's `capture.*` keys and the rules' `capture`/`capture_duration`),
//! with a flight recorder: the recent events are kept in a bounded in-memory ring, so a
//! capture starts `capture.pre_trigger_ms` before the event that fired the rule, then goes
//! on for the rule's `capture_duration` (else `capture.default_duration`) after it.
//!
//! `capture.scope` narrows the file to the alert's container (the default for an alert in a
//! container), to the alerting process and its descendants, or keeps the whole host (the
//! default for a host alert). Each recorded event carries its thread's container and process
//! ids, taken from state after the rules ran on it.
//!
//! One capture is open at a time: a trigger while it is open extends its end (with the scope it
//! was opened with), as the events are already being written. The file is `{path_prefix}_{ts:020}_{evt.num:020}.scap` (Falco's
//! name) and replays with `saker replay`.

use std::collections::{HashSet, VecDeque};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::AtomicI64;

use prometheus_client::metrics::gauge::Gauge;
use saker_capture::{FileSink, Writer};
use saker_event::{Event, Snapshot};
use saker_state::State;

use crate::pipeline::Detector;

const MS: u64 = 1_000_000;

/// The metadata a new capture file starts with.
pub type SnapshotFn = Box<dyn FnMut() -> Snapshot>;

/// `capture.scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `container` for an alert in a container, `host` otherwise.
    Auto,
    Host,
    Container,
    ProcessTree,
}

impl Scope {
    fn from_config(s: Option<&str>) -> Scope {
        match s {
            Some("host") => Scope::Host,
            Some("container") => Scope::Container,
            Some("process_tree") => Scope::ProcessTree,
            // The config loader refuses any other value.
            _ => Scope::Auto,
        }
    }
}

/// A recorded event and whom it belongs to.
struct Rec {
    ev: Event,
    /// Hash of the thread's container id (`HOST` for the host's processes).
    cid: u64,
    /// The thread's process id and its parent's process id.
    pid: i64,
    ppid: i64,
    /// Not a thread's event (metadata): every scope keeps it.
    meta: bool,
}

/// Which recorded events go into the open capture.
enum Filter {
    All,
    Container(u64),
    /// The alerting process and its descendants (grows as they start children).
    Tree(HashSet<i64>),
}

impl Filter {
    fn keeps(&mut self, r: &Rec) -> bool {
        if r.meta {
            return true;
        }
        match self {
            Filter::All => true,
            Filter::Container(c) => r.cid == *c,
            Filter::Tree(set) => {
                set.contains(&r.pid) || (set.contains(&r.ppid) && set.insert(r.pid))
            }
        }
    }
}

fn cid_hash(id: &[u8]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut h);
    h.finish()
}

pub struct Flight {
    prefix: String,
    all_rules: bool,
    scope: Scope,
    default_ns: u64,
    pre_ns: u64,
    max_mem: usize,
    /// Bytes; 0 = unlimited.
    max_file: u64,
    ring: VecDeque<Rec>,
    ring_bytes: usize,
    /// `saker_capture_recorder_bytes`, when metrics are served.
    pub bytes_gauge: Option<Gauge<i64, AtomicI64>>,
    host: u64,
    active: Option<Active>,
    snapshot: SnapshotFn,
    /// Files written and closed, in order.
    pub written: Vec<PathBuf>,
    /// The write error already reported (one line per capture, not per event).
    failed: bool,
}

struct Active {
    w: Writer<FileSink>,
    path: PathBuf,
    until: u64,
    filter: Filter,
}

/// The memory an event held in the ring costs.
fn cost(ev: &Event) -> usize {
    std::mem::size_of::<Rec>() + ev.buf.capacity() + ev.ends.capacity() * 4
}

impl Flight {
    /// `None` when `capture.enabled` is off.
    pub fn new(cfg: &saker_config::Capture, snapshot: SnapshotFn) -> Option<Flight> {
        cfg.enabled.then(|| Flight {
            prefix: cfg.path_prefix.clone(),
            all_rules: cfg.mode == "all_rules",
            scope: Scope::from_config(cfg.scope.as_deref()),
            default_ns: cfg.default_duration.saturating_mul(MS),
            pre_ns: cfg.pre_trigger_ms.saturating_mul(MS),
            max_mem: usize::try_from(cfg.recorder_max_mb.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            max_file: cfg.max_file_size_mb.saturating_mul(1 << 20),
            ring: VecDeque::new(),
            ring_bytes: 0,
            bytes_gauge: None,
            host: cid_hash(b""),
            active: None,
            snapshot,
            written: Vec::new(),
            failed: false,
        })
    }

    /// Bytes the recorder holds now.
    #[cfg(test)]
    pub fn memory(&self) -> usize {
        self.ring_bytes
    }

    /// Whom `ev` belongs to, from state after the rules ran on it.
    fn owner(&self, ev: &Event, state: &State) -> Rec {
        let meta = ev.tid == 0
            || saker_event::table::info(ev.etype)
                .is_some_and(|i| i.category & saker_event::table::EC_INTERNAL != 0);
        let (cid, pid, ppid) = match state.thread(ev.tid) {
            Some(t) => (
                if t.container_id.is_empty() {
                    self.host
                } else {
                    cid_hash(&t.container_id)
                },
                t.pid,
                state.thread(t.ptid).map_or(t.ptid, |p| p.pid),
            ),
            None => (self.host, ev.tid, 0),
        };
        Rec {
            ev: ev.clone(),
            cid,
            pid,
            ppid,
            meta,
        }
    }

    /// Keeps `ev` in the ring and writes it to the open capture when in its scope.
    pub fn record(&mut self, ev: &Event, state: &State) {
        let rec = self.owner(ev, state);
        if self.active.as_ref().is_some_and(|a| ev.ts > a.until) {
            self.close();
        }
        if let Some(a) = self.active.as_mut() {
            if a.filter.keeps(&rec) {
                let r = a.w.write_event(ev);
                let full = self.max_file > 0 && a.w.offset() >= self.max_file;
                if let Err(e) = r {
                    tracing::error!("capture {}: {e}", a.path.display());
                    self.close();
                } else if full {
                    tracing::warn!(
                        "capture size limit reached ({} MB): {}",
                        self.max_file >> 20,
                        a.path.display()
                    );
                    self.close();
                }
            }
        }
        self.ring_bytes += cost(&rec.ev);
        self.ring.push_back(rec);
        while let Some(f) = self.ring.front() {
            let old = f.ev.ts.saturating_add(self.pre_ns) < ev.ts;
            if (!old && self.ring_bytes <= self.max_mem) || self.ring.len() == 1 {
                break;
            }
            self.ring_bytes -= cost(&f.ev);
            self.ring.pop_front();
        }
        if let Some(g) = &self.bytes_gauge {
            g.set(self.ring_bytes as i64);
        }
    }

    /// The rule of an alert fired on `ev` (already recorded, the ring's last event): opens a
    /// capture holding the ring's events in scope, or extends the open one.
    pub fn trigger(&mut self, ev: &Event, capture: bool, capture_duration_ms: u32) {
        if !(capture || self.all_rules) {
            return;
        }
        let dur = match capture_duration_ms {
            0 => self.default_ns,
            ms => u64::from(ms) * MS,
        };
        let until = ev.ts.saturating_add(dur);
        if let Some(a) = self.active.as_mut() {
            a.until = a.until.max(until);
            return;
        }
        let Some(last) = self.ring.back() else { return };
        let mut filter = match self.scope {
            Scope::Host => Filter::All,
            Scope::Auto if last.cid == self.host => Filter::All,
            Scope::Auto | Scope::Container => Filter::Container(last.cid),
            Scope::ProcessTree => Filter::Tree(HashSet::from([last.pid])),
        };
        let path = PathBuf::from(format!("{}_{:020}_{:020}.scap", self.prefix, ev.ts, ev.num));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let snap = (self.snapshot)();
        let mut w = match Writer::create(&path, &snap) {
            Ok(w) => w,
            Err(e) => {
                if !self.failed {
                    tracing::error!("capture: {e}");
                    self.failed = true;
                }
                return;
            }
        };
        self.failed = false;
        let mut n = 0;
        for r in &self.ring {
            if !filter.keeps(r) {
                continue;
            }
            if let Err(err) = w.write_event(&r.ev) {
                tracing::error!("capture {}: {err}", path.display());
                return;
            }
            n += 1;
        }
        tracing::info!(
            "capture started: {} ({n} events before the trigger, scope {})",
            path.display(),
            match filter {
                Filter::All => "host",
                Filter::Container(_) => "container",
                Filter::Tree(_) => "process_tree",
            }
        );
        self.active = Some(Active {
            w,
            path,
            until,
            filter,
        });
        // A limit smaller than the ring: the next event closes it.
    }

    /// The pipeline's consumer: records `ev` (after the rules ran on it), then lets every rule
    /// it matched trigger, held alerts (container metadata pending) included.
    pub fn on_event(&mut self, ev: &Event, det: &Detector) {
        self.record(ev, &det.state);
        for &m in det.last_matches() {
            let info = det.ruleset().info(m);
            self.trigger(ev, info.capture, info.capture_duration);
        }
    }

    /// Closes the open capture (end of the run).
    pub fn close(&mut self) {
        if let Some(a) = self.active.take() {
            match a.w.finish() {
                Ok(()) => {
                    tracing::info!("capture written: {}", a.path.display());
                    self.written.push(a.path);
                }
                Err(e) => tracing::error!("capture {}: {e}", a.path.display()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(num: u64, ts_ms: u64, payload: usize) -> Event {
        Event {
            num,
            ts: ts_ms * MS,
            tid: 1,
            etype: 3, // close exit
            buf: vec![0; payload],
            ends: vec![payload as u32],
            ..Event::default()
        }
    }

    fn flight(dir: &Path, pre_ms: u64, max_mb: u64) -> Flight {
        let cfg = saker_config::Capture {
            enabled: true,
            path_prefix: dir.join("c").display().to_string(),
            pre_trigger_ms: pre_ms,
            recorder_max_mb: max_mb,
            default_duration: 100,
            ..Default::default()
        };
        Flight::new(&cfg, Box::new(Snapshot::default)).unwrap()
    }

    fn nums(path: &Path) -> Vec<u64> {
        let mut r = saker_capture::Reader::open(path).unwrap();
        let mut e = Event::default();
        let mut out = Vec::new();
        while r.next_event(&mut e).unwrap() {
            out.push(e.ts / MS);
        }
        out
    }

    use std::path::Path;

    #[test]
    fn ring_keeps_the_pre_trigger_window_and_the_capture_ends_after_its_duration() {
        let d = tempfile::tempdir().unwrap();
        let mut f = flight(d.path(), 50, 64);
        let st = State::new(Default::default());
        for t in (0..=200).step_by(10) {
            f.record(&ev(t, t, 8), &st);
        }
        // 150..=200 are within 50 ms of the newest event.
        assert_eq!(f.ring.len(), 6);
        f.trigger(&ev(200, 200, 8), false, 0);
        assert!(f.active.is_none(), "not a capture rule, mode rules");
        f.trigger(&ev(200, 200, 8), true, 30);
        // A second trigger extends the end (default 100 ms after 220 = 320).
        f.record(&ev(220, 220, 8), &st);
        f.trigger(&ev(220, 220, 8), true, 0);
        for t in (230..=400).step_by(10) {
            f.record(&ev(t, t, 8), &st);
        }
        assert!(f.active.is_none());
        assert_eq!(f.written.len(), 1);
        let got = nums(&f.written[0]);
        // 210 was never recorded.
        let want: Vec<u64> = (150..=320).step_by(10).filter(|&t| t != 210).collect();
        assert_eq!(got, want);
        assert!(f.written[0].ends_with("c_00000000000200000000_00000000000000000200.scap"));
    }

    #[test]
    fn ring_memory_is_bounded() {
        let d = tempfile::tempdir().unwrap();
        let mut f = flight(d.path(), 60_000, 1);
        let st = State::new(Default::default());
        for t in 0..100 {
            f.record(&ev(t, t, 64 * 1024), &st);
        }
        assert!(f.memory() <= 1 << 20, "{}", f.memory());
        assert!(f.ring.len() >= 14 && f.ring.len() < 16, "{}", f.ring.len());
        assert_eq!(f.ring.back().unwrap().ev.num, 99);
    }

    /// A state with: host shell 10 (parent 1), its child 11, grandchild 12 (forked by 11), an
    /// unrelated host process 20, and processes 30, 31 in container aaa and 40 in bbb.
    fn scoped_state() -> State {
        let cg = |id: &str| -> Vec<Vec<u8>> {
            if id.is_empty() {
                vec![b"0::/user.slice".to_vec()]
            } else {
                vec![format!("0::/machine.slice/libpod-{id}.scope").into_bytes()]
            }
        };
        let p = |tid: i64, ptid: i64, c: &str| saker_event::ProcInfo {
            tid,
            pid: tid,
            ptid,
            comm: b"p".to_vec(),
            cgroups: cg(c),
            ..Default::default()
        };
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let mut st = State::new(Default::default());
        st.seed(&Snapshot {
            procs: vec![
                p(1, 0, ""),
                p(10, 1, ""),
                p(11, 10, ""),
                p(12, 11, ""),
                p(20, 1, ""),
                p(30, 1, &a),
                p(31, 30, &a),
                p(40, 1, &b),
            ],
            ..Default::default()
        });
        assert!(!st.thread(30).unwrap().container_id.is_empty());
        st
    }

    fn ev_of(num: u64, tid: i64) -> Event {
        Event {
            tid,
            ..ev(num, num, 8)
        }
    }

    /// Records one event per (tid) in order, triggers on the event of `trigger_tid`, records
    /// the same tids again, and returns the tids of the written file.
    fn scoped(scope: Option<&str>, trigger_tid: i64) -> Vec<i64> {
        let d = tempfile::tempdir().unwrap();
        let cfg = saker_config::Capture {
            enabled: true,
            path_prefix: d.path().join("c").display().to_string(),
            scope: scope.map(str::to_string),
            ..Default::default()
        };
        let mut f = Flight::new(&cfg, Box::new(Snapshot::default)).unwrap();
        let st = scoped_state();
        let tids = [10, 11, 12, 20, 30, 31, 40];
        let mut num = 0;
        for &t in &tids {
            num += 1;
            f.record(&ev_of(num, t), &st);
        }
        num += 1;
        let trig = ev_of(num, trigger_tid);
        f.record(&trig, &st);
        f.trigger(&trig, true, 0);
        for &t in &tids {
            num += 1;
            f.record(&ev_of(num, t), &st);
        }
        f.close();
        let mut r = saker_capture::Reader::open(&f.written[0]).unwrap();
        let mut e = Event::default();
        let mut out = Vec::new();
        while r.next_event(&mut e).unwrap() {
            out.push(e.tid);
        }
        out
    }

    #[test]
    fn scope_container_keeps_only_the_alerting_container() {
        // Default for an alert in a container: its container, before and after the trigger.
        assert_eq!(scoped(None, 31), vec![30, 31, 31, 30, 31]);
        assert_eq!(scoped(Some("container"), 40), vec![40, 40, 40]);
        // A host alert with scope container: the host's own processes.
        assert_eq!(
            scoped(Some("container"), 20),
            vec![10, 11, 12, 20, 20, 10, 11, 12, 20]
        );
    }

    #[test]
    fn scope_host_keeps_everything() {
        let all = vec![10, 11, 12, 20, 30, 31, 40];
        let mut want = all.clone();
        want.push(20);
        want.extend(&all);
        // Default for a host alert.
        assert_eq!(scoped(None, 20), want);
        let mut want = all.clone();
        want.push(31);
        want.extend(&all);
        assert_eq!(scoped(Some("host"), 31), want);
    }

    #[test]
    fn scope_process_tree_keeps_the_process_and_its_descendants() {
        assert_eq!(scoped(Some("process_tree"), 11), vec![11, 12, 11, 11, 12]);
        assert_eq!(scoped(Some("process_tree"), 30), vec![30, 31, 30, 30, 31]);
    }

    #[test]
    fn recorder_bytes_reach_the_gauge() {
        let d = tempfile::tempdir().unwrap();
        let mut f = flight(d.path(), 60_000, 1);
        let g = Gauge::<i64, AtomicI64>::default();
        f.bytes_gauge = Some(g.clone());
        let st = State::new(Default::default());
        for t in 0..3 {
            f.record(&ev(t, t, 1000), &st);
        }
        assert_eq!(g.get(), f.memory() as i64);
        assert!(g.get() >= 3000, "{}", g.get());
    }
}
