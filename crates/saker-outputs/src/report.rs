//! What users see when an output has trouble: one rate-limited log line per
//! output and kind of trouble, carrying the count since the previous line, and
//! the per-output summary printed at exit.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Why alerts were lost (the `reason` label of `saker_output_drops_by_reason_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// The in-memory queue was full when the alert was raised.
    QueueFull,
    /// The disk spool reached `outputs_queue.spool_max_bytes`.
    SpoolFull,
    /// Writing to the disk spool failed.
    SpoolError,
    /// A spooled record could not be read back.
    SpoolCorrupt,
    /// Delivery failed on every attempt.
    GaveUp,
    /// The endpoint refused the alert (a 4xx, an invalid parameter).
    Rejected,
    /// Still undelivered when `outputs.shutdown_timeout` ran out.
    Shutdown,
}

impl Reason {
    pub fn label(self) -> &'static str {
        match self {
            Reason::QueueFull => "queue_full",
            Reason::SpoolFull => "spool_full",
            Reason::SpoolError => "spool_error",
            Reason::SpoolCorrupt => "spool_corrupt",
            Reason::GaveUp => "gave_up",
            Reason::Rejected => "rejected",
            Reason::Shutdown => "shutdown",
        }
    }

    fn text(self) -> &'static str {
        match self {
            Reason::QueueFull => "queue full",
            Reason::SpoolFull => "spool full",
            Reason::SpoolError => "spool write failed",
            Reason::SpoolCorrupt => "spool record unreadable",
            Reason::GaveUp => "delivery failed",
            Reason::Rejected => "rejected by the endpoint",
            Reason::Shutdown => "not delivered by the shutdown deadline",
        }
    }
}

/// One kind of trouble to report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// A delivery attempt failed and will be retried.
    Failing,
    Dropped(Reason),
}

#[derive(Default)]
struct Entry {
    last: Option<Instant>,
    pending: u64,
    detail: String,
}

/// Rate-limited reporting for one output: the first event of a kind is logged
/// at once, later ones are summed and logged at most once per `every`.
pub struct LogLimiter {
    name: &'static str,
    every: Duration,
    entries: Mutex<BTreeMap<Kind, Entry>>,
    /// Dropped alerts per reason over the whole run (for the exit summary).
    totals: Mutex<BTreeMap<Reason, u64>>,
    /// Consecutive failed attempts, and when the streak began.
    streak: Mutex<Option<(u64, Instant)>>,
}

fn plural(n: u64, one: &str, many: &str) -> String {
    if n == 1 {
        format!("1 {one}")
    } else {
        format!("{n} {many}")
    }
}

impl LogLimiter {
    pub fn new(name: &'static str, every: Duration) -> LogLimiter {
        LogLimiter {
            name,
            every,
            entries: Mutex::new(BTreeMap::new()),
            totals: Mutex::new(BTreeMap::new()),
            streak: Mutex::new(None),
        }
    }

    /// Records `n` events of `kind`; `detail` is the latest error text.
    pub fn note(&self, kind: Kind, n: u64, detail: &str) {
        if let Kind::Dropped(r) = kind {
            *lock(&self.totals).entry(r).or_default() += n;
        }
        if kind == Kind::Failing {
            let mut s = lock(&self.streak);
            let e = s.get_or_insert((0, Instant::now()));
            e.0 += n;
        }
        let now = Instant::now();
        let mut entries = lock(&self.entries);
        let e = entries.entry(kind).or_default();
        e.pending += n;
        if detail != e.detail {
            e.detail = detail.to_string();
        }
        if e.last.is_none_or(|t| now.duration_since(t) >= self.every) {
            let first = e.last.is_none();
            let (n, d) = (e.pending, e.detail.clone());
            e.pending = 0;
            e.last = Some(now);
            drop(entries);
            self.emit(kind, n, &d, !first);
        }
    }

    /// A delivery succeeded: ends a failure streak with one line.
    pub fn recovered(&self) {
        let Some((n, since)) = lock(&self.streak).take() else {
            return;
        };
        self.flush();
        tracing::warn!(
            "{} output: delivering again after {} in {:.1} s",
            self.name,
            plural(n, "failed attempt", "failed attempts"),
            since.elapsed().as_secs_f64()
        );
    }

