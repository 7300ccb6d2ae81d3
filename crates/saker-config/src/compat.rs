//! Falco's `falco.yaml` semantics that go beyond key names: `config_files` merging, the keys
//! Saker refuses with a warning, log levels, the metrics interval and the ring-buffer presets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_norway::{Mapping, Value};

use crate::{Config, ConfigError, ConfigInclude, MergeStrategy};

fn bad(path: &str, message: String) -> ConfigError {
    ConfigError::BadValue {
        path: path.into(),
        message,
    }
}

/// Merges every `config_files` entry (a file, or a directory whose regular files are read in
/// name order) into `root`, top-level key by top-level key, as Falco does. Missing entries are
/// skipped; an included file may not itself have `config_files`.
pub(crate) fn merge_config_files(
    root: &mut Value,
    main: Option<&Path>,
    files: &mut Vec<PathBuf>,
    folders: &mut Vec<PathBuf>,
) -> Result<(), ConfigError> {
    let Some(entries) = root.get("config_files").cloned() else {
        return Ok(());
    };
    let entries: Vec<ConfigInclude> = match entries {
        Value::Null => Vec::new(),
        Value::Sequence(_) => {
            serde_norway::from_value(entries).map_err(|e| bad("config_files", e.to_string()))?
        }
        other => {
            vec![serde_norway::from_value(other).map_err(|e| bad("config_files", e.to_string()))?]
        }
    };
    for inc in entries {
        let p = inc.path();
        if main.is_some_and(|m| same_file(m, p)) {
            return Err(bad(
                "config_files",
                format!(
                    "'config_files' tried to include the main config file {}",
                    p.display()
                ),
            ));
        }
        if p.is_file() {
            include(root, p, inc.strategy())?;
            files.push(p.to_path_buf());
        } else if p.is_dir() {
            folders.push(p.to_path_buf());
            let mut names: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file())
                .collect();
            names.sort();
            for f in names {
                include(root, &f, inc.strategy())?;
                files.push(f);
            }
        }
    }
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

fn include(root: &mut Value, file: &Path, strategy: MergeStrategy) -> Result<(), ConfigError> {
    let text = std::fs::read_to_string(file).map_err(|source| ConfigError::Read {
        path: file.to_path_buf(),
        source,
    })?;
    let name = file.display().to_string();
    let Value::Mapping(inc) = crate::parse_root(&text, &name)? else {
        return Ok(());
    };
    let Value::Mapping(top) = root else {
        return Ok(());
    };
    for (k, v) in inc {
        if k.as_str() == Some("config_files") {
            return Err(bad(
                "config_files",
                format!("'config_files' directive in included config file {name}"),
            ));
        }
        merge_key(top, k, v, strategy);
    }
    Ok(())
}

fn merge_key(top: &mut Mapping, k: Value, v: Value, strategy: MergeStrategy) {
    match strategy {
        MergeStrategy::Append => match (top.get_mut(&k), v) {
            (Some(Value::Sequence(old)), Value::Sequence(new)) => old.extend(new),
            (_, v) => {
                top.insert(k, v);
            }
        },
        MergeStrategy::Override => {
            top.insert(k, v);
        }
        MergeStrategy::AddOnly => {
            if top.get(&k).is_none_or(Value::is_null) {
                top.insert(k, v);
            }
        }
    }
}

fn at<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(root, |v, k| v.get(k))
}

fn is_true(root: &Value, path: &str) -> bool {
    at(root, path).and_then(Value::as_bool) == Some(true)
}

/// The keys set in `root` that would change what Falco does in a way Saker does not
/// reproduce; each gets one warning at start. Keys of a feature that is off (`http_output.*` with the output disabled, Falco's `engine.kmod` when
/// another engine is selected) are as inert in Falco as in Saker and are not reported.
/// The list is documented in docs/coming-from-falco.md.
pub(crate) fn unsupported_keys(root: &Value, cfg: &Config) -> Vec<String> {
    let mut out = Vec::new();
    // Plugins Falco would load: `load_plugins` when present, else every `plugins` entry.
    // The container plugin is built into Saker (configured by `container_engines`).
    let entries = cfg
        .plugins
        .iter()
        .filter_map(|p| p.get("name").and_then(Value::as_str));
    let effective: Vec<&str> = match &cfg.load_plugins {
        Some(names) => names.iter().map(String::as_str).collect(),
        None => entries.collect(),
    };
    // So are the k8s_audit source's (k8saudit, k8saudit-eks, json), read by the binary.
    const BUILTIN: [&str; 4] = ["container", "k8saudit", "k8saudit-eks", "json"];
    if effective.iter().any(|n| !BUILTIN.contains(n)) {
        out.push("plugins".to_string());
    }
    if effective.contains(&"container") {
        let init = cfg
            .plugins
            .iter()
            .find(|p| p.get("name").and_then(Value::as_str) == Some("container"))
            .and_then(|p| p.get("init_config"));
        if init.is_some_and(|v| v.as_mapping().is_some_and(|m| !m.is_empty())) {
            out.push("plugins[container].init_config".to_string());
        }
    }
    for k in [
        "falco_libs.thread_table_auto_purging_interval_s",
        "falco_libs.thread_table_auto_purging_thread_timeout_s",
        "falco_libs.snaplen",
    ] {
        if at(root, k).is_some() {
            out.push(k.to_string());
        }
    }
    if cfg.metrics.enabled {
        for k in [
            "metrics.libbpf_stats_enabled",
            "metrics.kernel_iter_event_counters_enabled",
            "metrics.jemalloc_stats_enabled",
        ] {
            if is_true(root, k) {
                out.push(k.to_string());
            }
        }
    }
    if cfg.buffer_format_base64 {
        out.push("buffer_format_base64".to_string());
    }
    if cfg.http_output.enabled && at(root, "http_output.max_consecutive_timeouts").is_some() {
        out.push("http_output.max_consecutive_timeouts".to_string());
    }
    out
}

