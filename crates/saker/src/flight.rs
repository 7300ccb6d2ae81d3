//! Capture on alert (Falco's `capture.*` keys and the rules' `capture`/`capture_duration`),
//! with a flight recorder: the recent events are kept in a bounded in-memory ring, so a
//! capture starts `capture.pre_trigger_ms` before the event that fired the rule, then goes
//! on for the rule's `capture_duration` (else `capture.default_duration`) after it.
//!
//! One capture is open at a time: a trigger while it is open extends its end, as the events
//! are already being written. The file is `{path_prefix}_{ts:020}_{evt.num:020}.scap` (Falco's
//! name) and replays with `saker replay`.

use std::collections::VecDeque;
use std::path::PathBuf;

use saker_capture::{FileSink, Writer};
use saker_event::{Event, Snapshot};

use crate::pipeline::Detector;

const MS: u64 = 1_000_000;

/// The metadata a new capture file starts with.
pub type SnapshotFn = Box<dyn FnMut() -> Snapshot>;

pub struct Flight {
    prefix: String,
    all_rules: bool,
    default_ns: u64,
    pre_ns: u64,
    max_mem: usize,
    /// Bytes; 0 = unlimited.
    max_file: u64,
    ring: VecDeque<Event>,
    ring_bytes: usize,
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
}

/// The memory an event held in the ring costs.
fn cost(ev: &Event) -> usize {
    std::mem::size_of::<Event>() + ev.buf.capacity() + ev.ends.capacity() * 4
}

impl Flight {
    /// `None` when `capture.enabled` is off.
    pub fn new(cfg: &saker_config::Capture, snapshot: SnapshotFn) -> Option<Flight> {
        cfg.enabled.then(|| Flight {
            prefix: cfg.path_prefix.clone(),
            all_rules: cfg.mode == "all_rules",
            default_ns: cfg.default_duration.saturating_mul(MS),
            pre_ns: cfg.pre_trigger_ms.saturating_mul(MS),
            max_mem: usize::try_from(cfg.recorder_max_mb.saturating_mul(1 << 20))
                .unwrap_or(usize::MAX),
            max_file: cfg.max_file_size_mb.saturating_mul(1 << 20),
            ring: VecDeque::new(),
            ring_bytes: 0,
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

    /// Keeps `ev` in the ring and writes it to the open capture.
    pub fn record(&mut self, ev: &Event) {
        if self.active.as_ref().is_some_and(|a| ev.ts > a.until) {
            self.close();
        }
        if let Some(a) = self.active.as_mut() {
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
        let c = ev.clone();
        self.ring_bytes += cost(&c);
        self.ring.push_back(c);
        while let Some(f) = self.ring.front() {
            let old = f.ts.saturating_add(self.pre_ns) < ev.ts;
            if (!old && self.ring_bytes <= self.max_mem) || self.ring.len() == 1 {
                break;
            }
            self.ring_bytes -= cost(f);
            self.ring.pop_front();
        }
    }

    /// The rule of an alert fired on `ev` (already recorded): opens a capture holding the
    /// ring, or extends the open one.
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
        for e in &self.ring {
            if let Err(err) = w.write_event(e) {
                tracing::error!("capture {}: {err}", path.display());
                return;
            }
        }
        tracing::info!(
            "capture started: {} ({} events before the trigger)",
            path.display(),
            self.ring.len()
        );
        self.active = Some(Active { w, path, until });
        // A limit smaller than the ring: the next event closes it.
    }

    /// The pipeline's consumer: records `ev` (after the rules ran on it), then lets every rule
    /// it matched trigger, held alerts (container metadata pending) included.
    pub fn on_event(&mut self, ev: &Event, det: &Detector) {
        self.record(ev);
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
        for t in (0..=200).step_by(10) {
            f.record(&ev(t, t, 8));
        }
        // 150..=200 are within 50 ms of the newest event.
        assert_eq!(f.ring.len(), 6);
        f.trigger(&ev(200, 200, 8), false, 0);
        assert!(f.active.is_none(), "not a capture rule, mode rules");
        f.trigger(&ev(200, 200, 8), true, 30);
        // A second trigger extends the end (default 100 ms after 220 = 320).
        f.record(&ev(220, 220, 8));
        f.trigger(&ev(220, 220, 8), true, 0);
        for t in (230..=400).step_by(10) {
            f.record(&ev(t, t, 8));
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
        for t in 0..100 {
            f.record(&ev(t, t, 64 * 1024));
        }
        assert!(f.memory() <= 1 << 20, "{}", f.memory());
        assert!(f.ring.len() >= 14 && f.ring.len() < 16, "{}", f.ring.len());
        assert_eq!(f.ring.back().unwrap().num, 99);
    }
}
