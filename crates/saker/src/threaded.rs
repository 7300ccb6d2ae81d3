//! `engine.workers: 2`: reading and decoding on their own thread. A [`Decode`] source (a capture
//! file's reader: block reads, parsing, v1->v2 conversion; or the live probe: ring reads, record
//! parsing, the two rings' timestamp merge) runs on a thread of its own and hands batches of
//! decoded events to the thread of state and rules over a channel; the batches come back through
//! a second channel and are refilled in place, so steady state allocates nothing per event.
//!
//! Only decoding moves. Rules read the state as of each event (thread and fd tables,
//! ancestors), so evaluating them elsewhere would need a copy of that state per event; state,
//! rules and alert rendering stay on one thread and see the events in the source's order.
//! Alerts come out exactly as with one thread, in the same order.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use std::collections::BTreeSet;
use std::path::Path;

use anyhow::anyhow;
use saker_event::{Event, Snapshot};
use saker_probe::{Probe, ProbeConfig, ProbeControl};

use crate::pipeline::{FileSource, Source, Stage, Until};

/// Events per batch handed across. Measured on 2 vCPUs (3 M events, upstream rules): 64 costs
/// 1.4x the CPU of 512 (a wake-up per batch); 256 to 4096 are equal on an idle machine, but
/// with other builds running 4096 (1 MB+ of slots per batch, cold when refilled) nearly
/// doubled the CPU of the split. 512 keeps the batches in flight in cache.
pub const BATCH: usize = 512;

/// Batches in flight: how far decoding may run ahead of the rules. More only costs memory
/// once the consumer is the slower side.
const IN_FLIGHT: usize = 4;

/// How often a decoder waiting for a free batch checks the stop flag.
const STOP_CHECK: Duration = Duration::from_millis(50);

/// Decoded events, reused: `events[..len]` are this batch's, the rest keep their buffers for
/// the next fill.
#[derive(Default)]
pub struct Batch {
    events: Vec<Event>,
    len: usize,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot for the next event, to decode into (its old contents are overwritten by the
    /// decoder); [`Batch::commit`] keeps it.
    pub fn slot(&mut self) -> &mut Event {
        if self.len == self.events.len() {
            self.events.push(Event::default());
        }
        &mut self.events[self.len]
    }

    pub fn commit(&mut self) {
        self.len += 1;
    }

    fn events(&self) -> &[Event] {
        &self.events[..self.len]
    }
}

/// A source that can run on the decode thread.
pub trait Decode {
    /// Puts the events available now into `out` (which comes empty), up to [`BATCH`] for a
    /// file (the probe hands over one pass over its rings whole), waiting up to `wait` for the
    /// first. `None` once the input has ended (what it put in `out` before still counts).
    fn fill(&mut self, wait: Duration, out: &mut Batch) -> anyhow::Result<Option<usize>>;

    /// At a stop: what the source still holds (into an empty `out`).
    fn drain(&mut self, _out: &mut Batch) -> anyhow::Result<()> {
        Ok(())
    }

    /// Progress (bytes read), shown by the replay's progress bar.
    fn position(&self) -> u64 {
        0
    }
}

/// Sources that report how far they have read.
pub trait Position {
    fn position(&self) -> u64;
}

enum Msg {
    Batch(Batch),
    End,
    Failed(anyhow::Error),
}

/// A [`Decode`] source on its own thread, as a pipeline [`Source`].
pub struct Threaded {
    rx: Option<Receiver<Msg>>,
    free: Option<Sender<Batch>>,
    stop: Arc<AtomicBool>,
    position: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
    ended: bool,
}

impl Threaded {
    /// Starts the decode thread. `build` runs on it (the capture reader and the probe cannot
    /// move between threads) and returns the source and what the caller needs of it before
    /// the first event (the capture's tables); its error is returned here.
    pub fn spawn<D, T, B>(name: &str, build: B) -> anyhow::Result<(Threaded, T)>
    where
        D: Decode + 'static,
        T: Send + 'static,
        B: FnOnce() -> anyhow::Result<(D, T)> + Send + 'static,
    {
        let (tx, rx) = mpsc::channel::<Msg>();
        let (free_tx, free_rx) = mpsc::channel::<Batch>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<anyhow::Result<T>>(1);
        let stop = Arc::new(AtomicBool::new(false));
        let position = Arc::new(AtomicU64::new(0));
        for _ in 0..IN_FLIGHT {
            let _ = free_tx.send(Batch::default());
        }
        let (st, pos) = (stop.clone(), position.clone());
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let src = match build() {
                    Ok((src, t)) => {
                        let _ = ready_tx.send(Ok(t));
                        src
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                decode_loop(src, &tx, &free_rx, &st, &pos);
            })?;
        let t = ready_rx
            .recv()
            .map_err(|_| anyhow!("the {name} thread stopped while starting"))??;
        Ok((
            Threaded {
                rx: Some(rx),
                free: Some(free_tx),
                stop,
                position,
                thread: Some(thread),
                ended: false,
            },
            t,
        ))
    }