/// Falco's `log_level` names, most to least severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Emergency,
    Alert,
    Critical,
    Error,
    Warning,
    Notice,
    Info,
    Debug,
}

impl LogLevel {
    /// `log_level` (Falco's names) or `libs_logger.severity` (libsinsp's: `fatal`, `trace`).
    pub fn parse(s: &str) -> Option<LogLevel> {
        Some(match s {
            "emergency" | "fatal" => LogLevel::Emergency,
            "alert" => LogLevel::Alert,
            "critical" => LogLevel::Critical,
            "error" => LogLevel::Error,
            "warning" => LogLevel::Warning,
            "notice" => LogLevel::Notice,
            "info" => LogLevel::Info,
            "debug" | "trace" => LogLevel::Debug,
            _ => return None,
        })
    }
}

/// A Prometheus duration (`500ms`, `15s`, `1h30m`, units `ms s m h d w y`) or, as in older
/// Falco configs, a bare number of milliseconds.
pub fn parse_interval(s: &str) -> Option<Duration> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if let Ok(ms) = s.parse::<u64>() {
        return Some(Duration::from_millis(ms));
    }
    let mut total = 0u64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let n: u64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let ms_per = match &rest[..unit_len] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            "w" => 7 * 86_400_000,
            "y" => 365 * 86_400_000,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total = total.checked_add(n.checked_mul(ms_per)?)?;
    }
    Some(Duration::from_millis(total))
}

/// Falco's `buf_size_preset` table: bytes of one syscall buffer (index 0 is reserved).
pub const BUF_SIZE_PRESETS: [u64; 11] = [
    0,
    1 << 20,
    1 << 21,
    1 << 22,
    1 << 23,
    1 << 24,
    1 << 25,
    1 << 26,
    1 << 27,
    1 << 28,
    1 << 29,
];

/// Ring sizes `(main, state)` in bytes for Saker's two rings, from Falco's preset and
/// `cpus_for_each_buffer` on `online_cpus` CPUs. Falco allocates one buffer of the preset's
/// size per `cpus_for_each_buffer` CPUs (0: one for all); Saker shares that memory budget
/// between its main ring and its state ring (clone/exec/exit), 4:1, in powers of two.
pub fn buffer_sizes(preset: u32, cpus_for_each_buffer: u32, online_cpus: u32) -> (u32, u32) {
    let per = BUF_SIZE_PRESETS[(preset as usize).clamp(1, 10)];
    let cpus = u64::from(online_cpus.max(1));
    let group = match u64::from(cpus_for_each_buffer) {
        0 => cpus,
        g => g.min(cpus),
    };
    let buffers = cpus.div_ceil(group);
    let total = (per * buffers).min(1 << 30);
    let main = total.next_power_of_two().min(1 << 30);
    let state = (total / 4).next_power_of_two().max(1 << 20);
    (main as u32, state as u32)
}

