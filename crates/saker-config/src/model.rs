//! The configuration tree. Key names follow Falco's `falco.yaml` wherever the
//! feature is the same; Saker's own keys (CloudWatch, per-output
//! `min_priority`, rate limits) sit beside them.

use std::collections::BTreeMap;
use std::path::PathBuf;

use saker_types::Priority;
use serde::{Deserialize, Deserializer};

/// Parses a priority name (case-insensitive, `info` alias) with an error that
/// names the accepted values; the path is added by the caller.
fn de_priority<'de, D: Deserializer<'de>>(d: D) -> Result<Priority, D::Error> {
    let s = String::deserialize(d)?;
    Priority::parse(&s).ok_or_else(|| {
        serde::de::Error::custom(format!(
            "Unknown priority \"{s}\"; expected one of emergency, alert, critical, error, warning, notice, informational (info), debug"
        ))
    })
}

fn de_opt_priority<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Priority>, D::Error> {
    let s = Option::<String>::deserialize(d)?;
    match s {
        None => Ok(None),
        Some(s) if s.is_empty() => Ok(None),
        Some(s) => Priority::parse(&s).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "Unknown priority \"{s}\"; expected one of emergency, alert, critical, error, warning, notice, informational (info), debug"
            ))
        }),
    }
}

/// `rules_files` entries may be a single string or a list (Falco accepts both).
fn de_paths<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<PathBuf>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany {
        One(PathBuf),
        Many(Vec<PathBuf>),
    }
    Ok(match Option::<OneOrMany>::deserialize(d)? {
        None => None,
        Some(OneOrMany::One(p)) => Some(vec![p]),
        Some(OneOrMany::Many(v)) => Some(v),
    })
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleMatching {
    First,
    All,
}

/// One `rules:` selection, applied in order after loading (Falco §1.14).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawSelection")]
pub enum RuleSelection {
    Enable(RuleSelector),
    Disable(RuleSelector),
}

/// `{enable: {...}}` or `{disable: {...}}` as written in YAML.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSelection {
    enable: Option<RuleSelector>,
    disable: Option<RuleSelector>,
}

