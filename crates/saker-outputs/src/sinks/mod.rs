//! Output channels. Each runs as one task that owns its queue's receiver, so a
//! slow channel only ever fills its own queue.

pub mod cloudwatch;
pub mod file;
pub mod http;
pub mod program;
pub mod stdout;
pub mod syslog;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use saker_rules::Alert;
use tokio::sync::mpsc;

use crate::format::Formatter;
use crate::metrics::Metrics;
use crate::report::{Kind, LogLimiter, Reason};
use crate::spool::{Reader, Spool};

/// Longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// One output's counters and reporting, shared by the hub (which enqueues) and
/// the sink task (which delivers).
pub struct OutputState {
    pub name: &'static str,
    pub depth: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub sent: Counter,
    pub failures: Counter,
    pub drops: Counter,
    pub retries: Counter,
    pub metrics: Arc<Metrics>,
    pub log: LogLimiter,
    /// Alerts handed to the sink (queued, spooled, or recovered from the spool).
    pub accepted: AtomicU64,
    /// Alerts the sink is done with (delivered or dropped).
    pub finished: AtomicU64,
    /// A waiting sender ran out of patience with this output's full queue: later senders
    /// do not wait again until the queue takes an alert (a dead output costs one wait).
    pub stalled: std::sync::atomic::AtomicBool,
    pub spool: Option<Arc<Spool>>,
}

impl OutputState {
    pub fn new(
        name: &'static str,
        metrics: &Arc<Metrics>,
        spool: Option<Arc<Spool>>,
        log_every: Duration,
    ) -> OutputState {
        let l = vec![("output".to_string(), name.to_string())];
        OutputState {
            name,
            depth: metrics.output_queue_depth.get_or_create(&l).clone(),
            sent: metrics.output_sent.get_or_create(&l).clone(),
            failures: metrics.output_failures.get_or_create(&l).clone(),
            drops: metrics.output_drops.get_or_create(&l).clone(),
            retries: metrics.output_retries.get_or_create(&l).clone(),
            metrics: metrics.clone(),
            log: LogLimiter::new(name, log_every),
            accepted: AtomicU64::new(0),
            finished: AtomicU64::new(0),
            stalled: std::sync::atomic::AtomicBool::new(false),
            spool,
        }
    }

    /// Counts and reports `n` lost alerts.
    pub fn dropped(&self, n: u64, reason: Reason, detail: &str) {
        if n == 0 {
            return;
        }
        self.drops.inc_by(n);
        self.metrics
            .output_drops_by_reason
            .get_or_create(&vec![
                ("output".to_string(), self.name.to_string()),
                ("reason".to_string(), reason.label().to_string()),
            ])
            .inc_by(n);
        if matches!(reason, Reason::QueueFull | Reason::SpoolFull) {
            self.metrics.falco_outputs_queue_drops.inc_by(n);
        }
        self.log.note(Kind::Dropped(reason), n, detail);
    }

    /// Alerts accepted and not yet delivered or dropped.
    pub fn outstanding(&self) -> u64 {
        self.accepted
            .load(Ordering::Relaxed)
            .saturating_sub(self.finished.load(Ordering::Relaxed))
    }

    pub fn update_spool_gauge(&self) {
        if let Some(sp) = &self.spool {
            self.metrics
                .output_spool_bytes
                .get_or_create(&vec![("output".to_string(), self.name.to_string())])
                .set(sp.bytes() as i64);
        }
    }
}

/// Where a sink takes its alerts from.
pub enum Input {
    Mem(mpsc::Receiver<Arc<Alert>>),
    /// The disk spool: durable, so transient failures are retried without limit.
    Disk(Reader),
}

/// Attempts per alert (`retries` after the first) and the first backoff.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    pub retries: u32,
    pub backoff_ms: u64,
}

/// What a sink task receives and shares.
pub struct SinkCtx {
    pub name: &'static str,
    pub input: Input,
    pub fmt: Formatter,
    pub out: Arc<OutputState>,
    pub retry: Retry,
    /// Writes slower than this are logged as blocked (falco.yaml `output_timeout`).
    pub output_timeout: Duration,
}

impl SinkCtx {
    /// An alert already waiting in the in-memory queue, if any (never waits).
    pub fn try_recv(&mut self) -> Option<Arc<Alert>> {
        match &mut self.input {
            Input::Mem(rx) => {
                let a = rx.try_recv().ok()?;
                self.out.depth.dec();
                Some(a)
            }
            Input::Disk(_) => None,
        }
    }

