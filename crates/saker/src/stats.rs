//! The live loop's periodic work: counters into metrics once a second, Falco's syscall event
//! drop handling (`syscall_event_drops`), the timeouts notification
//! (`syscall_event_timeouts`), and the metrics snapshot (`metrics.interval`,
//! `metrics.output_rule`, `metrics.output_file`).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use saker_config::{Config, DropAction};
use saker_outputs::metrics::{ProcessSample, StateSample};
use saker_outputs::{Metrics, Outputs};
use saker_probe::{ProbeControl, ProbeStats};
use saker_rules::{Alert, OutputValue, Priority};

use crate::pipeline::Detector;

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// An internal alert in Falco's shape: source `internal`, the message as `output` (the text
/// form adds the time, priority and fields when rendered).
pub fn internal_alert(
    rule: &str,
    msg: String,
    priority: Priority,
    hostname: &str,
    fields: Vec<(String, OutputValue)>,
) -> Alert {
    Alert {
        time_ns: now_ns(),
        rule: rule.into(),
        priority,
        source: "internal".into(),
        hostname: hostname.to_string(),
        output: msg,
        output_fields: fields,
        tags: vec![],
    }
}

/// Falco's token bucket: `rate` tokens per second, at most `max_burst`, starting full.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    max: f64,
    tokens: f64,
    last: u64,
}

impl TokenBucket {
    pub fn new(rate: f64, max_burst: u64, now_ns: u64) -> TokenBucket {
        TokenBucket {
            rate,
            max: max_burst as f64,
            tokens: max_burst as f64,
            last: now_ns,
        }
    }