impl TryFrom<RawSelection> for RuleSelection {
    type Error = String;
    fn try_from(r: RawSelection) -> Result<Self, String> {
        match (r.enable, r.disable) {
            (Some(e), None) => Ok(RuleSelection::Enable(e)),
            (None, Some(d)) => Ok(RuleSelection::Disable(d)),
            _ => Err("each entry needs exactly one of 'enable' or 'disable'".into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSelector {
    pub rule: Option<String>,
    pub tag: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Rules files or directories, loaded in order. `None` when neither
    /// `rules_files` nor the legacy `rules_file` is set (use [`Config::rules_paths`]).
    #[serde(deserialize_with = "de_paths")]
    pub rules_files: Option<Vec<PathBuf>>,
    /// Legacy spelling; setting both is an error.
    #[serde(deserialize_with = "de_paths")]
    pub rules_file: Option<Vec<PathBuf>>,
    pub rules: Vec<RuleSelection>,
    #[serde(deserialize_with = "de_priority")]
    pub priority: Priority,
    pub rule_matching: RuleMatching,
    pub json_output: bool,
    pub json_include_output_property: bool,
    pub json_include_message_property: bool,
    pub json_include_output_fields_property: bool,
    pub json_include_tags_property: bool,
    pub time_format_iso_8601: bool,
    pub buffer_format_base64: bool,
    pub buffered_outputs: bool,
    /// Saker: overrides `FALCO_HOSTNAME`/`gethostname()` in alerts.
    pub hostname: Option<String>,
    /// Milliseconds a sink write may take before a warning is logged.
    pub output_timeout: u64,
    pub outputs_queue: OutputsQueue,
    pub outputs: RateLimits,
    pub append_output: Vec<AppendOutput>,
    pub static_fields: BTreeMap<String, String>,
    pub stdout_output: StdoutOutput,
    pub file_output: FileOutput,
    pub syslog_output: SyslogOutput,
    pub program_output: ProgramOutput,
    pub http_output: HttpOutput,
    pub cloudwatch_output: CloudwatchOutput,
    pub webserver: Webserver,
    pub metrics: MetricsConfig,
    pub base_syscalls: BaseSyscalls,
    pub syscall_event_drops: SyscallEventDrops,
    pub syscall_event_timeouts: SyscallEventTimeouts,
    pub engine: Engine,
    /// Reload config and rules when one of their files changes.
    pub watch_config_files: bool,
    /// Files or directories merged into this config (merged before typing, see `compat`).
    pub config_files: Vec<ConfigInclude>,
    pub log_stderr: bool,
    pub log_syslog: bool,
    /// Falco's level names: emergency, alert, critical, error, warning, notice, info, debug.
    pub log_level: String,
    /// Saker has no plugin loader: the container plugin is built in; other plugins are
    /// refused with a warning.
    pub plugins: Vec<serde_norway::Value>,
    /// Absent: every `plugins` entry would load.
    pub load_plugins: Option<Vec<String>>,
    pub plugins_hostinfo: bool,
    /// Logs of Saker's probe, state and container crates (Falco's libs).
    pub libs_logger: LibsLogger,
    pub falco_libs: FalcoLibs,
    pub capture: Capture,
    /// Runtime sockets for container metadata, per engine (`docker`, `podman`,
    /// `containerd`, `cri`), as Falco's container plugin configures them, and the hold bound.
    pub container_engines: ContainerEngines,
}

/// `container_engines`: one entry per engine, plus Saker's `hold_ms`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ContainerEngines {
    /// Saker: the longest an alert waits for its container's metadata while a lookup for
    /// that container is in flight (then it goes out with what is known). 0: never wait.
    pub hold_ms: u64,
    #[serde(flatten)]
    pub engines: BTreeMap<String, ContainerEngine>,
}

/// Default of `container_engines.hold_ms`: a new podman container's inspect answers in
/// 10-40 ms here (p99 of the first lookup measured by bench/run); a few times that.
pub const DEFAULT_HOLD_MS: u64 = 200;

impl Default for ContainerEngines {
    fn default() -> Self {
        ContainerEngines {
            hold_ms: DEFAULT_HOLD_MS,
            engines: BTreeMap::new(),
        }
    }
}

impl ContainerEngines {
    pub fn get(&self, engine: &str) -> Option<&ContainerEngine> {
        self.engines.get(engine)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ContainerEngine {
    pub enabled: bool,
    /// Socket files, or directories holding them (a runtime restart replaces the file).
    pub sockets: Vec<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            rules_files: None,
            rules_file: None,
            rules: Vec::new(),
            priority: Priority::Debug,
            rule_matching: RuleMatching::First,
            json_output: false,
            json_include_output_property: true,
            json_include_message_property: false,
            json_include_output_fields_property: true,
            json_include_tags_property: true,
            time_format_iso_8601: false,
            buffer_format_base64: false,
            buffered_outputs: false,
            hostname: None,
            output_timeout: 2000,
            outputs_queue: OutputsQueue::default(),
            outputs: RateLimits::default(),
            append_output: Vec::new(),
            static_fields: BTreeMap::new(),
            stdout_output: StdoutOutput::default(),
            file_output: FileOutput::default(),
            syslog_output: SyslogOutput::default(),
            program_output: ProgramOutput::default(),
            http_output: HttpOutput::default(),
            cloudwatch_output: CloudwatchOutput::default(),
            webserver: Webserver::default(),
            metrics: MetricsConfig::default(),
            base_syscalls: BaseSyscalls::default(),
            syscall_event_drops: SyscallEventDrops::default(),
            syscall_event_timeouts: SyscallEventTimeouts::default(),
            engine: Engine::default(),
            watch_config_files: true,
            config_files: Vec::new(),
            log_stderr: true,
            log_syslog: false,
            log_level: "info".into(),
            plugins: Vec::new(),
            load_plugins: None,
            plugins_hostinfo: true,
            libs_logger: LibsLogger::default(),
            falco_libs: FalcoLibs::default(),
            capture: Capture::default(),
            container_engines: ContainerEngines::default(),
        }
    }
}

/// Default rules locations when the config names none.
pub const DEFAULT_RULES_FILES: [&str; 2] = ["/etc/saker/saker_rules.yaml", "/etc/saker/rules.d"];

impl Config {
    /// The rules files to load: `rules_files`, else legacy `rules_file`, else the defaults.
    pub fn rules_paths(&self) -> Vec<PathBuf> {
        self.rules_files
            .clone()
            .or_else(|| self.rules_file.clone())
            .unwrap_or_else(|| DEFAULT_RULES_FILES.iter().map(PathBuf::from).collect())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct OutputsQueue {
    /// Alerts queued per output before new ones are dropped (0 = Saker's default, 10000;
    /// an unbounded queue would let a dead sink eat all memory).
    pub capacity: usize,
    /// Saker: a directory where the network outputs (http, cloudwatch) keep their queue on
    /// disk, so alerts outlive an endpoint outage and a restart (or SIGKILL) of Saker.
    /// Empty: in-memory queues only.
    pub spool_dir: String,
    /// Saker: the most bytes each output's spool may hold; alerts beyond it are dropped and counted.
    pub spool_max_bytes: u64,
}

impl Default for OutputsQueue {
    fn default() -> Self {
        OutputsQueue {
            capacity: 10_000,
            spool_dir: String::new(),
            spool_max_bytes: 256 << 20,
        }
    }
}

/// A duration written as seconds (`10`, `0.5`) or with a unit (`500ms`, `10s`, `2m`).
fn de_duration<'de, D: Deserializer<'de>>(d: D) -> Result<std::time::Duration, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Num(f64),
        Text(String),
    }
    let bad = |s: &str| {
        serde::de::Error::custom(format!(
            "invalid duration \"{s}\"; expected seconds (10) or a number with a unit (500ms, 10s, 2m)"
        ))
    };
    let secs = match Raw::deserialize(d)? {
        Raw::Num(n) => n,
        Raw::Text(t) => {
            let s = t.trim();
            let split = s
                .find(|c: char| !(c.is_ascii_digit() || c == '.'))
                .unwrap_or(s.len());
            let (num, unit) = s.split_at(split);
            let n: f64 = num.parse().map_err(|_| bad(s))?;
            match unit.trim() {
                "" | "s" => n,
                "ms" => n / 1000.0,
                "m" => n * 60.0,
                _ => return Err(bad(s)),
            }
        }
    };
    if !secs.is_finite() || !(0.0..=86_400.0).contains(&secs) {
        return Err(serde::de::Error::custom(format!(
            "duration {secs} s is out of range (0 to 86400 s)"
        )));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// Token buckets against alert floods. A rate of 0 means unlimited.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RateLimits {
    /// Global alerts per second.
    pub rate: f64,
    pub max_burst: u64,
    /// Alerts per second per rule.
    pub per_rule_rate: f64,
    pub per_rule_max_burst: u64,
    /// Seconds between "N alerts suppressed" summary lines.
    pub summary_interval_s: u64,
    /// Saker: at exit (SIGINT/SIGTERM, end of a replay) the outputs get this long to deliver
    /// what they hold; what is left is counted as dropped (or kept in the spool) and reported.
    #[serde(deserialize_with = "de_duration")]
    pub shutdown_timeout: std::time::Duration,
}

impl Default for RateLimits {
    fn default() -> Self {
        RateLimits {
            rate: 0.0,
            max_burst: 1000,
            per_rule_rate: 0.0,
            per_rule_max_burst: 100,
            summary_interval_s: 60,
            shutdown_timeout: std::time::Duration::from_secs(10),
        }
    }
}

/// One `append_output` entry: which rules it applies to and what it adds to their alerts.
/// Unknown keys are warned about (as everywhere); a wrong type is an error naming the entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AppendOutput {
    /// Every condition given must hold; none given matches every rule.
    #[serde(rename = "match")]
    pub matches: AppendMatch,
    /// Text appended to the output (after one space).
    pub extra_output: Option<String>,
    /// Extra `output_fields` keys.
    pub extra_fields: Vec<ExtraField>,
    /// Append the container fields Falco suggests.
    pub suggested_output: bool,
}

impl AppendOutput {
    /// True when the entry adds nothing to any alert.
    pub fn is_empty(&self) -> bool {
        self.extra_output.as_deref().is_none_or(str::is_empty)
            && self.extra_fields.is_empty()
            && !self.suggested_output
    }
}

/// `append_output[].match`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct AppendMatch {
    /// The rule's source (`syscall`, `k8s_audit`, ...).
    pub source: Option<String>,
    /// The rule must carry all of these tags.
    pub tags: Vec<String>,
    /// Exact rule name.
    pub rule: Option<String>,
}

/// An `append_output[].extra_fields` entry: `- field.name` or `- key: "format"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraField {
    Field(String),
    Format { key: String, format: String },
}

impl<'de> Deserialize<'de> for ExtraField {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Field(String),
            Format(BTreeMap<String, String>),
        }
        let bad = || {
            serde::de::Error::custom(
                "an extra_fields entry is a field name or one `key: \"format\"` pair",
            )
        };
        match Raw::deserialize(d).map_err(|_| bad())? {
            Raw::Field(f) if !f.is_empty() => Ok(ExtraField::Field(f)),
            Raw::Format(m) if m.len() == 1 => {
                let (key, format) = m.into_iter().next().expect("one entry");
                Ok(ExtraField::Format { key, format })
            }
            _ => Err(bad()),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct StdoutOutput {
    /// On by default (as in the shipped falco.yaml) so that a bare `saker run` shows alerts.
    pub enabled: bool,
    #[serde(deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
}

impl Default for StdoutOutput {
    fn default() -> Self {
        StdoutOutput {
            enabled: true,
            min_priority: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct FileOutput {
    pub enabled: bool,
    pub keep_alive: bool,
    pub filename: String,
    #[serde(deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SyslogOutput {
    pub enabled: bool,
    /// Unix datagram socket of the syslog daemon.
    pub path: PathBuf,
    /// RFC 3164 facility number (1 = user, 4 = auth, 16..23 = local0..7).
    pub facility: u8,
    pub ident: String,
    #[serde(deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
}

impl Default for SyslogOutput {
    fn default() -> Self {
        SyslogOutput {
            enabled: false,
            path: PathBuf::from("/dev/log"),
            facility: 1,
            ident: "saker".into(),
            min_priority: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct ProgramOutput {
    pub enabled: bool,
    pub keep_alive: bool,
    /// Command line. Run through `/bin/sh -c` as Falco does (pipelines work); the
    /// alert only ever reaches it on stdin, so alert text cannot inject commands.
    pub program: String,
    #[serde(deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct HttpOutput {
    pub enabled: bool,
    pub url: String,
    pub user_agent: String,
    /// Skip server certificate verification.
    pub insecure: bool,
    pub ca_cert: String,
    pub ca_bundle: String,
    pub ca_path: String,
    pub mtls: bool,
    pub client_cert: String,
    pub client_key: String,
    pub echo: bool,
    pub compress_uploads: bool,
    pub keep_alive: bool,
    pub max_consecutive_timeouts: u32,
    /// Saker: extra request headers.
    pub custom_headers: BTreeMap<String, String>,
    pub timeout_ms: u64,
    /// Attempts after the first before the alert is dropped.
    pub retries: u32,
    pub backoff_ms: u64,
    #[serde(deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
}

impl Default for HttpOutput {
    fn default() -> Self {
        HttpOutput {
            enabled: false,
            url: String::new(),
            user_agent: "saker".into(),
            insecure: false,
            ca_cert: String::new(),
            ca_bundle: String::new(),
            ca_path: "/etc/ssl/certs".into(),
            mtls: false,
            client_cert: "/etc/saker/certs/client/client.crt".into(),
            client_key: "/etc/saker/certs/client/client.key".into(),
            echo: false,
            compress_uploads: false,
            keep_alive: true,
            max_consecutive_timeouts: 5,
            custom_headers: BTreeMap::new(),
            timeout_ms: 5000,
            retries: 5,
            backoff_ms: 200,
            min_priority: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CloudwatchOutput {
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
    #[serde(deserialize_with = "de_opt_priority")]
    pub min_priority: Option<Priority>,
    /// Per PutLogEvents call (AWS maximum 10000).
    pub batch_max_events: usize,
    /// Per call including 26 bytes per event (AWS maximum 1048576).
    pub batch_max_bytes: usize,
    /// Longest an alert waits before its batch is sent.
    pub flush_interval_ms: u64,
    pub retries: u32,
    pub backoff_ms: u64,
    pub metrics: CloudwatchMetrics,
}

impl Default for CloudwatchOutput {
    fn default() -> Self {
        CloudwatchOutput {
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
            metrics: CloudwatchMetrics::default(),
        }
    }
}

/// Per-rule alert counts as CloudWatch metrics, written in the Embedded Metric
/// Format to their own log stream.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct CloudwatchMetrics {
    pub enabled: bool,
    pub namespace: String,
    /// Empty: `<log_stream>-metrics`.
    pub log_stream: String,
    /// Seconds between EMF records.
    pub interval_s: u64,
}

impl Default for CloudwatchMetrics {
    fn default() -> Self {
        CloudwatchMetrics {
            enabled: false,
            namespace: "Saker".into(),
            log_stream: String::new(),
            interval_s: 60,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Webserver {
    pub enabled: bool,
    pub threadiness: u32,
    pub listen_address: String,
    pub listen_port: u16,
    pub k8s_healthz_endpoint: String,
    pub prometheus_metrics_enabled: bool,
    pub ssl_enabled: bool,
    pub ssl_certificate: String,
}

impl Default for Webserver {
    fn default() -> Self {
        Webserver {
            enabled: false,
            threadiness: 0,
            listen_address: "127.0.0.1".into(),
            listen_port: 8765,
            k8s_healthz_endpoint: "/healthz".into(),
            prometheus_metrics_enabled: false,
            ssl_enabled: false,
            ssl_certificate: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct MetricsConfig {
    pub enabled: bool,
    /// Prometheus duration (`5s`, `1h`, ...).
    pub interval: String,
    pub output_rule: bool,
    pub output_file: String,
    pub rules_counters_enabled: bool,
    pub resource_utilization_enabled: bool,
    pub state_counters_enabled: bool,
    pub kernel_event_counters_enabled: bool,
    pub kernel_event_counters_per_cpu_enabled: bool,
    pub libbpf_stats_enabled: bool,
    pub plugins_metrics_enabled: bool,
    pub kernel_iter_event_counters_enabled: bool,
    pub jemalloc_stats_enabled: bool,
    pub convert_memory_to_mb: bool,
    pub include_empty_values: bool,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: false,
            interval: "1h".into(),
            output_rule: false,
            output_file: String::new(),
            rules_counters_enabled: true,
            resource_utilization_enabled: true,
            state_counters_enabled: true,
            kernel_event_counters_enabled: true,
            kernel_event_counters_per_cpu_enabled: false,
            libbpf_stats_enabled: true,
            plugins_metrics_enabled: true,
            kernel_iter_event_counters_enabled: true,
            jemalloc_stats_enabled: false,
            convert_memory_to_mb: true,
            include_empty_values: false,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct BaseSyscalls {
    pub custom_set: Vec<String>,
    pub repair: bool,
    pub all: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DropAction {
    Ignore,
    Log,
    Alert,
    Exit,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SyscallEventDrops {
    pub threshold: f64,
    pub actions: Vec<DropAction>,
    pub rate: f64,
    pub max_burst: u64,
    pub simulate_drops: bool,
}

impl Default for SyscallEventDrops {
    fn default() -> Self {
        SyscallEventDrops {
            threshold: 0.1,
            actions: vec![DropAction::Log, DropAction::Alert],
            rate: 0.03333,
            max_burst: 1,
            simulate_drops: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct SyscallEventTimeouts {
    pub max_consecutives: u64,
}

impl Default for SyscallEventTimeouts {
    fn default() -> Self {
        SyscallEventTimeouts {
            max_consecutives: 1000,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Engine {
    /// `modern_ebpf` (Saker's probe), `replay`, `nodriver`; `kmod` is accepted and maps to the probe.
    pub kind: String,
    pub replay: Replay,
    pub modern_ebpf: ModernEbpf,
    /// Falco's kernel-module settings; inert here, as in Falco when another kind is selected
    /// (`kind: kmod` itself is refused).
    pub kmod: Kmod,
    /// Saker's own key (no falco.yaml equivalent): threads of a replay's or of live
    /// detection's pipeline. 0 = auto ([`Engine::split`]), 1 = one thread, 2 = reading and
    /// decoding (a capture file, the probe's rings) on its own thread, state and rules on
    /// another. Larger values are refused: the split has exactly two stages.
    pub workers: u32,
}

impl Engine {
    /// Whether decoding runs on its own thread: `workers` 2, or 0 (auto) with `cpus` CPUs
    /// available (replays; live detection asks [`Engine::split_live`]). Auto splits from 4
    /// CPUs: on 2 vCPUs a replay's split is 1.4x faster only while the other core is idle, and
    /// slower than one thread with other load (docs/workers.md).
    pub fn split(&self, cpus: usize) -> bool {
        match self.workers {
            0 => cpus >= AUTO_SPLIT_CPUS,
            1 => false,
            _ => true,
        }
    }

    /// Whether live detection reads the probe on its own thread: only with `workers: 2`. Auto
    /// keeps one thread there: the split cost CPU and saved no drops both on 2 vCPUs and in a
    /// 4-vCPU VM (docs/workers.md), since reading the rings is a small part of the consumer.
    pub fn split_live(&self) -> bool {
        self.workers == 2
    }
}

/// The CPU count from which `engine.workers: 0` splits the pipeline.
pub const AUTO_SPLIT_CPUS: usize = 4;

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Kmod {
    pub buf_size_preset: u32,
    pub drop_failed_exit: bool,
}

impl Default for Kmod {
    fn default() -> Self {
        Kmod {
            buf_size_preset: 4,
            drop_failed_exit: false,
        }
    }
}

/// One `config_files` entry: a path, or `{path, strategy}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum ConfigInclude {
    Path(PathBuf),
    With {
        path: PathBuf,
        #[serde(default)]
        strategy: MergeStrategy,
    },
}

impl ConfigInclude {
    pub fn path(&self) -> &std::path::Path {
        match self {
            ConfigInclude::Path(p) | ConfigInclude::With { path: p, .. } => p,
        }
    }
    pub fn strategy(&self) -> MergeStrategy {
        match self {
            ConfigInclude::Path(_) => MergeStrategy::Append,
            ConfigInclude::With { strategy, .. } => *strategy,
        }
    }
}

/// How an included config file's top-level keys merge: `append` (lists appended, other values
/// replaced), `override` (replaced) or `add-only` (only keys not set yet).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MergeStrategy {
    #[default]
    Append,
    Override,
    AddOnly,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct LibsLogger {
    pub enabled: bool,
    /// libsinsp's names: fatal, critical, error, warning, notice, info, debug, trace.
    pub severity: String,
}

impl Default for LibsLogger {
    fn default() -> Self {
        LibsLogger {
            enabled: true,
            severity: "info".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct FalcoLibs {
    /// Most threads the process table holds.
    pub thread_table_size: usize,
    /// Refused with a warning (Saker removes threads at exit, it has no purge pass).
    pub thread_table_auto_purging_interval_s: u64,
    pub thread_table_auto_purging_thread_timeout_s: u64,
    /// Refused with a warning (the probe captures no I/O payloads to cut).
    pub snaplen: u64,
}

impl Default for FalcoLibs {
    fn default() -> Self {
        FalcoLibs {
            thread_table_size: 262_144,
            thread_table_auto_purging_interval_s: 300,
            thread_table_auto_purging_thread_timeout_s: 300,
            snaplen: 80,
        }
    }
}

/// Falco's capture-on-alert, plus Saker's flight recorder (the seconds before the trigger).
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct Capture {
    pub enabled: bool,
    pub path_prefix: String,
    /// `rules` (rules with `capture: true`) or `all_rules`.
    pub mode: String,
    /// Milliseconds recorded after the trigger when the rule has no `capture_duration`.
    pub default_duration: u64,
    /// 0 = unlimited.
    pub max_file_size_mb: u64,
    /// Saker: milliseconds of events before the trigger kept in memory and written first.
    pub pre_trigger_ms: u64,
    /// Saker: memory bound of the flight recorder, in MiB.
    pub recorder_max_mb: u64,
    /// Saker: which events a capture holds: `host` (all), `container` (the alert's container;
    /// the host's own processes for a host alert) or `process_tree` (the alerting process and
    /// its descendants). Unset: `container` for an alert in a container, `host` otherwise.
    pub scope: Option<String>,
}

impl Default for Capture {
    fn default() -> Self {
        Capture {
            enabled: false,
            path_prefix: "/tmp/falco".into(),
            mode: "rules".into(),
            default_duration: 5000,
            max_file_size_mb: 0,
            pre_trigger_ms: 5000,
            recorder_max_mb: 64,
            scope: None,
        }
    }
}

impl Default for Engine {
    fn default() -> Self {
        Engine {
            kind: "modern_ebpf".into(),
            replay: Replay::default(),
            modern_ebpf: ModernEbpf::default(),
            kmod: Kmod::default(),
            workers: 0,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct Replay {
    pub capture_file: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct ModernEbpf {
    pub cpus_for_each_buffer: u32,
    pub buf_size_preset: u32,
    pub drop_failed_exit: bool,
    pub disable_iterators: bool,
    /// Saker: for selected syscalls that have no per-syscall tracepoint on this
    /// kernel (e.g. `finit_module` when modules are compiled out), attach the
    /// generic sys_exit hook. It then runs on every syscall of the machine.
    pub generic_fallback: bool,
    /// Saker: how syscall exits are hooked: `auto` (fexit where the kernel
    /// allows it, else per-syscall tracepoints), `fexit`, `tracepoint` or
    /// `generic` (one sys_exit hook for every syscall).
    pub attach: String,
    /// Saker: drop in the kernel the opens (and their closes) that no loaded
    /// rule and no state need can use, as derived from the rules
    /// (`saker validate --prefilter` prints the filter).
    pub prefilter: bool,
}

impl Default for ModernEbpf {
    fn default() -> Self {
        ModernEbpf {
            cpus_for_each_buffer: 2,
            buf_size_preset: 4,
            drop_failed_exit: false,
            disable_iterators: false,
            generic_fallback: true,
            attach: "auto".into(),
            prefilter: true,
        }
    }
}
