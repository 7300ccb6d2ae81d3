//! Output channels. Each runs as one task that owns its queue's receiver, so a
//! slow channel only ever fills its own queue.

pub mod cloudwatch;
pub mod file;
pub mod http;
pub mod program;
pub mod stdout;
pub mod syslog;

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use saker_rules::Alert;
use tokio::sync::mpsc;

use crate::format::Formatter;
use crate::metrics::Metrics;

/// What a sink task receives and shares.
pub struct SinkCtx {
    pub name: &'static str,
    pub rx: mpsc::Receiver<Arc<Alert>>,
    pub fmt: Formatter,
    pub depth: Gauge<i64, std::sync::atomic::AtomicI64>,
    pub sent: Counter,
    pub failures: Counter,
    pub drops: Counter,
    pub retries: Counter,
    pub metrics: Arc<Metrics>,
    /// Writes slower than this are logged as blocked (falco.yaml `output_timeout`).
    pub output_timeout: Duration,
}

impl SinkCtx {
    /// Next alert, keeping the queue-depth gauge in step.
    pub async fn recv(&mut self) -> Option<Arc<Alert>> {
        let a = self.rx.recv().await;
        if a.is_some() {
            self.depth.dec();
        }
        a
    }

    /// Logs a write that took longer than `output_timeout` (Falco logs, it does not drop).
    pub fn check_slow(&self, started: std::time::Instant) {
        let took = started.elapsed();
        if took > self.output_timeout {
            tracing::warn!(
                output = self.name,
                "output timeout: a write took {} ms (output_timeout {} ms); alerts queue up behind it",
                took.as_millis(),
                self.output_timeout.as_millis()
            );
        }
    }

    /// A delivery given up: a failure and a dropped alert.
    pub fn give_up(&self, n: u64) {
        self.failures.inc();
        self.drops.inc_by(n);
    }
}

/// Exponential backoff with a cap, for attempt 0, 1, 2, ...
pub fn backoff(base_ms: u64, attempt: u32) -> Duration {
    let ms = base_ms.saturating_mul(1u64 << attempt.min(16));
    Duration::from_millis(ms.min(30_000))
}

#[cfg(test)]
pub(crate) fn test_ctx(json: bool) -> (SinkCtx, mpsc::Sender<Arc<Alert>>, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new());
    let (tx, rx) = mpsc::channel(16);
    let l = vec![("output".to_string(), "test".to_string())];
    let ctx = SinkCtx {
        name: "test",
        rx,
        fmt: Formatter {
            json,
            opts: Default::default(),
        },
        depth: metrics.output_queue_depth.get_or_create(&l).clone(),
        sent: metrics.output_sent.get_or_create(&l).clone(),
        failures: metrics.output_failures.get_or_create(&l).clone(),
        drops: metrics.output_drops.get_or_create(&l).clone(),
        retries: metrics.output_retries.get_or_create(&l).clone(),
        metrics: metrics.clone(),
        output_timeout: Duration::from_secs(2),
    };
    (ctx, tx, metrics)
}
