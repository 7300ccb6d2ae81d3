//! Prometheus metrics: Falco's names where metrics.md defines them, Saker's
//! own `saker_*` families otherwise. Families are registered once; hot paths
//! should keep the `Counter` handles they get here (an `inc` is one atomic add).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64};
use std::sync::Mutex;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use saker_rules::{Alert, OutputValue};

/// A label set; a Vec because rule tags become a variable number of `tag_<t>` labels.
pub type Labels = Vec<(String, String)>;

type CounterFamily = Family<Labels, Counter>;
type GaugeFamily = Family<Labels, Gauge<i64, AtomicI64>>;
type IGauge = Gauge<i64, AtomicI64>;
type FGauge = Gauge<f64, AtomicU64>;

/// Sets a counter to an absolute total (totals only grow; a smaller one is ignored).
fn set_total(c: &Counter, total: u64) {
    let now = c.get();
    if total > now {
        c.inc_by(total - now);
    }
}

/// Which groups `/metrics` shows (falco.yaml `metrics.*_enabled`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetricGroups {
    pub rules_counters: bool,
    pub resource_utilization: bool,
    pub state_counters: bool,
    pub kernel_event_counters: bool,
    pub kernel_event_counters_per_cpu: bool,
}

impl Default for MetricGroups {
    fn default() -> Self {
        MetricGroups {
            rules_counters: true,
            resource_utilization: true,
            state_counters: true,
            kernel_event_counters: true,
            kernel_event_counters_per_cpu: true,
        }
    }
}

impl MetricGroups {
    /// Whether the family (name as registered, without `_total`) is shown.
    fn shows(&self, family: &str) -> bool {
        let f = family;
        if f == "falcosecurity_falco_rules_matches" {
            return self.rules_counters;
        }
        if RESOURCE.contains(&f) {
            return self.resource_utilization;
        }
        if f.starts_with("falcosecurity_scap_n_evts_cpu")
            || f.starts_with("falcosecurity_scap_n_drops_cpu")
        {
            return self.kernel_event_counters_per_cpu;
        }
        if STATE.contains(&f) {
            return self.state_counters;
        }
        if KERNEL.contains(&f) {
            return self.kernel_event_counters;
        }
        true
    }
}

const RESOURCE: &[&str] = &[
    "falcosecurity_falco_cpu_usage_ratio",
    "falcosecurity_falco_memory_rss_bytes",
    "falcosecurity_falco_memory_vsz_bytes",
    "falcosecurity_falco_memory_pss_bytes",
    "falcosecurity_falco_container_memory_used_bytes",
    "falcosecurity_falco_host_cpu_usage_ratio",
    "falcosecurity_falco_host_memory_used_bytes",
    "falcosecurity_falco_host_procs_running_total",
    "falcosecurity_falco_host_open_fds_total",
];
const STATE: &[&str] = &[
    "falcosecurity_scap_n_threads_total",
    "falcosecurity_scap_n_fds_total",
    "falcosecurity_scap_n_added_threads",
    "falcosecurity_scap_n_removed_threads",
    "falcosecurity_scap_n_added_fds",
    "falcosecurity_scap_n_removed_fds",
    "falcosecurity_scap_n_drops_full_threadtable",
    "falcosecurity_scap_n_failed_thread_lookups",
    "falcosecurity_scap_n_failed_fd_lookups",
];
const KERNEL: &[&str] = &[
    "falcosecurity_scap_n_evts",
    "falcosecurity_scap_n_drops",
    "falcosecurity_scap_n_drops_buffer",
    "falcosecurity_scap_n_drops_scratch_map",
];

/// The state engine's table counters, as absolute values.
#[derive(Debug, Clone, Copy, Default)]
pub struct StateSample {
    pub threads: u64,
    pub fds: u64,
    pub threads_added: u64,
    pub threads_removed: u64,
    pub drops_full_threadtable: u64,
    pub fds_added: u64,
    pub fds_removed: u64,
    pub failed_thread_lookups: u64,
    pub failed_fd_lookups: u64,
}

