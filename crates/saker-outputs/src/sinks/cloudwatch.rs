//! CloudWatch Logs: alerts batched into PutLogEvents calls within the API
//! limits, retried with backoff (throttling included), and per-rule alert
//! counts as Embedded Metric Format records in their own stream.
//!
//! EMF rather than PutMetricData: the metrics travel through the same
//! batched, retried PutLogEvents path and IAM permission (logs:PutLogEvents),
//! without a second SDK client, and CloudWatch extracts them as metrics with
//! the Rule and Priority dimensions (the request carries `x-amzn-logs-format: json/emf`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_cloudwatchlogs::error::ProvideErrorMetadata;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_cloudwatchlogs::Client;

use saker_rules::Priority;

use super::SinkCtx;
use crate::report::Reason;

/// `cloudwatch_output` (Saker): alerts to a CloudWatch Logs stream.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudwatchOptions {
    pub enabled: bool,
    pub log_group: String,
    /// Empty: the hostname.
    pub log_stream: String,
    /// Empty: the AWS chain (AWS_REGION, profile, IMDS).
    pub region: String,
    /// Endpoint override (moto, VPC endpoints).
    pub endpoint: String,
    /// Create the log group if it does not exist (needs logs:CreateLogGroup).
    pub create_log_group: bool,
    pub min_priority: Option<Priority>,
    /// Per PutLogEvents call (AWS maximum 10000).
    pub batch_max_events: usize,
    /// Per call including 26 bytes per event (AWS maximum 1048576).
    pub batch_max_bytes: usize,
    /// Longest an alert waits before its batch is sent.
    pub flush_interval_ms: u64,
    pub retries: u32,
    pub backoff_ms: u64,
    pub metrics: CloudwatchMetricsOptions,
}

impl Default for CloudwatchOptions {
    fn default() -> Self {
        CloudwatchOptions {
            enabled: false,
            log_group: "/aws/saker/alerts".into(),
            log_stream: String::new(),
            region: String::new(),
            endpoint: String::new(),
            create_log_group: true,
            min_priority: None,
            batch_max_events: 10_000,
            batch_max_bytes: 1_048_576,
            flush_interval_ms: 1000,
            retries: 8,
            backoff_ms: 200,
            metrics: CloudwatchMetricsOptions::default(),
        }
    }
}

/// `cloudwatch_output.metrics`: per-rule alert counts as EMF records in their own stream.
#[derive(Debug, Clone, PartialEq)]
pub struct CloudwatchMetricsOptions {
    pub enabled: bool,
    pub namespace: String,
    /// Empty: `<log_stream>-metrics`.
    pub log_stream: String,
    /// Seconds between EMF records.
    pub interval_s: u64,
}

impl Default for CloudwatchMetricsOptions {
    fn default() -> Self {
        CloudwatchMetricsOptions {
            enabled: false,
            namespace: "Saker".into(),
            log_stream: String::new(),
            interval_s: 60,
        }
    }
}

/// Bytes PutLogEvents counts per event on top of its message.
pub const EVENT_OVERHEAD: usize = 26;
/// Largest single event (message + overhead) the service accepts.
pub const MAX_EVENT_BYTES: usize = 262_144;
/// All events of one call must fall within 24 hours.
const MAX_SPAN_MS: i64 = 24 * 3600 * 1000 - 1;

/// Builds the SDK client from the standard AWS chain plus config overrides.
pub async fn make_client(cfg: &CloudwatchOptions) -> Client {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        // Retries are ours (counted, with backoff, also for throttling).
        .retry_config(aws_config::retry::RetryConfig::disabled());
    if !cfg.region.is_empty() {
        loader = loader.region(aws_sdk_cloudwatchlogs::config::Region::new(
            cfg.region.clone(),
        ));
    }
    if !cfg.endpoint.is_empty() {
        loader = loader.endpoint_url(cfg.endpoint.clone());
    }
    let sdk = loader.load().await;
    if sdk.region().is_none() {
        tracing::warn!(
            "cloudwatch_output: no AWS region configured (cloudwatch_output.region or AWS_REGION)"
        );
    }
    Client::new(&sdk)
}

