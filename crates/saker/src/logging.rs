//! Saker's operational log (not alerts): every `tracing` event of every crate goes to stderr
//! and/or syslog, filtered by falco.yaml's `log_level` (`libs_logger` for the probe, state and
//! container crates, Falco's "libs"). Settings change at runtime (config reload) without
//! reinstalling the subscriber.
//!
//! Lines read `saker: <message>` at info, `saker: warning: <message>` and so on for the other
//! levels, with the event's fields after the message as `key=value`.

use std::fmt::Write as _;
use std::io::Write as _;
use std::os::unix::net::UnixDatagram;
use std::sync::{Mutex, OnceLock, RwLock};

use saker_config::{Config, LogLevel};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

#[derive(Debug, Clone)]
struct Settings {
    level: Level,
    /// `None`: the libs' events are off (`libs_logger.enabled: false`).
    libs_level: Option<Level>,
    stderr: bool,
    syslog: bool,
}

static SETTINGS: RwLock<Settings> = RwLock::new(Settings {
    level: Level::INFO,
    libs_level: Some(Level::INFO),
    stderr: true,
    syslog: false,
});

/// Crates that play the part of Falco's libs (libscap/libsinsp) for `libs_logger`.
const LIBS: &[&str] = &[
    "saker_probe",
    "saker_state",
    "saker_container",
    "saker_capture",
    "saker_event",
];

/// Falco's level → the most verbose tracing level it lets through. `notice` and `info` both
/// map to INFO (tracing has no notice); every level from `error` up maps to ERROR.
fn tracing_level(l: LogLevel) -> Level {
    match l {
        LogLevel::Emergency | LogLevel::Alert | LogLevel::Critical | LogLevel::Error => {
            Level::ERROR
        }
        LogLevel::Warning => Level::WARN,
        LogLevel::Notice | LogLevel::Info => Level::INFO,
        LogLevel::Debug => Level::DEBUG,
    }
}

/// Installs the subscriber with defaults (info, stderr); call once at start.
pub fn init() {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        let sub = tracing_subscriber::registry().with(SakerLayer);
        // Fails only if a subscriber is already set (tests embedding the binary's modules).
        let _ = tracing::subscriber::set_global_default(sub);
    });
}

/// Applies `log_level`, `log_stderr`, `log_syslog` and `libs_logger`.
pub fn configure(cfg: &Config) {
    let level = LogLevel::parse(&cfg.log_level).map_or(Level::INFO, tracing_level);
    let libs_level = cfg
        .libs_logger
        .enabled
        .then(|| LogLevel::parse(&cfg.libs_logger.severity).map_or(Level::INFO, tracing_level));
    let mut s = SETTINGS.write().unwrap_or_else(|e| e.into_inner());
    *s = Settings {
        level: if verbose() { Level::DEBUG } else { level },
        libs_level,
        stderr: cfg.log_stderr,
        syslog: cfg.log_syslog,
    };
    tracing::callsite::rebuild_interest_cache();
}

static VERBOSE: OnceLock<bool> = OnceLock::new();

/// `-v`: debug level whatever the config says.
pub fn set_verbose(v: bool) {
    let _ = VERBOSE.set(v);
    if v {
        SETTINGS.write().unwrap_or_else(|e| e.into_inner()).level = Level::DEBUG;
        tracing::callsite::rebuild_interest_cache();
    }
}

fn verbose() -> bool {
    VERBOSE.get().copied().unwrap_or(false)
}

fn is_libs(target: &str) -> bool {
    LIBS.iter().any(|l| {
        target
            .strip_prefix(l)
            .is_some_and(|r| r.is_empty() || r.starts_with("::"))
    })
}

fn allowed(meta: &Metadata<'_>) -> bool {
    let s = SETTINGS.read().unwrap_or_else(|e| e.into_inner());
    if !s.stderr && !s.syslog {
        return false;
    }
    let max = if is_libs(meta.target()) {
        match s.libs_level {
            Some(l) => l,
            None => return false,
        }
    } else {
        s.level
    };
    // tracing orders levels by verbosity: TRACE > DEBUG > INFO > WARN > ERROR.
    *meta.level() <= max
}

struct SakerLayer;

impl<S: Subscriber> Layer<S> for SakerLayer {
    fn register_callsite(
        &self,
        _meta: &'static Metadata<'static>,
    ) -> tracing::subscriber::Interest {
        // Settings change at runtime: ask `enabled` every time.
        tracing::subscriber::Interest::sometimes()
    }

    fn enabled(&self, meta: &Metadata<'_>, _ctx: Context<'_, S>) -> bool {
        allowed(meta)
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        if !allowed(meta) {
            return;
        }
        let mut v = Collect::default();
        event.record(&mut v);
        let text = v.render();
        let (stderr, syslog) = {
            let s = SETTINGS.read().unwrap_or_else(|e| e.into_inner());
            (s.stderr, s.syslog)
        };
        if stderr {
            let prefix = match *meta.level() {
                Level::ERROR => "error: ",
                Level::WARN => "warning: ",
                Level::INFO => "",
                _ => "debug: ",
            };
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "saker: {prefix}{text}");
        }
        if syslog {
            to_syslog(*meta.level(), &text);
        }
    }
}

#[derive(Default)]
struct Collect {
    message: String,
    fields: String,
}

impl Collect {
    fn render(self) -> String {
        if self.fields.is_empty() {
            self.message
        } else if self.message.is_empty() {
            self.fields.trim_start().to_string()
        } else {
            format!("{}{}", self.message, self.fields)
        }
    }
}

impl Visit for Collect {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={}", field.name(), value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

/// One RFC 3164 datagram to /dev/log (facility user), as Falco's `syslog()` calls do. A
/// missing daemon loses the line silently: stderr is the log of record.
fn to_syslog(level: Level, text: &str) {
    static SOCK: Mutex<Option<UnixDatagram>> = Mutex::new(None);
    let severity = match level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let msg =
        saker_outputs::sinks::syslog::rfc3164(1, severity, now, "saker", std::process::id(), text);
    let mut g = SOCK.lock().unwrap_or_else(|e| e.into_inner());
    if g.is_none() {
        let Ok(s) = UnixDatagram::unbound() else {
            return;
        };
        if s.connect(syslog_path()).is_err() {
            return;
        }
        let _ = s.set_nonblocking(true);
        *g = Some(s);
    }
    if let Some(s) = g.as_ref() {
        if s.send(msg.as_bytes()).is_err() {
            // The daemon may have restarted: reconnect next time.
            *g = None;
        }
    }
}

/// `/dev/log`, or `SAKER_LOG_SYSLOG_PATH` (tests point it at their own socket).
fn syslog_path() -> std::path::PathBuf {
    std::env::var_os("SAKER_LOG_SYSLOG_PATH")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| "/dev/log".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libs_targets() {
        assert!(is_libs("saker_probe"));
        assert!(is_libs("saker_probe::loader"));
        assert!(!is_libs("saker_probex"));
        assert!(!is_libs("saker_outputs::hub"));
    }

    #[test]
    fn falco_levels_map_to_tracing() {
        assert_eq!(tracing_level(LogLevel::Critical), Level::ERROR);
        assert_eq!(tracing_level(LogLevel::Notice), Level::INFO);
        assert_eq!(tracing_level(LogLevel::Debug), Level::DEBUG);
    }
}