    pub fn claim(&mut self, now_ns: u64) -> bool {
        let dt = now_ns.saturating_sub(self.last) as f64 / 1e9;
        self.last = now_ns;
        self.tokens = (self.tokens + dt * self.rate).min(self.max);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Kernel counters over one second, under Falco's names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropDelta {
    pub n_evts: u64,
    pub n_drops: u64,
    /// `(falco field name, count)`, e.g. `("n_drops_buffer_open_exit", 3)`.
    pub categories: Vec<(&'static str, u64)>,
}

/// What the drop manager decided for one second.
#[derive(Debug, Clone, PartialEq)]
pub enum DropOutcome {
    /// No drop, ratio at or under the threshold, or (with `actions: [ignore]`) nothing to do.
    Quiet,
    /// Drops above the threshold but the token bucket was empty.
    Limited,
    /// Actions to perform.
    Act { log: bool, alert: bool, exit: bool },
}

/// `syscall_event_drops`: fires when a second's drop ratio exceeds `threshold`, at most at
/// `rate` per second with `max_burst`; `simulate_drops` adds one drop per second and forces the
/// threshold to 0.
#[derive(Debug, Clone)]
pub struct DropManager {
    threshold: f64,
    simulate: bool,
    actions: Vec<DropAction>,
    bucket: TokenBucket,
    /// Seconds with drops above the threshold, and how many of them got actions.
    pub detected: u64,
    pub acted: u64,
}

impl DropManager {
    pub fn new(cfg: &saker_config::SyscallEventDrops, now_ns: u64) -> DropManager {
        DropManager {
            threshold: if cfg.simulate_drops {
                0.0
            } else {
                cfg.threshold
            },
            simulate: cfg.simulate_drops,
            actions: cfg.actions.clone(),
            bucket: TokenBucket::new(cfg.rate, cfg.max_burst, now_ns),
            detected: 0,
            acted: 0,
        }
    }

    pub fn on_second(&mut self, delta: &mut DropDelta, now_ns: u64) -> DropOutcome {
        if self.simulate {
            delta.n_drops += 1;
        }
        if delta.n_drops == 0 {
            return DropOutcome::Quiet;
        }
        // n_evts counts dropped events too.
        let ratio = delta.n_drops as f64 / delta.n_evts.max(1) as f64;
        if ratio <= self.threshold {
            return DropOutcome::Quiet;
        }
        self.detected += 1;
        if !self.bucket.claim(now_ns) {
            return DropOutcome::Limited;
        }
        self.acted += 1;
        let has = |a: DropAction| self.actions.contains(&a);
        DropOutcome::Act {
            log: has(DropAction::Log),
            alert: has(DropAction::Alert),
            exit: has(DropAction::Exit),
        }
    }
}

/// Falco's "syscall event drop" alert: Debug, source internal, the per-second deltas as string
/// fields.
pub fn drop_alert(d: &DropDelta, hostname: &str) -> Alert {
    let rule = "Falco internal: syscall event drop";
    let msg = format!("{rule}. {} system calls dropped in last second.", d.n_drops);
    let mut fields: Vec<(String, OutputValue)> = vec![
        ("n_evts".into(), OutputValue::Str(d.n_evts.to_string())),
        ("n_drops".into(), OutputValue::Str(d.n_drops.to_string())),
        ("ebpf_enabled".into(), OutputValue::Str("1".into())),
    ];
    for (k, v) in &d.categories {
        fields.push(((*k).to_string(), OutputValue::Str(v.to_string())));
    }
    for k in ["n_drops_scratch_map", "n_drops_page_faults", "n_drops_bug"] {
        if !fields.iter().any(|(f, _)| f == k) {
            fields.push((k.into(), OutputValue::Str("0".into())));
        }
    }
    internal_alert(rule, msg, Priority::Debug, hostname, fields)
}

/// The kernel counters under Falco's names that go into the drop alert.
const DROP_FIELDS: &[&str] = &[
    "n_drops_buffer_total",
    "n_drops_buffer_clone_fork_exit",
    "n_drops_buffer_execve_exit",
    "n_drops_buffer_connect_exit",
    "n_drops_buffer_open_exit",
    "n_drops_buffer_dir_file_exit",
    "n_drops_buffer_other_interest_exit",
    "n_drops_buffer_close_exit",
    "n_drops_buffer_proc_exit",
];

fn falco_counters(ps: &ProbeStats) -> Vec<(&'static str, u64)> {
    ps.falco_counters()
}

fn delta(now: &[(&'static str, u64)], prev: &[(&'static str, u64)]) -> DropDelta {
    let get =
        |v: &[(&'static str, u64)], k: &str| v.iter().find(|(n, _)| *n == k).map_or(0, |(_, x)| *x);
    let d = |k: &str| get(now, k).saturating_sub(get(prev, k));
    DropDelta {
        n_evts: d("n_evts"),
        n_drops: d("n_drops"),
        categories: DROP_FIELDS.iter().map(|k| (*k, d(k))).collect(),
    }
}

/// Loaded rules and config files into the sha256 info metrics.
pub fn record_files(metrics: &Metrics, rules: &[PathBuf], configs: &[PathBuf]) {
    let sums = |files: &[PathBuf]| -> Vec<(String, String)> {
        files
            .iter()
            .filter_map(|p| {
                let data = std::fs::read(p).ok()?;
                let name = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| p.display().to_string());
                Some((name, crate::cmd::falco::sha256_hex(&data)))
            })
            .collect()
    };
    metrics.set_rules_files(&sums(rules));
    metrics.set_config_files(&sums(configs));
}

/// Info metrics that do not change while running.
pub fn record_static_info(metrics: &Metrics, cfg: &Config) {
    metrics.set_engine("modern_bpf", "syscall");
    metrics.set_kernel_release(&crate::cmd::falco::kernel_release());
    metrics.set_hostname(&crate::outputs_cfg::hostname(cfg));
    metrics.set_start(now_ns(), boot_ts_ns(), num_cpus());
}

fn num_cpus() -> u64 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u64)
}

fn boot_ts_ns() -> u64 {
    let up = std::fs::read_to_string(crate::setup::host_root().join("proc/uptime"))
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0);
    now_ns().saturating_sub((up * 1e9) as u64)
}