    /// Waits for the decode thread after it ended or failed; a panic there is an error here.
    fn join(&mut self) -> anyhow::Result<()> {
        self.ended = true;
        match self.thread.take().map(JoinHandle::join) {
            Some(Err(_)) => Err(anyhow!("the decode thread panicked")),
            _ => Ok(()),
        }
    }

    /// Hands one message's events to `f`; `None` at the end.
    fn take<F: FnMut(&Event)>(&mut self, m: Msg, f: &mut F) -> anyhow::Result<Option<usize>> {
        match m {
            Msg::Batch(mut b) => {
                b.events().iter().for_each(&mut *f);
                let n = b.len;
                b.len = 0;
                if let Some(free) = &self.free {
                    let _ = free.send(b);
                }
                Ok(Some(n))
            }
            Msg::End => {
                self.join()?;
                Ok(None)
            }
            Msg::Failed(e) => {
                self.join()?;
                Err(e)
            }
        }
    }
}

/// The decode thread: fills free batches and sends them, until the input ends, the consumer
/// goes away, or the stop flag asks for a drain.
fn decode_loop<D: Decode>(
    mut src: D,
    tx: &Sender<Msg>,
    free: &Receiver<Batch>,
    stop: &AtomicBool,
    position: &AtomicU64,
) {
    let mut batch: Option<Batch> = None;
    loop {
        let mut b = match batch.take() {
            Some(b) => b,
            None => loop {
                match free.recv_timeout(STOP_CHECK) {
                    Ok(b) => break b,
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return,
                }
                // The consumer holds every batch: it is slower, or gone; a stop still drains.
                if stop.load(Ordering::Relaxed) {
                    match free.recv() {
                        Ok(b) => break b,
                        Err(_) => return,
                    }
                }
            },
        };
        if stop.load(Ordering::Relaxed) {
            let res = src.drain(&mut b);
            let _ = tx.send(Msg::Batch(b));
            let _ = tx.send(match res {
                Ok(()) => Msg::End,
                Err(e) => Msg::Failed(e),
            });
            return;
        }
        let res = src.fill(crate::pipeline::POLL_WAIT, &mut b);
        position.store(src.position(), Ordering::Relaxed);
        match res {
            Ok(Some(_)) if b.is_empty() => batch = Some(b),
            Ok(Some(_)) => {
                if tx.send(Msg::Batch(b)).is_err() {
                    return;
                }
            }
            Ok(None) => {
                if !b.is_empty() {
                    let _ = tx.send(Msg::Batch(b));
                }
                let _ = tx.send(Msg::End);
                return;
            }
            Err(e) => {
                // Events decoded before the error go first, as with one thread.
                if !b.is_empty() {
                    let _ = tx.send(Msg::Batch(b));
                }
                let _ = tx.send(Msg::Failed(e));
                return;
            }
        }
    }
}

impl Source for Threaded {
    type Event = Event;

    fn poll<F: FnMut(&Event)>(
        &mut self,
        wait: Duration,
        mut f: F,
    ) -> anyhow::Result<Option<usize>> {
        if self.ended {
            return Ok(None);
        }
        let Some(rx) = &self.rx else { return Ok(None) };
        let m = match rx.recv_timeout(wait) {
            Ok(m) => m,
            Err(RecvTimeoutError::Timeout) => return Ok(Some(0)),
            Err(RecvTimeoutError::Disconnected) => {
                self.join()?;
                return Err(anyhow!(
                    "the decode thread stopped without ending its input"
                ));
            }
        };
        self.take(m, &mut f)
    }