/// One log stream being written to.
pub struct Writer {
    pub client: Client,
    pub group: String,
    pub stream: String,
    pub create_group: bool,
    /// Mark requests as EMF so CloudWatch extracts metrics from them.
    pub emf: bool,
    ready: bool,
}

impl Writer {
    pub fn new(client: Client, cfg: &CloudwatchOptions, stream: String, emf: bool) -> Writer {
        Writer {
            client,
            group: cfg.log_group.clone(),
            stream,
            create_group: cfg.create_log_group,
            emf,
            ready: false,
        }
    }

    /// Creates the group (if allowed) and the stream; "already exists" is fine.
    async fn ensure_stream(&mut self) -> Result<(), String> {
        if self.create_group {
            if let Err(e) = self
                .client
                .create_log_group()
                .log_group_name(&self.group)
                .send()
                .await
            {
                if e.code() != Some("ResourceAlreadyExistsException") {
                    return Err(format!("CreateLogGroup {}: {}", self.group, describe(&e)));
                }
            }
        }
        if let Err(e) = self
            .client
            .create_log_stream()
            .log_group_name(&self.group)
            .log_stream_name(&self.stream)
            .send()
            .await
        {
            if e.code() != Some("ResourceAlreadyExistsException") {
                return Err(format!(
                    "CreateLogStream {}/{}: {}",
                    self.group,
                    self.stream,
                    describe(&e)
                ));
            }
        }
        self.ready = true;
        Ok(())
    }

    /// Sends one batch (already within the limits), retrying with backoff;
    /// the batch is the `events.len()` oldest alerts the sink has taken. With
    /// `track` off (the EMF stream) the counts are of records, not alerts.
    pub async fn put(&mut self, mut events: Vec<(i64, String)>, ctx: &mut SinkCtx, track: bool) {
        if events.is_empty() {
            return;
        }
        let n = events.len() as u64;
        let finish = |ctx: &mut SinkCtx, sent: u64, lost: u64, reason: Reason, why: &str| {
            if track {
                ctx.delivered(sent);
                if lost > 0 {
                    ctx.give_up(lost, reason, why);
                }
            } else {
                ctx.out.sent.inc_by(sent);
                if lost > 0 {
                    ctx.out.failures.inc();
                    ctx.out.dropped(lost, reason, why);
                }
            }
        };
        events.sort_by_key(|e| e.0);
        let mut input = Vec::with_capacity(events.len());
        for (ts, msg) in events {
            match InputLogEvent::builder().timestamp(ts).message(msg).build() {
                Ok(e) => input.push(e),
                Err(e) => tracing::warn!("{} output: bad log event: {e}", ctx.name),
            }
        }
        let mut attempt = 0u32;
        loop {
            let err = if !self.ready {
                self.ensure_stream().await.err()
            } else {
                None
            };
            let err = match err {
                Some(e) => e,
                None => {
                    let mut req = self
                        .client
                        .put_log_events()
                        .log_group_name(&self.group)
                        .log_stream_name(&self.stream)
                        .set_log_events(Some(input.clone()))
                        .customize();
                    if self.emf {
                        req = req.mutate_request(|r| {
                            r.headers_mut().insert("x-amzn-logs-format", "json/emf");
                        });
                    }
                    match req.send().await {
                        Ok(out) => {
                            let rejected = out
                                .rejected_log_events_info()
                                .map_or(0, |r| rejected_count(r, n));
                            let why = format!("{:?}", out.rejected_log_events_info());
                            finish(ctx, n - rejected, rejected, Reason::Rejected, &why);
                            return;
                        }
                        Err(e) => {
                            let code = e.code().unwrap_or("");
                            if code == "DataAlreadyAcceptedException" {
                                finish(ctx, n, 0, Reason::Rejected, "");
                                return;
                            }
                            if code == "ResourceNotFoundException" {
                                self.ready = false;
                            }
                            if code == "InvalidParameterException" {
                                let why = format!("PutLogEvents: {}", describe(&e));
                                finish(ctx, 0, n, Reason::Rejected, &why);
                                return;
                            }
                            format!("PutLogEvents: {}", describe(&e))
                        }
                    }
                }
            };
            if !ctx.retry_wait(&mut attempt, &err).await {
                let why = format!("{} attempts, last: {err}", attempt + 1);
                finish(ctx, 0, n, Reason::GaveUp, &why);
                return;
            }
        }
    }
}