/// Once a second: counters into metrics and the drop manager; every `metrics.interval`: the
/// snapshot alert / file.
pub struct Ticker {
    last: Instant,
    flushed_types: Vec<u64>,
    prev_counters: Vec<(&'static str, u64)>,
    drops: DropManager,
    hostname: String,
    // syscall_event_timeouts
    max_timeouts: u64,
    timeouts: u64,
    last_event_ns: u64,
    // metrics snapshot
    metrics_enabled: bool,
    groups: saker_config::MetricsConfig,
    interval: Duration,
    next_snapshot: Instant,
    samples: u64,
    snapshot_file: Option<std::fs::File>,
    prev_snapshot: (u64, u64, u64),
    process: ProcessSampler,
}

impl Ticker {
    pub fn new(cfg: &Config, hostname: String) -> Ticker {
        let mut t = Ticker {
            last: Instant::now(),
            flushed_types: vec![0; 1024],
            prev_counters: Vec::new(),
            drops: DropManager::new(&cfg.syscall_event_drops, now_ns()),
            hostname,
            max_timeouts: cfg.syscall_event_timeouts.max_consecutives,
            timeouts: 0,
            last_event_ns: 0,
            metrics_enabled: false,
            groups: cfg.metrics.clone(),
            interval: Duration::from_secs(3600),
            next_snapshot: Instant::now(),
            samples: 0,
            snapshot_file: None,
            prev_snapshot: (0, 0, 0),
            process: ProcessSampler,
        };
        t.reconfigure(cfg);
        t
    }

    /// Applies a reloaded config (the drop manager keeps its token bucket level).
    pub fn reconfigure(&mut self, cfg: &Config) {
        let bucket = self.drops.bucket.clone();
        self.drops = DropManager {
            bucket,
            detected: self.drops.detected,
            acted: self.drops.acted,
            ..DropManager::new(&cfg.syscall_event_drops, now_ns())
        };
        self.max_timeouts = cfg.syscall_event_timeouts.max_consecutives;
        self.metrics_enabled = cfg.metrics.enabled;
        self.groups = cfg.metrics.clone();
        self.interval = saker_config::parse_interval(&cfg.metrics.interval)
            .unwrap_or(Duration::from_secs(3600));
        self.next_snapshot = Instant::now() + self.interval;
        self.snapshot_file = None;
        if cfg.metrics.enabled && !cfg.metrics.output_file.is_empty() {
            match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&cfg.metrics.output_file)
            {
                Ok(f) => self.snapshot_file = Some(f),
                Err(e) => tracing::error!(
                    "metrics.output_file {}: {e}; no metrics snapshots are written",
                    cfg.metrics.output_file
                ),
            }
        }
    }

    /// After each poll: `n` events were read (0 is one timeout).
    pub fn poll_done(&mut self, n: u64, outputs: &Outputs) {
        if n > 0 {
            self.timeouts = 0;
            self.last_event_ns = now_ns();
            return;
        }
        self.timeouts += 1;
        if self.timeouts > self.max_timeouts {
            self.timeouts = 0;
            let rule = "Falco internal: timeouts notification";
            let msg = format!(
                "{rule}. {} consecutive timeouts without event.",
                self.max_timeouts
            );
            let last = if self.last_event_ns == 0 {
                "none".to_string()
            } else {
                saker_rules::format::evt_time_text(self.last_event_ns)
            };
            tracing::debug!("{msg}");
            outputs.send(Arc::new(internal_alert(
                rule,
                msg,
                Priority::Debug,
                &self.hostname,
                vec![("last_event_time".into(), OutputValue::Str(last))],
            )));
        }
    }