    /// Asks the decode thread to stop and takes everything it decoded, then what its source
    /// still held.
    fn drain<F: FnMut(&Event)>(&mut self, mut f: F) -> anyhow::Result<()> {
        self.stop.store(true, Ordering::Relaxed);
        while !self.ended {
            let Some(rx) = &self.rx else { break };
            match rx.recv() {
                Ok(m) => {
                    self.take(m, &mut f)?;
                }
                Err(_) => return self.join(),
            }
        }
        Ok(())
    }
}

impl Position for Threaded {
    fn position(&self) -> u64 {
        self.position.load(Ordering::Relaxed)
    }
}

impl Drop for Threaded {
    /// Stops the thread without draining: closing both channels ends its loop.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.rx.take();
        self.free.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Whether this run splits decoding off (`engine.workers`; auto counts the CPUs this process
/// may use).
pub fn split(cfg: &saker_config::Config) -> bool {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    cfg.engine.split(cpus)
}

/// An input read on the detection thread (`One`) or on a decode thread of its own (`Two`).
#[allow(clippy::large_enum_variant)] // one per run; a box would add a hop per event
pub enum Input<S> {
    One(S),
    Two(Threaded),
}

/// A capture file, read on the detection thread or on its own.
pub type FileInput = Input<FileSource>;

/// The live probe, polled on the detection thread or on its own.
pub type ProbeInput = Input<Probe>;

impl<S: Source<Event = Event>> Input<S> {
    /// The pipeline's loop over this input.
    pub fn drive<T: Stage<S> + Stage<Threaded>>(
        &mut self,
        stage: &mut T,
        until: &Until,
    ) -> anyhow::Result<()> {
        match self {
            Input::One(s) => crate::pipeline::drive(s, stage, until),
            Input::Two(t) => crate::pipeline::drive(t, stage, until),
        }
    }
}

impl FileInput {
    /// Opens `file` (on the decode thread when `split`), passing over the syscall events of
    /// types outside `needed` (see [`FileSource::skip_unneeded`]), with its process/fd/user
    /// tables.
    pub fn open(
        file: &Path,
        needed: Option<BTreeSet<String>>,
        split: bool,
    ) -> anyhow::Result<(FileInput, Snapshot)> {
        let open = move |file: &Path| {
            let mut src = FileSource::open(file)?;
            src.skip_unneeded(needed.as_ref());
            let snap = src.reader.snapshot().clone();
            anyhow::Ok((src, snap))
        };
        if !split {
            let (src, snap) = open(file)?;
            return Ok((Input::One(src), snap));
        }
        let file = file.to_path_buf();
        let (t, snap) = Threaded::spawn("saker-decode", move || open(&file))?;
        Ok((Input::Two(t), snap))
    }
}

impl ProbeInput {
    /// Loads and attaches the probe (on the decode thread when `split`: its ring buffer is
    /// not `Send`, so it is built where it is polled), with the handle the detection thread
    /// uses between batches (counters, prefilter, what was attached).
    pub fn open(pc: &ProbeConfig, split: bool) -> anyhow::Result<(ProbeInput, ProbeControl)> {
        if !split {
            let probe = Probe::load(pc)?;
            let control = probe.control();
            return Ok((Input::One(probe), control));
        }
        let pc = pc.clone();
        let (t, control) = Threaded::spawn("saker-probe", move || {
            let probe = Probe::load(&pc)?;
            let control = probe.control();
            anyhow::Ok((probe, control))
        })?;
        Ok((Input::Two(t), control))
    }
}

/// The capture reader on the decode thread: events are decoded straight into the batch.
impl Decode for FileSource {
    fn fill(&mut self, _wait: Duration, out: &mut Batch) -> anyhow::Result<Option<usize>> {
        let mut n = 0;
        while n < BATCH {
            if !self.reader.next_event(out.slot())? {
                return Ok(None);
            }
            out.commit();
            n += 1;
        }
        Ok(Some(n))
    }

    fn position(&self) -> u64 {
        self.reader.offset()
    }
}

/// The probe on the decode thread: a pass over the rings is swapped into the batch whole
/// (no copy; the probe refills the batch's previous vector).
impl Decode for Probe {
    fn fill(&mut self, wait: Duration, out: &mut Batch) -> anyhow::Result<Option<usize>> {
        debug_assert!(out.is_empty());
        out.len = self.poll_swap(wait, &mut out.events)?;
        Ok(Some(out.len))
    }

    /// What the kernel already produced at the stop, as with one thread.
    fn drain(&mut self, out: &mut Batch) -> anyhow::Result<()> {
        self.fill(crate::pipeline::PROBE_DRAIN, out).map(|_| ())
    }
}

impl Position for FileSource {
    fn position(&self) -> u64 {
        self.reader.offset()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{drive, Flow};

    /// Numbered events in batches of `per`, failing after `fail_at` when set.
    struct Counter {
        next: u64,
        end: u64,
        per: usize,
        fail_at: Option<u64>,
        drained: Arc<AtomicBool>,
    }

    impl Decode for Counter {
        fn fill(&mut self, _wait: Duration, out: &mut Batch) -> anyhow::Result<Option<usize>> {
            if self.next == self.end {
                return Ok(None);
            }
            let mut n = 0;
            while n < self.per && self.next < self.end {
                if Some(self.next) == self.fail_at {
                    anyhow::bail!("bad block at event {}", self.next);
                }
                self.next += 1;
                let e = out.slot();
                e.num = self.next;
                e.buf.clear();
                e.buf.extend_from_slice(&self.next.to_le_bytes());
                out.commit();
                n += 1;
            }
            Ok(Some(n))
        }

        fn drain(&mut self, out: &mut Batch) -> anyhow::Result<()> {
            self.drained.store(true, Ordering::Relaxed);
            *out.slot() = Event::new(u64::MAX, 0, 0, 0, 0);
            out.commit();
            Ok(())
        }

        fn position(&self) -> u64 {
            self.next
        }
    }

    fn counter(end: u64, fail_at: Option<u64>) -> (Threaded, Arc<AtomicBool>) {
        let drained = Arc::new(AtomicBool::new(false));
        let d = drained.clone();
        let (t, ()) = Threaded::spawn("test-decode", move || {
            Ok((
                Counter {
                    next: 0,
                    end,
                    per: 1000,
                    fail_at,
                    drained: d,
                },
                (),
            ))
        })
        .unwrap();
        (t, drained)
    }

    #[derive(Default)]
    struct Collect {
        nums: Vec<u64>,
        stop_after: Option<usize>,
        batches: usize,
    }

    impl Stage<Threaded> for Collect {
        fn event(&mut self, ev: &Event) {
            if ev.num != u64::MAX {
                assert_eq!(
                    ev.buf,
                    ev.num.to_le_bytes(),
                    "event {} carries its own bytes",
                    ev.num
                );
            }
            self.nums.push(ev.num);
        }

        fn after_batch(&mut self, _src: &mut Threaded, n: usize) -> anyhow::Result<Flow> {
            if n > 0 {
                self.batches += 1;
            }
            Ok(match self.stop_after {
                Some(k) if self.batches >= k => Flow::Stop,
                _ => Flow::Continue,
            })
        }
    }

    #[test]
    fn every_event_in_order_then_the_end() {
        let (mut t, drained) = counter(100_000, None);
        let mut c = Collect::default();
        drive(&mut t, &mut c, &Until::default()).unwrap();
        // The source's own order, across 100 recycled batches; the input's end is not a stop,
        // but the drain after the loop still asks the source (nothing left to hand).
        assert_eq!(c.nums, (1..=100_000).collect::<Vec<_>>());
        assert_eq!(c.batches, 100);
        assert!(!drained.load(Ordering::Relaxed));
        assert_eq!(t.position(), 100_000);
        assert!(t.poll(Duration::ZERO, |_| {}).unwrap().is_none());
    }

    #[test]
    fn a_stop_drains_what_was_decoded_then_the_source() {
        let (mut t, drained) = counter(u64::MAX - 1, None);
        let mut c = Collect {
            stop_after: Some(3),
            ..Default::default()
        };
        drive(&mut t, &mut c, &Until::default()).unwrap();
        assert!(drained.load(Ordering::Relaxed));
        // Everything decoded reached the stage, in order, then the source's drain.
        assert_eq!(c.nums.last(), Some(&u64::MAX));
        let n = c.nums.len() - 1;
        assert!(n >= 3000, "{n}");
        assert!(n <= (3 + IN_FLIGHT + 1) * 1000, "{n}");
        assert_eq!(c.nums[..n], (1..=n as u64).collect::<Vec<_>>());
    }

    #[test]
    fn a_stop_flag_ends_the_loop() {
        let (mut t, drained) = counter(u64::MAX - 1, None);
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let setter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            s.store(true, Ordering::Relaxed);
        });
        let mut c = Collect::default();
        drive(&mut t, &mut c, &Until::new(&stop, None)).unwrap();
        setter.join().unwrap();
        assert!(drained.load(Ordering::Relaxed));
        assert_eq!(c.nums.last(), Some(&u64::MAX));
    }

    #[test]
    fn an_error_comes_after_the_events_before_it() {
        let (mut t, _) = counter(10_000, Some(2500));
        let mut c = Collect::default();
        let e = drive(&mut t, &mut c, &Until::default()).unwrap_err();
        assert_eq!(e.to_string(), "bad block at event 2500");
        assert_eq!(c.nums, (1..=2500).collect::<Vec<_>>());
    }

    #[test]
    fn a_failed_build_is_returned() {
        let e = Threaded::spawn::<Counter, (), _>("test-decode", || {
            anyhow::bail!("cannot read x.scap")
        })
        .err()
        .unwrap();
        assert_eq!(e.to_string(), "cannot read x.scap");
    }

    #[test]
    fn dropping_mid_stream_stops_the_thread() {
        let (mut t, _) = counter(u64::MAX - 1, None);
        assert_eq!(t.poll(Duration::from_secs(5), |_| {}).unwrap(), Some(1000));
        // Drop joins the thread: this returns only once it has stopped.
        drop(t);
    }
}