/// Events of a sorted batch that the service refused (too old, expired, too new).
fn rejected_count(r: &aws_sdk_cloudwatchlogs::types::RejectedLogEventsInfo, n: u64) -> u64 {
    let old = [
        r.too_old_log_event_end_index(),
        r.expired_log_event_end_index(),
    ]
    .into_iter()
    .flatten()
    .map(|i| i as u64 + 1)
    .max()
    .unwrap_or(0);
    let new = r
        .too_new_log_event_start_index()
        .map_or(0, |i| n.saturating_sub(i as u64));
    (old + new).min(n)
}

/// CloudWatch accepts events from the last 14 days up to 2 hours ahead; an
/// alert outside that window (a replayed capture, a skewed clock) is sent with
/// the current time instead of being refused. Its own time stays in the message.
pub fn accepted_timestamp(ts_ms: i64, now_ms: i64) -> (i64, bool) {
    const MARGIN: i64 = 10 * 60 * 1000;
    let oldest = now_ms - 14 * 24 * 3600 * 1000 + MARGIN;
    let newest = now_ms + 2 * 3600 * 1000 - MARGIN;
    if ts_ms < oldest || ts_ms > newest {
        (now_ms, true)
    } else {
        (ts_ms, false)
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn describe<E: ProvideErrorMetadata + std::error::Error>(e: &E) -> String {
    match (e.code(), e.message()) {
        (Some(c), Some(m)) => format!("{c}: {m}"),
        (Some(c), None) => c.to_string(),
        // No service error (connection refused, timeout): the cause chain says what happened.
        _ => super::error_chain(e),
    }
}

/// Events collected for the next call.
#[derive(Default)]
pub struct Batch {
    pub events: Vec<(i64, String)>,
    bytes: usize,
    min_ts: i64,
    max_ts: i64,
    pub started: Option<Instant>,
}

impl Batch {
    /// Would `msg` at `ts` still fit into this batch?
    pub fn fits(&self, ts: i64, msg_len: usize, max_events: usize, max_bytes: usize) -> bool {
        if self.events.is_empty() {
            return true;
        }
        self.events.len() < max_events
            && self.bytes + msg_len + EVENT_OVERHEAD <= max_bytes
            && ts.max(self.max_ts) - ts.min(self.min_ts) <= MAX_SPAN_MS
    }

    pub fn push(&mut self, ts: i64, msg: String) {
        if self.events.is_empty() {
            self.min_ts = ts;
            self.max_ts = ts;
            self.started = Some(Instant::now());
        }
        self.min_ts = self.min_ts.min(ts);
        self.max_ts = self.max_ts.max(ts);
        self.bytes += msg.len() + EVENT_OVERHEAD;
        self.events.push((ts, msg));
    }

    pub fn take(&mut self) -> Vec<(i64, String)> {
        self.bytes = 0;
        self.started = None;
        std::mem::take(&mut self.events)
    }
}

/// Cuts a message to the largest event the service accepts, on a char boundary.
pub fn clamp_message(mut msg: String) -> String {
    let max = MAX_EVENT_BYTES - EVENT_OVERHEAD;
    if msg.len() > max {
        let mut cut = max;
        while !msg.is_char_boundary(cut) {
            cut -= 1;
        }
        msg.truncate(cut);
    }
    msg
}

pub async fn run(mut ctx: SinkCtx, cfg: CloudwatchOptions, mut w: Writer) {
    let flush_every = Duration::from_millis(cfg.flush_interval_ms.max(1));
    let max_bytes = cfg.batch_max_bytes.min(1_048_576);
    let max_events = cfg.batch_max_events.clamp(1, 10_000);
    let mut batch = Batch::default();
    let mut restamped = 0u64;
    loop {
        let deadline = batch
            .started
            .map(|s| tokio::time::Instant::from_std(s + flush_every));
        let next = tokio::select! {
            a = ctx.recv() => a,
            _ = sleep_until_opt(deadline) => {
                let ev = batch.take();
                w.put(ev, &mut ctx, true).await;
                continue;
            }
        };
        let Some(a) = next else { break };
        let msg = clamp_message(ctx.fmt.line(&a));
        let (ts, moved) = accepted_timestamp((a.time_ns / 1_000_000) as i64, now_ms());
        if moved {
            if restamped == 0 {
                tracing::info!(
                    "{} output: alerts older than 14 days (or over 2 hours ahead) are sent with the current time as their CloudWatch timestamp; their own time is in the message",
                    ctx.name
                );
            }
            restamped += 1;
        }
        if !batch.fits(ts, msg.len(), max_events, max_bytes) {
            // The new alert is taken but not in this batch: it is acknowledged with the next one.
            let ev = batch.take();
            w.put(ev, &mut ctx, true).await;
        }
        batch.push(ts, msg);
        if batch.events.len() >= max_events {
            let ev = batch.take();
            w.put(ev, &mut ctx, true).await;
        }
    }
    let ev = batch.take();
    w.put(ev, &mut ctx, true).await;
}

async fn sleep_until_opt(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// One EMF record: metric `Alerts` (Count) with dimensions Rule and Priority.
pub fn emf_record(namespace: &str, ts_ms: i64, rule: &str, priority: &str, count: u64) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": ts_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["Rule", "Priority"]],
                "Metrics": [{"Name": "Alerts", "Unit": "Count"}]
            }]
        },
        "Rule": rule,
        "Priority": priority,
        "Alerts": count
    })
    .to_string()
}