    /// Returns true when the drop manager's `exit` action asks Saker to stop.
    pub fn tick(
        &mut self,
        probe: &ProbeControl,
        det: &Detector,
        metrics: &Metrics,
        out: &Outputs,
    ) -> bool {
        if self.last.elapsed() < Duration::from_secs(1) {
            return false;
        }
        self.flush(probe, det, metrics, out, false)
    }

    pub fn flush(
        &mut self,
        probe: &ProbeControl,
        det: &Detector,
        metrics: &Metrics,
        outputs: &Outputs,
        last: bool,
    ) -> bool {
        self.last = Instant::now();
        for (id, (&now, prev)) in det
            .stats
            .by_type
            .iter()
            .zip(self.flushed_types.iter_mut())
            .enumerate()
        {
            if now > *prev {
                let name = saker_event::table::info(id as u16)
                    .map(|i| i.name)
                    .unwrap_or("unknown");
                metrics.event_counter(name).inc_by(now - *prev);
                metrics.falco_n_evts.inc_by(now - *prev);
                *prev = now;
            }
        }
        for c in det.stats.rule_costs(det.ruleset()) {
            metrics.record_rule_cost(&c.rule, c.eval_seconds, c.events_admitted);
        }
        let state = det.state.counters();
        metrics.record_state(&StateSample {
            threads: state.threads,
            fds: state.fds,
            threads_added: state.threads_added,
            threads_removed: state.threads_removed,
            drops_full_threadtable: state.threads_dropped,
            fds_added: state.fds_added,
            fds_removed: state.fds_removed,
            failed_thread_lookups: state.failed_thread_lookups,
            failed_fd_lookups: state.failed_fd_lookups,
        });
        let proc_sample = self.process.sample();
        metrics.record_process(&proc_sample);
        let Ok(ps) = probe.stats() else {
            return false;
        };
        for (cpu, fams) in ps.per_cpu.iter().enumerate() {
            let evts: u64 = fams.iter().map(|c| c.events).sum();
            metrics.record_kernel_totals(cpu as u32, evts, ps.cpu_drops(cpu));
        }
        for fam in [saker_probe::Family::Open, saker_probe::Family::Close] {
            metrics.record_prefilter(fam.name(), ps.family(fam).filtered);
        }
        let counters = falco_counters(&ps);
        metrics.record_buffer_drop_totals(&counters);
        let mut d = delta(&counters, &self.prev_counters);
        self.prev_counters = counters;
        let mut stop = false;
        if !last {
            match self.drops.on_second(&mut d, now_ns()) {
                DropOutcome::Quiet => {}
                DropOutcome::Limited => {
                    tracing::debug!(
                        "Syscall event drop but token bucket depleted, skipping actions"
                    )
                }
                DropOutcome::Act { log, alert, exit } => {
                    let msg = format!(
                        "Falco internal: syscall event drop. {} system calls dropped in last second.",
                        d.n_drops
                    );
                    if log {
                        tracing::warn!("{msg}");
                    }
                    if alert {
                        outputs.send(Arc::new(drop_alert(&d, &self.hostname)));
                    }
                    if exit {
                        tracing::error!("{msg}");
                        stop = true;
                    }
                }
            }
        }
        if self.metrics_enabled && (Instant::now() >= self.next_snapshot || last) {
            self.next_snapshot = Instant::now() + self.interval;
            self.snapshot(&ps, det, metrics, outputs, &proc_sample);
        }
        stop
    }

    /// The end-of-run lines Falco prints about drop handling.
    pub fn drop_summary(&self) -> String {
        format!(
            "Syscall event drop monitoring:\n   - event drop detected: {} occurrences\n   - num times actions taken: {}\n",
            self.drops.detected, self.drops.acted
        )
    }