/// Checks of the Falco keys whose values Falco also refuses.
pub(crate) fn validate(c: &Config) -> Result<(), ConfigError> {
    match c.engine.kind.as_str() {
        // No syscall source: only the k8s_audit input runs (the Falco chart's audit Deployment).
        "modern_ebpf" | "nodriver" => {}
        "replay" => {
            if c.engine.replay.capture_file.is_empty() {
                return Err(bad(
                    "engine.replay.capture_file",
                    "engine.kind is 'replay' but no engine.replay.capture_file is set".into(),
                ));
            }
        }
        "kmod" | "ebpf" | "gvisor" => {
            return Err(bad(
                "engine.kind",
                format!(
                    "'{}' is not supported: Saker has only its own eBPF probe; use 'modern_ebpf' (or 'replay')",
                    c.engine.kind
                ),
            ))
        }
        k => {
            return Err(bad(
                "engine.kind",
                format!("'{k}' is not a valid kind (modern_ebpf, replay, nodriver)"),
            ))
        }
    }
    if c.engine.workers > 2 {
        return Err(bad(
            "engine.workers",
            format!(
                "must be 0 (auto), 1 (one thread) or 2 (decoding on its own thread), not {}",
                c.engine.workers
            ),
        ));
    }
    if !matches!(c.capture.mode.as_str(), "rules" | "all_rules") {
        return Err(bad(
            "capture.mode",
            format!(
                "'{}' is not a valid mode (rules, all_rules)",
                c.capture.mode
            ),
        ));
    }
    if let Some(scope) = &c.capture.scope {
        if !matches!(scope.as_str(), "host" | "container" | "process_tree") {
            return Err(bad(
                "capture.scope",
                format!("'{scope}' is not a valid scope (host, container, process_tree)"),
            ));
        }
    }
    let p = c.engine.modern_ebpf.buf_size_preset;
    if !(1..=10).contains(&p) {
        return Err(bad(
            "engine.modern_ebpf.buf_size_preset",
            format!("must be between 1 and 10, not {p}"),
        ));
    }
    if LogLevel::parse(&c.log_level).is_none() {
        return Err(bad(
            "log_level",
            format!(
                "Unknown log level '{}'; expected one of emergency, alert, critical, error, warning, notice, info, debug",
                c.log_level
            ),
        ));
    }
    if LogLevel::parse(&c.libs_logger.severity).is_none() {
        return Err(bad(
            "libs_logger.severity",
            format!(
                "Unknown severity '{}'; expected one of fatal, critical, error, warning, notice, info, debug, trace",
                c.libs_logger.severity
            ),
        ));
    }
    match parse_interval(&c.metrics.interval) {
        Some(d) if d >= Duration::from_millis(100) => {}
        Some(_) => {
            return Err(bad(
                "metrics.interval",
                format!("'{}' is shorter than 100ms", c.metrics.interval),
            ))
        }
        None => {
            return Err(bad(
                "metrics.interval",
                format!(
                    "'{}' is not a duration (e.g. 15s, 1h, 1h30m; units ms s m h d w y)",
                    c.metrics.interval
                ),
            ))
        }
    }
    if c.webserver.ssl_enabled && c.webserver.enabled && c.webserver.ssl_certificate.is_empty() {
        return Err(bad(
            "webserver.ssl_certificate",
            "webserver.ssl_enabled is true but no ssl_certificate is set".into(),
        ));
    }
    for b in &c.base_syscalls.custom_set {
        let name = b.strip_prefix('!').unwrap_or(b);
        if name.is_empty()
            || !name
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
        {
            return Err(bad(
                "base_syscalls.custom_set",
                format!("'{b}' is not a syscall name (or '!name')"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intervals() {
        assert_eq!(parse_interval("5000"), Some(Duration::from_millis(5000)));
        assert_eq!(parse_interval("15s"), Some(Duration::from_secs(15)));
        assert_eq!(parse_interval("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_interval("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_interval("1w"), Some(Duration::from_secs(7 * 86400)));
        assert_eq!(parse_interval("1x"), None);
        assert_eq!(parse_interval("h"), None);
        assert_eq!(parse_interval(""), None);
    }

    #[test]
    fn presets_follow_falco_memory_budget() {
        // Falco's default (preset 4 = 8 MiB, one buffer per 2 CPUs) on 2 CPUs: one 8 MiB buffer.
        assert_eq!(buffer_sizes(4, 2, 2), (8 << 20, 2 << 20));
        // 8 CPUs: four buffers, 32 MiB.
        assert_eq!(buffer_sizes(4, 2, 8), (32 << 20, 8 << 20));
        // 0 = one buffer for all CPUs.
        assert_eq!(buffer_sizes(4, 0, 64), (8 << 20, 2 << 20));
        // Three buffers round up to a power of two.
        assert_eq!(buffer_sizes(1, 1, 3), (4 << 20, 1 << 20));
        // A group larger than the machine is one buffer, as Falco corrects it.
        assert_eq!(buffer_sizes(6, 16, 2), (32 << 20, 8 << 20));
        assert_eq!(buffer_sizes(10, 1, 512).0, 1 << 30);
    }

    #[test]
    fn log_levels() {
        assert_eq!(LogLevel::parse("notice"), Some(LogLevel::Notice));
        assert!(LogLevel::parse("warning") < LogLevel::parse("info"));
        assert_eq!(LogLevel::parse("WARN"), None);
    }
}