    /// Next alert, oldest first; `None` once the hub is shut down and the queue is empty.
    /// Cancel-safe (no alert is taken unless it is returned).
    pub async fn recv(&mut self) -> Option<Arc<Alert>> {
        loop {
            match &mut self.input {
                Input::Mem(rx) => {
                    let a = rx.recv().await;
                    if a.is_some() {
                        self.out.depth.dec();
                    }
                    return a;
                }
                Input::Disk(r) => match r.next_record() {
                    Ok(Some(Ok(a))) => {
                        self.out.depth.dec();
                        return Some(Arc::new(a));
                    }
                    Ok(Some(Err(why))) => {
                        self.out.depth.dec();
                        self.give_up(1, Reason::SpoolCorrupt, &why);
                    }
                    Ok(None) if r.finished() => return None,
                    Ok(None) => r.wait().await,
                    Err(e) => {
                        self.out
                            .log
                            .note(Kind::Failing, 1, &format!("reading the spool: {e}"));
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                },
            }
        }
    }

    /// True when alerts survive failures on disk (then they are retried until delivered).
    pub fn durable(&self) -> bool {
        matches!(self.input, Input::Disk(_))
    }

    fn ack(&mut self, n: u64) {
        if let Input::Disk(r) = &mut self.input {
            if let Err(e) = r.ack(n as usize) {
                // The alerts went out; at worst they are sent again after a restart.
                tracing::warn!(
                    "{} output: cannot record delivery in the spool: {e}",
                    self.name
                );
            }
            self.out.update_spool_gauge();
        }
    }

    /// The `n` oldest alerts taken were delivered.
    pub fn delivered(&mut self, n: u64) {
        if n == 0 {
            return;
        }
        self.out.sent.inc_by(n);
        self.out.finished.fetch_add(n, Ordering::Relaxed);
        self.out.log.recovered();
        self.ack(n);
    }

    /// The `n` oldest alerts taken are given up: one failure, `n` dropped alerts.
    pub fn give_up(&mut self, n: u64, reason: Reason, detail: &str) {
        self.out.failures.inc();
        self.out.dropped(n, reason, detail);
        self.out.finished.fetch_add(n, Ordering::Relaxed);
        self.ack(n);
    }

    /// The `n` alerts taken are consumed without a delivery of their own (aggregated).
    pub fn absorbed(&mut self, n: u64) {
        self.out.finished.fetch_add(n, Ordering::Relaxed);
        self.ack(n);
    }

    /// After failed attempt number `attempt` (0-based): counts and reports the
    /// failure and sleeps the backoff. False when the alert should be given up:
    /// the retries are spent and the alert is not on disk.
    pub async fn retry_wait(&self, attempt: &mut u32, err: &str) -> bool {
        if !self.durable() && *attempt >= self.retry.retries {
            return false;
        }
        self.out.retries.inc();
        self.out.log.note(Kind::Failing, 1, err);
        tokio::time::sleep(backoff(self.retry.backoff_ms, *attempt)).await;
        *attempt = attempt.saturating_add(1);
        true
    }

    /// Logs a write that took longer than `output_timeout` (Falco logs, it does not drop).
    pub fn check_slow(&self, started: std::time::Instant) {
        let took = started.elapsed();
        if took > self.output_timeout {
            tracing::warn!(
                "{} output: output timeout: a write took {} ms (output_timeout {} ms); alerts queue up behind it",
                self.name,
                took.as_millis(),
                self.output_timeout.as_millis()
            );
        }
    }
}

/// An error and its causes, `a: b: c`, each level once (connection refused,
/// a timeout or a certificate problem is usually only in a cause).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        let t = c.to_string();
        if !s.contains(&t) {
            s.push_str(": ");
            s.push_str(&t);
        }
        src = c.source();
    }
    s
}

/// Exponential backoff with jitter for attempt 0, 1, 2, ...: a random wait in
/// [d/2, d] with d = base * 2^attempt, at most [`MAX_BACKOFF`], so that many
/// Saker instances do not retry in lockstep against a recovering endpoint.
pub fn backoff(base_ms: u64, attempt: u32) -> Duration {
    let d = base_ms
        .max(1)
        .saturating_mul(1u64 << attempt.min(20))
        .min(MAX_BACKOFF.as_millis() as u64);
    Duration::from_millis(d / 2 + fastrand::u64(0..=d - d / 2))
}

#[cfg(test)]
pub(crate) fn test_ctx(json: bool) -> (SinkCtx, mpsc::Sender<Arc<Alert>>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let (tx, rx) = mpsc::channel(16);
    let ctx = SinkCtx {
        name: "test",
        input: Input::Mem(rx),
        fmt: Formatter {
            json,
            opts: Default::default(),
        },
        out: Arc::new(OutputState::new(
            "test",
            &metrics,
            None,
            Duration::from_secs(10),
        )),
        retry: Retry {
            retries: 0,
            backoff_ms: 1,
        },
        output_timeout: Duration::from_secs(2),
    };
    (ctx, tx, metrics)
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_grows_with_jitter_and_cap() {
        for attempt in 0..30 {
            let d = super::backoff(200, attempt).as_millis() as u64;
            let full = (200u64 << attempt.min(20)).min(10_000);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d} ms");
        }
        let spread: std::collections::BTreeSet<_> =
            (0..50).map(|_| super::backoff(1000, 3)).collect();
        assert!(spread.len() > 10, "no jitter: {spread:?}");
    }
}