    fn snapshot(
        &mut self,
        ps: &ProbeStats,
        det: &Detector,
        metrics: &Metrics,
        outputs: &Outputs,
        p: &ProcessSample,
    ) {
        self.samples += 1;
        let g = &self.groups;
        let mb = g.convert_memory_to_mb;
        let mut f: Vec<(String, OutputValue)> = Vec::new();
        let mut put = |k: &str, v: OutputValue| {
            let empty = matches!(v, OutputValue::U64(0) | OutputValue::I64(0))
                || matches!(&v, OutputValue::Str(s) if s.is_empty());
            if !empty || g.include_empty_values {
                f.push((k.to_string(), v));
            }
        };
        let now = now_ns();
        put("evt.time", OutputValue::U64(now));
        put("evt.source", OutputValue::Str("syscall".into()));
        put("evt.hostname", OutputValue::Str(self.hostname.clone()));
        put(
            "falco.version",
            OutputValue::Str(env!("CARGO_PKG_VERSION").into()),
        );
        put(
            "falco.kernel_release",
            OutputValue::Str(crate::cmd::falco::kernel_release()),
        );
        put("scap.engine_name", OutputValue::Str("modern_bpf".into()));
        put(
            "falco.outputs_queue_num_drops",
            OutputValue::U64(metrics.falco_outputs_queue_drops.get()),
        );
        put(
            "falco.reload_ts",
            OutputValue::I64(metrics.falco_reload_timestamp.get()),
        );
        put("falco.host_num_cpus", OutputValue::U64(num_cpus()));
        let num_evts = det.stats.events;
        let secs = self.interval.as_secs_f64().max(1e-3);
        put("falco.num_evts", OutputValue::U64(num_evts));
        put(
            "falco.num_evts_prev",
            OutputValue::U64(self.prev_snapshot.0),
        );
        put(
            "falco.evts_rate_sec",
            OutputValue::Str(format!(
                "{:.2}",
                num_evts.saturating_sub(self.prev_snapshot.0) as f64 / secs
            )),
        );
        if g.rules_counters_enabled {
            put(
                "falco.rules.matches_total",
                OutputValue::U64(det.stats.alerts),
            );
            for (rule, n) in &det.stats.alerts_by_rule {
                put(
                    &format!("falco.rules.{}", sanitize(rule)),
                    OutputValue::U64(*n),
                );
            }
        }
        if g.resource_utilization_enabled {
            put(
                "falco.cpu_usage_perc",
                OutputValue::Str(format!("{:.1}", p.cpu_ratio * 100.0)),
            );
            let mem = |k: &str, bytes: u64| {
                if mb {
                    (
                        format!("{k}_mb"),
                        OutputValue::Str(format!("{:.1}", bytes as f64 / 1048576.0)),
                    )
                } else {
                    (format!("{k}_kb"), OutputValue::U64(bytes / 1024))
                }
            };
            for (k, v) in [
                mem("falco.memory_rss", p.rss_bytes),
                mem("falco.memory_vsz", p.vsz_bytes),
                mem("falco.memory_pss", p.pss_bytes),
                mem("falco.host_memory_used", p.host_memory_used_bytes),
            ] {
                put(&k, v);
            }
            put("falco.host_open_fds", OutputValue::U64(p.host_open_fds));
            put(
                "falco.host_procs_running",
                OutputValue::U64(p.host_procs_running),
            );
        }
        if g.state_counters_enabled {
            let c = det.state.counters();
            for (k, v) in [
                ("scap.n_threads", c.threads),
                ("scap.n_fds", c.fds),
                ("scap.n_added_threads", c.threads_added),
                ("scap.n_removed_threads", c.threads_removed),
                ("scap.n_drops_full_threadtable", c.threads_dropped),
                ("scap.n_added_fds", c.fds_added),
                ("scap.n_removed_fds", c.fds_removed),
                ("scap.n_failed_thread_lookups", c.failed_thread_lookups),
                ("scap.n_failed_fd_lookups", c.failed_fd_lookups),
            ] {
                put(k, OutputValue::U64(v));
            }
        }
        if g.kernel_event_counters_enabled {
            let counters = falco_counters(ps);
            for (k, v) in &counters {
                put(&format!("scap.{k}"), OutputValue::U64(*v));
            }
            let (n_evts, n_drops) = (ps.events(), ps.drops());
            put("scap.n_evts_prev", OutputValue::U64(self.prev_snapshot.1));
            put("scap.n_drops_prev", OutputValue::U64(self.prev_snapshot.2));
            let de = n_evts.saturating_sub(self.prev_snapshot.1);
            let dd = n_drops.saturating_sub(self.prev_snapshot.2);
            put(
                "scap.n_drops_perc",
                OutputValue::Str(format!(
                    "{:.2}",
                    if de == 0 {
                        0.0
                    } else {
                        100.0 * dd as f64 / de as f64
                    }
                )),
            );
            if g.kernel_event_counters_per_cpu_enabled {
                for (cpu, fams) in ps.per_cpu.iter().enumerate() {
                    let evts: u64 = fams.iter().map(|c| c.events).sum();
                    put(&format!("scap.n_evts_cpu_{cpu}"), OutputValue::U64(evts));
                    put(
                        &format!("scap.n_drops_cpu_{cpu}"),
                        OutputValue::U64(ps.cpu_drops(cpu)),
                    );
                }
            }
            self.prev_snapshot.1 = n_evts;
            self.prev_snapshot.2 = n_drops;
        }
        self.prev_snapshot.0 = num_evts;
        if g.output_rule {
            outputs.send(Arc::new(internal_alert(
                "Falco internal: metrics snapshot",
                "Falco metrics snapshot".into(),
                Priority::Informational,
                &self.hostname,
                f.clone(),
            )));
        }
        if let Some(file) = self.snapshot_file.as_mut() {
            let fields: serde_json::Map<String, serde_json::Value> =
                f.iter().map(|(k, v)| (k.clone(), to_json(v))).collect();
            let line = serde_json::json!({"sample": self.samples, "output_fields": fields});
            if let Err(e) = writeln!(file, "{line}") {
                tracing::error!("metrics.output_file: {e}");
            }
        }
    }
}

