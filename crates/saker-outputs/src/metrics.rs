//! Prometheus metrics: Falco's names where metrics.md defines them, Saker's
//! own `saker_*` families otherwise. Families are registered once; hot paths
//! should keep the `Counter` handles they get here (an `inc` is one atomic add).

use std::collections::HashMap;
use std::sync::atomic::AtomicI64;
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use saker_rules::Alert;

/// A label set; a Vec because rule tags become a variable number of `tag_<t>` labels.
pub type Labels = Vec<(String, String)>;

type CounterFamily = Family<Labels, Counter>;
type GaugeFamily = Family<Labels, Gauge<i64, AtomicI64>>;

fn l1(k: &str, v: &str) -> Labels {
    vec![(k.to_string(), v.to_string())]
}

/// Every metric Saker exports. Shared as `Arc<Metrics>` by the engine, the
/// outputs and the web server.
pub struct Metrics {
    registry: Registry,
    pub events: CounterFamily,
    pub kernel_drops: CounterFamily,
    pub alerts: CounterFamily,
    pub alerts_suppressed: CounterFamily,
    pub output_queue_depth: GaugeFamily,
    pub output_sent: CounterFamily,
    pub output_failures: CounterFamily,
    pub output_drops: CounterFamily,
    pub output_retries: CounterFamily,
    pub output_drops_by_reason: CounterFamily,
    pub output_spool_bytes: GaugeFamily,
    pub rules_loaded: Gauge<i64, AtomicI64>,
    pub reloads: CounterFamily,
    pub falco_rules_matches: CounterFamily,
    pub falco_outputs_queue_drops: Counter,
    pub falco_reload_timestamp: Gauge<i64, AtomicI64>,
    pub falco_version_info: GaugeFamily,
    pub falco_rules_files_info: GaugeFamily,
    pub scap_n_evts: Counter,
    pub scap_n_drops: Counter,
    pub scap_n_evts_cpu: CounterFamily,
    pub scap_n_drops_cpu: CounterFamily,
    pub scap_n_drops_buffer: CounterFamily,
    /// Last absolute kernel totals seen per CPU, to turn them into counter increments.
    kernel_last: Mutex<HashMap<u32, (u64, u64)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut r = Registry::default();
        let cf = |r: &mut Registry, name: &str, help: &str| {
            let f = CounterFamily::default();
            r.register(name, help, f.clone());
            f
        };
        let gf = |r: &mut Registry, name: &str, help: &str| {
            let f = GaugeFamily::default();
            r.register(name, help, f.clone());
            f
        };
        // prometheus-client appends `_total` to counter names.
        let events = cf(&mut r, "saker_events", "Events processed, by event type");
        let kernel_drops = cf(
            &mut r,
            "saker_kernel_drops",
            "Events dropped in the kernel, by CPU and buffer",
        );
        let alerts = cf(
            &mut r,
            "saker_alerts",
            "Alerts raised, by rule and priority",
        );
        let alerts_suppressed = cf(
            &mut r,
            "saker_alerts_suppressed",
            "Alerts suppressed by the rate limits, by rule",
        );
        let output_queue_depth = gf(
            &mut r,
            "saker_output_queue_depth",
            "Alerts waiting in each output's queue",
        );
        let output_sent = cf(&mut r, "saker_output_sent", "Alerts delivered, by output");
        let output_failures = cf(
            &mut r,
            "saker_output_failures",
            "Deliveries given up (after the retries, or refused by the endpoint), by output",
        );
        let output_drops = cf(
            &mut r,
            "saker_output_drops",
            "Alerts dropped because an output's queue was full or delivery failed",
        );
        let output_retries = cf(
            &mut r,
            "saker_output_retries",
            "Delivery attempts retried, by output",
        );
        let output_drops_by_reason = cf(
            &mut r,
            "saker_output_drops_by_reason",
            "Alerts dropped, by output and reason (queue_full, spool_full, spool_error, spool_corrupt, gave_up, rejected, shutdown)",
        );
        let output_spool_bytes = gf(
            &mut r,
            "saker_output_spool_bytes",
            "Bytes in each output's disk spool (outputs_queue.spool_dir)",
        );
        let rules_loaded = Gauge::<i64, AtomicI64>::default();
        r.register(
            "saker_rules_loaded",
            "Rules currently loaded and enabled",
            rules_loaded.clone(),
        );
        let reloads = cf(
            &mut r,
            "saker_reloads",
            "Rules/config reloads, by result (ok, error)",
        );
        let falco_rules_matches = cf(
            &mut r,
            "falcosecurity_falco_rules_matches",
            "Alerts raised per rule (Falco compatible)",
        );
        let falco_outputs_queue_drops = Counter::default();
        r.register(
            "falcosecurity_falco_outputs_queue_num_drops",
            "Alerts dropped because an output's queue (in memory, or its disk spool) was full",
            falco_outputs_queue_drops.clone(),
        );
        let falco_reload_timestamp = Gauge::<i64, AtomicI64>::default();
        r.register(
            "falcosecurity_falco_reload_timestamp_nanoseconds",
            "Time of the last (re)load",
            falco_reload_timestamp.clone(),
        );
        let falco_version_info = gf(&mut r, "falcosecurity_falco_version_info", "Saker version");
        falco_version_info
            .get_or_create(&l1("version", env!("CARGO_PKG_VERSION")))
            .set(1);
        let falco_rules_files_info = gf(
            &mut r,
            "falcosecurity_falco_sha256_rules_files_info",
            "Loaded rules files",
        );
        let scap_n_evts = Counter::default();
        r.register(
            "falcosecurity_scap_n_evts",
            "Kernel events seen",
            scap_n_evts.clone(),
        );
        let scap_n_drops = Counter::default();
        r.register(
            "falcosecurity_scap_n_drops",
            "Kernel events dropped",
            scap_n_drops.clone(),
        );
        let scap_n_evts_cpu = cf(
            &mut r,
            "falcosecurity_scap_n_evts_cpu",
            "Kernel events seen per CPU",
        );
        let scap_n_drops_cpu = cf(
            &mut r,
            "falcosecurity_scap_n_drops_cpu",
            "Kernel events dropped per CPU",
        );
        let scap_n_drops_buffer = cf(
            &mut r,
            "falcosecurity_scap_n_drops_buffer",
            "Kernel events dropped because the ring buffer was full, by direction and event family",
        );
        Metrics {
            registry: r,
            events,
            kernel_drops,
            alerts,
            alerts_suppressed,
            output_queue_depth,
            output_sent,
            output_failures,
            output_drops,
            output_retries,
            output_drops_by_reason,
            output_spool_bytes,
            rules_loaded,
            reloads,
            falco_rules_matches,
            falco_outputs_queue_drops,
            falco_reload_timestamp,
            falco_version_info,
            falco_rules_files_info,
            scap_n_evts,
            scap_n_drops,
            scap_n_evts_cpu,
            scap_n_drops_cpu,
            scap_n_drops_buffer,
            kernel_last: Mutex::new(HashMap::new()),
        }
    }

    /// The counter for one event type; keep it and call `inc()` per event.
    pub fn event_counter(&self, evt_type: &str) -> Counter {
        self.events.get_or_create(&l1("type", evt_type)).clone()
    }

    /// Convenience for cold paths (hashes the label on every call).
    pub fn inc_event(&self, evt_type: &str) {
        self.events.get_or_create(&l1("type", evt_type)).inc();
    }

    /// The per-output counter of alerts dropped (queue full or delivery given up).
    pub fn output_drop_counter(&self, output: &str) -> Counter {
        self.output_drops
            .get_or_create(&l1("output", output))
            .clone()
    }

    /// Records absolute kernel totals of one CPU (as the probe reports them);
    /// the difference to the previous report is added to the counters.
    pub fn record_kernel_totals(&self, cpu: u32, n_evts: u64, n_drops: u64) {
        let mut last = self.kernel_last.lock().unwrap_or_else(|e| e.into_inner());
        let prev = last.entry(cpu).or_insert((0, 0));
        let de = n_evts.saturating_sub(prev.0);
        let dd = n_drops.saturating_sub(prev.1);
        *prev = (n_evts.max(prev.0), n_drops.max(prev.1));
        drop(last);
        let cpu_l = l1("cpu", &cpu.to_string());
        self.scap_n_evts.inc_by(de);
        self.scap_n_drops.inc_by(dd);
        self.scap_n_evts_cpu.get_or_create(&cpu_l).inc_by(de);
        self.scap_n_drops_cpu.get_or_create(&cpu_l).inc_by(dd);
    }

    /// Adds kernel drops of one CPU and buffer (e.g. `main`, `exec`).
    pub fn add_kernel_drops(&self, cpu: u32, buffer: &str, n: u64) {
        self.kernel_drops
            .get_or_create(&vec![
                ("cpu".to_string(), cpu.to_string()),
                ("buffer".to_string(), buffer.to_string()),
            ])
            .inc_by(n);
    }

    /// Adds ring-buffer drops as Falco labels them: `dir` (`enter`/`exit`) and
    /// `drop` (event family: `clone_fork`, `execve`, `open`, `connect`, `other_interest`, ...).
    pub fn add_buffer_drops(&self, dir: &str, family: &str, n: u64) {
        self.scap_n_drops_buffer
            .get_or_create(&vec![
                ("dir".to_string(), dir.to_string()),
                ("drop".to_string(), family.to_string()),
            ])
            .inc_by(n);
    }

    /// Records a (re)load: `ok` sets the rules gauge and the reload timestamp.
    pub fn record_reload(&self, ok: bool, rules_loaded: usize, now_ns: i64) {
        self.reloads
            .get_or_create(&l1("result", if ok { "ok" } else { "error" }))
            .inc();
        if ok {
            self.rules_loaded.set(rules_loaded as i64);
            self.falco_reload_timestamp.set(now_ns);
        }
    }

    /// Replaces the list of loaded rules files (`file_name`, `sha256`).
    pub fn set_rules_files(&self, files: &[(String, String)]) {
        self.falco_rules_files_info.clear();
        for (name, sha) in files {
            self.falco_rules_files_info
                .get_or_create(&vec![
                    ("file_name".to_string(), name.clone()),
                    ("sha256".to_string(), sha.clone()),
                ])
                .set(1);
        }
    }

    /// Counts one raised alert (called by `Outputs::send`).
    pub fn record_alert(&self, a: &Alert) {
        self.alerts
            .get_or_create(&vec![
                ("rule".to_string(), a.rule.clone()),
                ("priority".to_string(), a.priority.as_str().to_string()),
            ])
            .inc();
        let mut labels: Labels = Vec::with_capacity(3 + a.tags.len());
        labels.push(("rule_name".into(), a.rule.clone()));
        labels.push(("priority".into(), (a.priority as u8).to_string()));
        labels.push(("source".into(), a.source.clone()));
        let mut tags: Vec<&String> = a.tags.iter().collect();
        tags.sort();
        tags.dedup();
        for t in tags {
            labels.push((format!("tag_{}", sanitize_label(t)), "true".into()));
        }
        self.falco_rules_matches.get_or_create(&labels).inc();
    }

    /// The registry in the OpenMetrics text format (which Prometheus scrapes).
    pub fn encode(&self) -> String {
        let mut s = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut s, &self.registry);
        s
    }
}

/// Label names allow `[a-zA-Z0-9_]` only; tags such as `T1059.001` become `T1059_001`.
fn sanitize_label(t: &str) -> String {
    t.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The content type of [`Metrics::encode`].
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