    /// Logs every count not yet reported (periodically and at exit).
    pub fn flush(&self) {
        let pending: Vec<(Kind, u64, String)> = lock(&self.entries)
            .iter_mut()
            .filter(|(_, e)| e.pending > 0)
            .map(|(k, e)| {
                let n = std::mem::take(&mut e.pending);
                e.last = Some(Instant::now());
                (*k, n, e.detail.clone())
            })
            .collect();
        for (k, n, d) in pending {
            self.emit(k, n, &d, true);
        }
    }

    fn emit(&self, kind: Kind, n: u64, detail: &str, aggregated: bool) {
        let window = if aggregated {
            format!(" in the last {} s", self.every.as_secs().max(1))
        } else {
            String::new()
        };
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        };
        match kind {
            Kind::Failing => tracing::warn!(
                "{} output: delivery failing, retrying with backoff ({}{window}){detail}",
                self.name,
                plural(n, "failed attempt", "failed attempts"),
            ),
            Kind::Dropped(r) => tracing::error!(
                "{} output: {} dropped ({}){window}{detail}",
                self.name,
                plural(n, "alert", "alerts"),
                r.text(),
            ),
        }
    }

    pub fn totals(&self) -> BTreeMap<Reason, u64> {
        lock(&self.totals).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// How one output ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutputReport {
    pub name: &'static str,
    pub delivered: u64,
    pub dropped: BTreeMap<Reason, u64>,
    /// Left in the disk spool for the next start.
    pub spooled: u64,
}

impl OutputReport {
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

/// Returned by `Outputs::shutdown`; its `Display` is the exit summary.
#[derive(Debug, Clone, Default)]
pub struct ShutdownReport {
    pub outputs: Vec<OutputReport>,
    /// Every output finished before the deadline.
    pub in_time: bool,
}

impl ShutdownReport {
    pub fn dropped_total(&self) -> u64 {
        self.outputs.iter().map(OutputReport::dropped_total).sum()
    }

    pub fn output(&self, name: &str) -> Option<&OutputReport> {
        self.outputs.iter().find(|o| o.name == name)
    }
}

impl fmt::Display for ShutdownReport {
    /// `saker: output http: 5 delivered, 3 dropped (3 delivery failed)`, one line per output.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for o in &self.outputs {
            write!(
                f,
                "saker: output {}: {} delivered, {} dropped",
                o.name,
                o.delivered,
                o.dropped_total()
            )?;
            if o.dropped_total() > 0 {
                let why: Vec<String> = o
                    .dropped
                    .iter()
                    .filter(|(_, n)| **n > 0)
                    .map(|(r, n)| format!("{n} {}", r.text()))
                    .collect();
                write!(f, " ({})", why.join(", "))?;
            }
            if o.spooled > 0 {
                write!(f, ", {} kept in the spool for the next start", o.spooled)?;
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lines() {
        let r = ShutdownReport {
            outputs: vec![
                OutputReport {
                    name: "http",
                    delivered: 5,
                    dropped: [(Reason::GaveUp, 2), (Reason::Shutdown, 1)].into(),
                    spooled: 0,
                },
                OutputReport {
                    name: "cloudwatch",
                    delivered: 8,
                    dropped: BTreeMap::new(),
                    spooled: 4,
                },
            ],
            in_time: false,
        };
        assert_eq!(
            r.to_string(),
            "saker: output http: 5 delivered, 3 dropped (2 delivery failed, 1 not delivered by the shutdown deadline)\n\
             saker: output cloudwatch: 8 delivered, 0 dropped, 4 kept in the spool for the next start\n"
        );
        assert_eq!(r.dropped_total(), 3);
    }

    #[test]
    fn limiter_counts_between_lines() {
        let l = LogLimiter::new("http", Duration::from_secs(3600));
        l.note(Kind::Dropped(Reason::QueueFull), 1, "");
        l.note(Kind::Dropped(Reason::QueueFull), 4, "");
        assert_eq!(
            lock(&l.entries)[&Kind::Dropped(Reason::QueueFull)].pending,
            4
        );
        l.flush();
        assert_eq!(
            lock(&l.entries)[&Kind::Dropped(Reason::QueueFull)].pending,
            0
        );
        assert_eq!(l.totals()[&Reason::QueueFull], 5);
    }
}