fn to_json(v: &OutputValue) -> serde_json::Value {
    match v {
        OutputValue::Null => serde_json::Value::Null,
        OutputValue::Str(s) => s.parse::<f64>().map_or_else(
            |_| serde_json::Value::String(s.clone()),
            |x| serde_json::json!(x),
        ),
        OutputValue::U64(n) => serde_json::json!(n),
        OutputValue::I64(n) => serde_json::json!(n),
        OutputValue::Bool(b) => serde_json::json!(b),
        OutputValue::List(l) => serde_json::json!(l),
    }
}

/// Falco's rule-name sanitising for snapshot keys: non-alphanumerics become `_`, runs collapse,
/// no trailing `_`.
fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        let c = if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        };
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.push(c);
    }
    while out.ends_with('_') {
        out.pop();
    }
    out
}

/// The process's own CPU and memory, and the host's, as libsinsp reports them.
#[derive(Default)]
pub struct ProcessSampler;

impl ProcessSampler {
    pub fn sample(&mut self) -> ProcessSample {
        ProcessSample::read(&crate::setup::host_root())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> saker_config::SyscallEventDrops {
        saker_config::from_yaml_str(yaml, "t", &[])
            .unwrap()
            .config
            .syscall_event_drops
    }

    fn d(evts: u64, drops: u64) -> DropDelta {
        DropDelta {
            n_evts: evts,
            n_drops: drops,
            categories: vec![],
        }
    }

    const S: u64 = 1_000_000_000;

    #[test]
    fn threshold_is_a_ratio_of_the_second() {
        let mut m = DropManager::new(
            &cfg("syscall_event_drops: {threshold: 0.1, rate: 1, max_burst: 10}"),
            0,
        );
        assert_eq!(
            m.on_second(&mut d(1000, 100), S),
            DropOutcome::Quiet,
            "10% is not above 0.1"
        );
        assert!(matches!(
            m.on_second(&mut d(1000, 101), 2 * S),
            DropOutcome::Act {
                log: true,
                alert: true,
                exit: false
            }
        ));
        assert_eq!(m.on_second(&mut d(1000, 0), 3 * S), DropOutcome::Quiet);
        assert_eq!((m.detected, m.acted), (1, 1));
    }

    #[test]
    fn rate_and_max_burst_limit_actions() {
        // Falco's defaults: one action per 30 s, burst 1.
        let mut m = DropManager::new(
            &cfg("syscall_event_drops: {threshold: 0, rate: 0.03333, max_burst: 1}"),
            0,
        );
        let mut acted = 0;
        for s in 1..=60 {
            if matches!(m.on_second(&mut d(100, 50), s * S), DropOutcome::Act { .. }) {
                acted += 1;
            }
        }
        assert_eq!(acted, 2, "t=1 s (burst) and once 30 s later");
        assert_eq!(m.detected, 60);
        let mut burst = DropManager::new(
            &cfg("syscall_event_drops: {threshold: 0, rate: 0.0001, max_burst: 3}"),
            0,
        );
        let n = (1..=10)
            .filter(|s| {
                matches!(
                    burst.on_second(&mut d(10, 5), s * S),
                    DropOutcome::Act { .. }
                )
            })
            .count();
        assert_eq!(n, 3);
    }

    #[test]
    fn actions_and_simulation() {
        let mut m = DropManager::new(
            &cfg("syscall_event_drops: {actions: [exit], simulate_drops: true, threshold: 0.9}"),
            0,
        );
        assert_eq!(
            m.on_second(&mut d(0, 0), S),
            DropOutcome::Act {
                log: false,
                alert: false,
                exit: true
            },
            "simulate_drops adds a drop and forces threshold 0"
        );
        let mut ig = DropManager::new(
            &cfg("syscall_event_drops: {actions: [ignore], threshold: 0}"),
            0,
        );
        assert_eq!(
            ig.on_second(&mut d(10, 5), S),
            DropOutcome::Act {
                log: false,
                alert: false,
                exit: false
            }
        );
    }

    #[test]
    fn drop_alert_has_falcos_shape() {
        let mut delta = d(500, 7);
        delta.categories = vec![("n_drops_buffer_total", 7), ("n_drops_buffer_open_exit", 4)];
        let a = drop_alert(&delta, "h");
        assert_eq!(a.source, "internal");
        assert_eq!(a.priority, Priority::Debug);
        assert_eq!(a.rule, "Falco internal: syscall event drop");
        assert_eq!(
            a.output,
            "Falco internal: syscall event drop. 7 system calls dropped in last second."
        );
        let get = |k: &str| {
            a.output_fields
                .iter()
                .find(|(f, _)| f == k)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("n_drops"), Some(OutputValue::Str("7".into())));
        assert_eq!(get("n_evts"), Some(OutputValue::Str("500".into())));
        assert_eq!(
            get("n_drops_buffer_open_exit"),
            Some(OutputValue::Str("4".into()))
        );
        assert_eq!(get("n_drops_bug"), Some(OutputValue::Str("0".into())));
        assert_eq!(get("ebpf_enabled"), Some(OutputValue::Str("1".into())));
    }

    #[test]
    fn deltas_per_second() {
        let prev = vec![
            ("n_evts", 100),
            ("n_drops", 5),
            ("n_drops_buffer_open_exit", 2),
        ];
        let now = vec![
            ("n_evts", 250),
            ("n_drops", 9),
            ("n_drops_buffer_open_exit", 5),
        ];
        let x = delta(&now, &prev);
        assert_eq!((x.n_evts, x.n_drops), (150, 4));
        assert!(x.categories.contains(&("n_drops_buffer_open_exit", 3)));
    }

    #[test]
    fn rule_names_in_snapshot_keys() {
        assert_eq!(sanitize("Write below etc (x)"), "Write_below_etc_x");
    }
}