/// The agent's own footprint and the host's, as libsinsp's resource utilisation reports them.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessSample {
    /// CPU time over wall time since the process started (like `ps`), 1.0 = one CPU.
    pub cpu_ratio: f64,
    pub rss_bytes: u64,
    pub vsz_bytes: u64,
    pub pss_bytes: u64,
    pub container_memory_used_bytes: u64,
    pub host_cpu_ratio: f64,
    pub host_memory_used_bytes: u64,
    pub host_procs_running: u64,
    pub host_open_fds: u64,
}

fn kv_kb(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|r| r.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

impl ProcessSample {
    /// Reads `/proc/self` for the process and `<host_root>/proc` for the host.
    pub fn read(host_root: &Path) -> ProcessSample {
        let rd = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        let mut s = ProcessSample::default();
        // SAFETY: sysconf has no preconditions.
        let hz = match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
            n if n > 0 => n as f64,
            _ => 100.0,
        };
        let stat = rd(Path::new("/proc/self/stat"));
        // Fields after the parenthesised command name: state is field 3.
        if let Some(rest) = stat.rfind(')').map(|i| &stat[i + 2..]) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            let num = |i: usize| {
                f.get(i - 3)
                    .and_then(|x| x.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            let (utime, stime, start) = (num(14), num(15), num(22));
            let uptime: f64 = rd(Path::new("/proc/uptime"))
                .split_whitespace()
                .next()
                .and_then(|x| x.parse().ok())
                .unwrap_or(0.0);
            let elapsed = uptime - start / hz;
            if elapsed > 0.0 {
                s.cpu_ratio = ((utime + stime) / hz) / elapsed;
            }
        }
        let status = rd(Path::new("/proc/self/status"));
        s.rss_bytes = kv_kb(&status, "VmRSS:");
        s.vsz_bytes = kv_kb(&status, "VmSize:");
        s.pss_bytes = kv_kb(&rd(Path::new("/proc/self/smaps_rollup")), "Pss:");
        s.container_memory_used_bytes = [
            "/sys/fs/cgroup/memory.current",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ]
        .iter()
        .find_map(|p| rd(Path::new(p)).trim().parse().ok())
        .unwrap_or(0);
        let proc_ = host_root.join("proc");
        let pstat = rd(&proc_.join("stat"));
        for l in pstat.lines() {
            if let Some(cpu) = l.strip_prefix("cpu ") {
                let v: Vec<u64> = cpu
                    .split_whitespace()
                    .take(7)
                    .filter_map(|x| x.parse().ok())
                    .collect();
                let sum: u64 = v.iter().sum();
                if sum > 0 && v.len() >= 4 {
                    s.host_cpu_ratio = 1.0 - v[3] as f64 / sum as f64;
                }
            } else if let Some(n) = l.strip_prefix("procs_running ") {
                s.host_procs_running = n.trim().parse().unwrap_or(0);
            }
        }
        let meminfo = rd(&proc_.join("meminfo"));
        s.host_memory_used_bytes =
            kv_kb(&meminfo, "MemTotal:").saturating_sub(kv_kb(&meminfo, "MemAvailable:"));
        s.host_open_fds = rd(&proc_.join("sys/fs/file-nr"))
            .split_whitespace()
            .next()
            .and_then(|x| x.parse().ok())
            .unwrap_or(0);
        s
    }
}

fn l1(k: &str, v: &str) -> Labels {
    vec![(k.to_string(), v.to_string())]
}

/// Every metric Saker exports. Shared as `Arc<Metrics>` by the engine, the
/// outputs and the web server.
pub struct Metrics {
    registry: Registry,
    pub events: CounterFamily,
    pub kernel_drops: CounterFamily,
    /// Events the in-kernel prefilter kept from user space, by family.
    pub prefilter_dropped: CounterFamily,
    /// Per-rule cost: sampled evaluation seconds and events admitted.
    pub rule_eval_seconds: Family<Labels, Counter<f64, AtomicU64>>,
    pub rule_events_admitted: CounterFamily,
    rule_cost_last: Mutex<HashMap<String, (f64, u64)>>,
    prefilter_last: Mutex<HashMap<String, u64>>,
    pub alerts: CounterFamily,
    pub alerts_suppressed: CounterFamily,
    /// Alerts that waited for their container's metadata.
    pub alerts_held: Counter,
    /// Held alerts sent without their container's metadata because the wait was over.
    pub alerts_hold_expired: Counter,
    /// Bytes of events the capture-on-alert flight recorder holds (`capture.recorder_max_mb`).
    pub capture_recorder_bytes: IGauge,
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
    pub scap_n_drops_scratch_map: Counter,
    /// Events the engine processed (the dashboard's event rate).
    pub falco_n_evts: Counter,
    pub falco_config_files_info: GaugeFamily,
    pub scap_engine_name_info: GaugeFamily,
    pub falco_kernel_release_info: GaugeFamily,
    pub evt_hostname_info: GaugeFamily,
    pub falco_start_ts: IGauge,
    pub falco_host_boot_ts: IGauge,
    pub falco_host_num_cpus: IGauge,
    pub falco_duration: Counter,
    pub cpu_usage: FGauge,
    pub memory_rss: FGauge,
    pub memory_vsz: FGauge,
    pub memory_pss: FGauge,
    pub container_memory_used: FGauge,
    pub host_cpu_usage: FGauge,
    pub host_memory_used: FGauge,
    pub host_procs_running: IGauge,
    pub host_open_fds: IGauge,
    pub n_threads: IGauge,
    pub n_fds: IGauge,
    pub n_added_threads: Counter,
    pub n_removed_threads: Counter,
    pub n_added_fds: Counter,
    pub n_removed_fds: Counter,
    pub n_drops_full_threadtable: Counter,
    pub n_failed_thread_lookups: Counter,
    pub n_failed_fd_lookups: Counter,
    groups: Mutex<MetricGroups>,
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
        let prefilter_dropped = cf(
            &mut r,
            "saker_prefilter_dropped_events",
            "Events the in-kernel prefilter dropped (no loaded rule or state need), by family",
        );
        let rule_eval_seconds = Family::<Labels, Counter<f64, AtomicU64>>::default();
        r.register(
            "saker_rule_eval_seconds",
            "CPU time spent evaluating each rule's condition (estimated from sampled events)",
            rule_eval_seconds.clone(),
        );
        let rule_events_admitted = cf(
            &mut r,
            "saker_rule_events_admitted",
            "Events of each rule's event types that reached user space (after the prefilter)",
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
        let alerts_held = Counter::default();
        r.register(
            "saker_alerts_held",
            "Alerts that waited for their container's metadata (a lookup in flight)",
            alerts_held.clone(),
        );
        let alerts_hold_expired = Counter::default();
        r.register(
            "saker_alerts_hold_expired",
            "Held alerts sent without their container's metadata because container_engines.hold_ms was over",
            alerts_hold_expired.clone(),
        );
        let capture_recorder_bytes = IGauge::default();
        r.register(
            "saker_capture_recorder_bytes",
            "Bytes of events the capture-on-alert flight recorder holds (bounded by capture.recorder_max_mb)",
            capture_recorder_bytes.clone(),
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
        let c = |r: &mut Registry, name: &str, help: &str| {
            let x = Counter::default();
            r.register(name, help, x.clone());
            x
        };
        let ig = |r: &mut Registry, name: &str, help: &str| {
            let x = IGauge::default();
            r.register(name, help, x.clone());
            x
        };
        let fg = |r: &mut Registry, name: &str, help: &str| {
            let x = FGauge::default();
            r.register(name, help, x.clone());
            x
        };
        let scap_n_drops_scratch_map = c(
            &mut r,
            "falcosecurity_scap_n_drops_scratch_map",
            "Kernel events dropped for lack of scratch space (Saker's probe has none: always 0)",
        );
        let falco_n_evts = c(
            &mut r,
            "falcosecurity_falco_n_evts",
            "Events processed by the engine",
        );
        let falco_config_files_info = gf(
            &mut r,
            "falcosecurity_falco_sha256_config_files_info",
            "Loaded config files",
        );
        let scap_engine_name_info = gf(
            &mut r,
            "falcosecurity_scap_engine_name_info",
            "Event source engine",
        );
        let falco_kernel_release_info = gf(
            &mut r,
            "falcosecurity_falco_kernel_release_info",
            "Kernel release",
        );
        let evt_hostname_info = gf(&mut r, "falcosecurity_evt_hostname_info", "Host name");
        let falco_start_ts = ig(
            &mut r,
            "falcosecurity_falco_start_timestamp_nanoseconds",
            "Start time of the agent",
        );
        let falco_host_boot_ts = ig(
            &mut r,
            "falcosecurity_falco_host_boot_timestamp_nanoseconds",
            "Boot time of the host",
        );
        let falco_host_num_cpus = ig(
            &mut r,
            "falcosecurity_falco_host_num_cpus_total",
            "CPUs of the host",
        );
        let falco_duration = c(
            &mut r,
            "falcosecurity_falco_duration_seconds",
            "Seconds since start",
        );
        let cpu_usage = fg(
            &mut r,
            "falcosecurity_falco_cpu_usage_ratio",
            "CPU usage of the agent (1 = one CPU), over its lifetime as ps computes it",
        );
        let memory_rss = fg(
            &mut r,
            "falcosecurity_falco_memory_rss_bytes",
            "Resident memory of the agent",
        );
        let memory_vsz = fg(
            &mut r,
            "falcosecurity_falco_memory_vsz_bytes",
            "Virtual memory of the agent",
        );
        let memory_pss = fg(
            &mut r,
            "falcosecurity_falco_memory_pss_bytes",
            "Proportional set size of the agent",
        );
        let container_memory_used = fg(
            &mut r,
            "falcosecurity_falco_container_memory_used_bytes",
            "Memory of the agent's cgroup",
        );
        let host_cpu_usage = fg(
            &mut r,
            "falcosecurity_falco_host_cpu_usage_ratio",
            "CPU usage of the host since boot",
        );
        let host_memory_used = fg(
            &mut r,
            "falcosecurity_falco_host_memory_used_bytes",
            "Memory used on the host",
        );
        let host_procs_running = ig(
            &mut r,
            "falcosecurity_falco_host_procs_running_total",
            "Runnable processes on the host",
        );
        let host_open_fds = ig(
            &mut r,
            "falcosecurity_falco_host_open_fds_total",
            "Open files on the host",
        );
        let n_threads = ig(
            &mut r,
            "falcosecurity_scap_n_threads_total",
            "Threads in the process table",
        );
        let n_fds = ig(
            &mut r,
            "falcosecurity_scap_n_fds_total",
            "fds in the fd tables",
        );
        let n_added_threads = c(
            &mut r,
            "falcosecurity_scap_n_added_threads",
            "Threads added to the table",
        );
        let n_removed_threads = c(
            &mut r,
            "falcosecurity_scap_n_removed_threads",
            "Threads removed from the table",
        );
        let n_added_fds = c(&mut r, "falcosecurity_scap_n_added_fds", "fds added");
        let n_removed_fds = c(&mut r, "falcosecurity_scap_n_removed_fds", "fds removed");
        let n_drops_full_threadtable = c(
            &mut r,
            "falcosecurity_scap_n_drops_full_threadtable",
            "Threads not added because the table was full (falco_libs.thread_table_size)",
        );
        let n_failed_thread_lookups = c(
            &mut r,
            "falcosecurity_scap_n_failed_thread_lookups",
            "Thread-table misses",
        );
        let n_failed_fd_lookups = c(
            &mut r,
            "falcosecurity_scap_n_failed_fd_lookups",
            "fd-table misses",
        );
        Metrics {
            scap_n_drops_scratch_map,
            falco_n_evts,
            falco_config_files_info,
            scap_engine_name_info,
            falco_kernel_release_info,
            evt_hostname_info,
            falco_start_ts,
            falco_host_boot_ts,
            falco_host_num_cpus,
            falco_duration,
            cpu_usage,
            memory_rss,
            memory_vsz,
            memory_pss,
            container_memory_used,
            host_cpu_usage,
            host_memory_used,
            host_procs_running,
            host_open_fds,
            n_threads,
            n_fds,
            n_added_threads,
            n_removed_threads,
            n_added_fds,
            n_removed_fds,
            n_drops_full_threadtable,
            n_failed_thread_lookups,
            n_failed_fd_lookups,
            groups: Mutex::new(MetricGroups::default()),
            registry: r,
            events,
            kernel_drops,
            prefilter_dropped,
            prefilter_last: Mutex::new(HashMap::new()),
            rule_eval_seconds,
            rule_events_admitted,
            rule_cost_last: Mutex::new(HashMap::new()),
            alerts,
            alerts_suppressed,
            alerts_held,
            alerts_hold_expired,
            output_queue_depth,
            output_sent,
            output_failures,
            output_drops,
            output_retries,
            output_drops_by_reason,
            output_spool_bytes,
            capture_recorder_bytes,
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

    /// Sets one rule's running cost totals (seconds of evaluation, events admitted).
    pub fn record_rule_cost(&self, rule: &str, seconds: f64, admitted: u64) {
        let mut last = self
            .rule_cost_last
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let prev = last.entry(rule.to_string()).or_insert((0.0, 0));
        let ds = (seconds - prev.0).max(0.0);
        let da = admitted.saturating_sub(prev.1);
        *prev = (seconds.max(prev.0), admitted.max(prev.1));
        drop(last);
        let l = l1("rule", rule);
        self.rule_eval_seconds.get_or_create(&l).inc_by(ds);
        self.rule_events_admitted.get_or_create(&l).inc_by(da);
    }

    /// Sets the prefilter's running total for one event family (`open`, `close`).
    pub fn record_prefilter(&self, family: &str, total: u64) {
        let mut last = self
            .prefilter_last
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let prev = last.entry(family.to_string()).or_insert(0);
        let d = total.saturating_sub(*prev);
        *prev = total.max(*prev);
        drop(last);
        self.prefilter_dropped
            .get_or_create(&l1("family", family))
            .inc_by(d);
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

    /// Replaces the list of loaded config files (`file_name`, `sha256`).
    pub fn set_config_files(&self, files: &[(String, String)]) {
        self.falco_config_files_info.clear();
        for (name, sha) in files {
            self.falco_config_files_info
                .get_or_create(&vec![
                    ("file_name".to_string(), name.clone()),
                    ("sha256".to_string(), sha.clone()),
                ])
                .set(1);
        }
    }

    pub fn set_engine(&self, engine_name: &str, evt_source: &str) {
        self.scap_engine_name_info.clear();
        self.scap_engine_name_info
            .get_or_create(&vec![
                ("engine_name".to_string(), engine_name.to_string()),
                ("evt_source".to_string(), evt_source.to_string()),
            ])
            .set(1);
    }

    pub fn set_kernel_release(&self, release: &str) {
        self.falco_kernel_release_info.clear();
        self.falco_kernel_release_info
            .get_or_create(&l1("kernel_release", release))
            .set(1);
    }

    pub fn set_hostname(&self, hostname: &str) {
        self.evt_hostname_info.clear();
        self.evt_hostname_info
            .get_or_create(&l1("hostname", hostname))
            .set(1);
    }

    /// Start time of the agent, boot time of the host, its CPU count.
    pub fn set_start(&self, start_ns: u64, boot_ns: u64, cpus: u64) {
        self.falco_start_ts.set(start_ns as i64);
        self.falco_host_boot_ts.set(boot_ns as i64);
        self.falco_host_num_cpus.set(cpus as i64);
    }

    pub fn set_groups(&self, g: MetricGroups) {
        *self.groups.lock().unwrap_or_else(|e| e.into_inner()) = g;
    }

    pub fn record_state(&self, s: &StateSample) {
        self.n_threads.set(s.threads as i64);
        self.n_fds.set(s.fds as i64);
        set_total(&self.n_added_threads, s.threads_added);
        set_total(&self.n_removed_threads, s.threads_removed);
        set_total(&self.n_added_fds, s.fds_added);
        set_total(&self.n_removed_fds, s.fds_removed);
        set_total(&self.n_drops_full_threadtable, s.drops_full_threadtable);
        set_total(&self.n_failed_thread_lookups, s.failed_thread_lookups);
        set_total(&self.n_failed_fd_lookups, s.failed_fd_lookups);
    }

    pub fn record_process(&self, p: &ProcessSample) {
        self.cpu_usage.set(p.cpu_ratio);
        self.memory_rss.set(p.rss_bytes as f64);
        self.memory_vsz.set(p.vsz_bytes as f64);
        self.memory_pss.set(p.pss_bytes as f64);
        self.container_memory_used
            .set(p.container_memory_used_bytes as f64);
        self.host_cpu_usage.set(p.host_cpu_ratio);
        self.host_memory_used.set(p.host_memory_used_bytes as f64);
        self.host_procs_running.set(p.host_procs_running as i64);
        self.host_open_fds.set(p.host_open_fds as i64);
        let start = self.falco_start_ts.get();
        if start > 0 {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as i64);
            set_total(
                &self.falco_duration,
                ((now - start).max(0) / 1_000_000_000) as u64,
            );
        }
    }

    /// Ring-buffer drop totals under Falco's scap names (`n_drops_buffer_<family>_exit`)
    /// into `falcosecurity_scap_n_drops_buffer_total{dir="exit",drop=...}`; the `enter` series
    /// Falco still lists are present at 0 (there are no enter events).
    pub fn record_buffer_drop_totals(&self, counters: &[(&str, u64)]) {
        for (name, total) in counters {
            let Some(fam) = name
                .strip_prefix("n_drops_buffer_")
                .and_then(|r| r.strip_suffix("_exit"))
            else {
                continue;
            };
            let c = self
                .scap_n_drops_buffer
                .get_or_create(&vec![
                    ("dir".to_string(), "exit".to_string()),
                    ("drop".to_string(), fam.to_string()),
                ])
                .clone();
            set_total(&c, *total);
        }
        for fam in [
            "clone_fork",
            "execve",
            "connect",
            "open",
            "dir_file",
            "other_interest",
        ] {
            let _ = self.scap_n_drops_buffer.get_or_create(&vec![
                ("dir".to_string(), "enter".to_string()),
                ("drop".to_string(), fam.to_string()),
            ]);
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
        let mut labels: Labels = Vec::with_capacity(5 + a.tags.len());
        labels.push(("rule_name".into(), a.rule.clone()));
        labels.push(("priority".into(), (a.priority as u8).to_string()));
        labels.push(("source".into(), a.source.clone()));
        // Pod and namespace when the alert knows them (falcosecurity/falco#3652).
        for (field, label) in [
            ("k8s.pod.name", "k8s_pod_name"),
            ("k8s.ns.name", "k8s_ns_name"),
        ] {
            if let Some((_, OutputValue::Str(v))) = a.output_fields.iter().find(|(k, _)| k == field)
            {
                if !v.is_empty() && v != "<NA>" {
                    labels.push((label.into(), v.clone()));
                }
            }
        }
        let mut tags: Vec<&String> = a.tags.iter().collect();
        tags.sort();
        tags.dedup();
        for t in tags {
            labels.push((format!("tag_{}", sanitize_label(t)), "true".into()));
        }
        self.falco_rules_matches.get_or_create(&labels).inc();
    }

    /// The registry in the OpenMetrics text format, without the groups `metrics.*_enabled`
    /// turns off.
    pub fn encode(&self) -> String {
        let mut s = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut s, &self.registry);
        let g = *self.groups.lock().unwrap_or_else(|e| e.into_inner());
        if g == MetricGroups::default() {
            return s;
        }
        let mut out = String::with_capacity(s.len());
        let mut keep = true;
        for line in s.split_inclusive('\n') {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                keep = g.shows(rest.split(' ').next().unwrap_or(""));
            } else if line.starts_with("# EOF") {
                keep = true;
            }
            if keep {
                out.push_str(line);
            }
        }
        out
    }

    /// The Prometheus text format 0.0.4: counter families are named with their `_total`
    /// suffix, no `# EOF`.
    pub fn encode_prometheus(&self) -> String {
        to_prometheus_text(&self.encode())
    }
}

/// OpenMetrics text → Prometheus text 0.0.4.
pub fn to_prometheus_text(om: &str) -> String {
    let mut out = String::with_capacity(om.len());
    let lines: Vec<&str> = om.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.starts_with("# EOF") || line.starts_with("# UNIT ") {
            i += 1;
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let name = rest.split(' ').next().unwrap_or("");
            let is_counter = lines
                .get(i + 1)
                .is_some_and(|t| *t == format!("# TYPE {name} counter"));
            if is_counter {
                let help = &rest[name.len()..];
                out.push_str(&format!(
                    "# HELP {name}_total{help}\n# TYPE {name}_total counter\n"
                ));
                i += 2;
                continue;
            }
        }
        out.push_str(line);
        out.push('\n');
        i += 1;
    }
    out
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

/// The content type of [`Metrics::encode_prometheus`].
pub const PROMETHEUS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The content type of [`Metrics::encode`].
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