/// Counts alerts per (rule, priority) and writes one EMF record per pair
/// every `interval_s` and at shutdown.
pub async fn run_metrics(mut ctx: SinkCtx, cfg: CloudwatchOptions, mut w: Writer) {
    let every = Duration::from_secs(cfg.metrics.interval_s.max(1));
    let mut counts: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    loop {
        tokio::select! {
            a = ctx.recv() => match a {
                Some(a) => {
                    *counts.entry((a.rule.clone(), a.priority.as_str())).or_default() += 1;
                    ctx.absorbed(1);
                }
                None => break,
            },
            _ = tick.tick() => flush_counts(&mut counts, &cfg, &mut w, &mut ctx).await,
        }
    }
    flush_counts(&mut counts, &cfg, &mut w, &mut ctx).await;
}

async fn flush_counts(
    counts: &mut BTreeMap<(String, &'static str), u64>,
    cfg: &CloudwatchOptions,
    w: &mut Writer,
    ctx: &mut SinkCtx,
) {
    if counts.is_empty() {
        return;
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0);
    let events: Vec<(i64, String)> = std::mem::take(counts)
        .into_iter()
        .map(|((rule, prio), n)| {
            (
                now_ms,
                emf_record(&cfg.metrics.namespace, now_ms, &rule, prio, n),
            )
        })
        .collect();
    // Thousands of distinct rules still fit in a few calls.
    for chunk in events.chunks(5000) {
        w.put(chunk.to_vec(), ctx, false).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_limits() {
        let mut b = Batch::default();
        b.push(1000, "x".repeat(100));
        assert!(b.fits(1000, 100, 2, 1_048_576));
        assert!(!b.fits(1000, 100, 1, 1_048_576));
        // 126 bytes used; another 100-byte message needs 126 more.
        assert!(b.fits(1000, 100, 10, 252));
        assert!(!b.fits(1000, 100, 10, 251));
        assert!(b.fits(1000 + MAX_SPAN_MS, 1, 10, 1_048_576));
        assert!(!b.fits(1001 + MAX_SPAN_MS, 1, 10, 1_048_576));
        assert_eq!(b.take().len(), 1);
        assert!(b.events.is_empty());
    }

    #[test]
    fn clamp() {
        let m = clamp_message("é".repeat(200_000));
        assert!(m.len() <= MAX_EVENT_BYTES - EVENT_OVERHEAD);
        assert!(m.len() > MAX_EVENT_BYTES - EVENT_OVERHEAD - 2);
    }

    #[test]
    fn emf_shape() {
        let v: serde_json::Value =
            serde_json::from_str(&emf_record("Saker", 5, "R", "Warning", 3)).unwrap();
        assert_eq!(
            v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0][1],
            "Priority"
        );
        assert_eq!(v["Alerts"], 3);
        assert_eq!(v["Rule"], "R");
    }
}
