//! What a matching rule produces, handed to the outputs stage.

use std::fmt;

/// Rule priorities, most severe first (Falco's numbering: Emergency = 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    Emergency = 0,
    Alert = 1,
    Critical = 2,
    Error = 3,
    Warning = 4,
    Notice = 5,
    Informational = 6,
    Debug = 7,
}

impl Priority {
    pub const ALL: [Priority; 8] = [
        Priority::Emergency,
        Priority::Alert,
        Priority::Critical,
        Priority::Error,
        Priority::Warning,
        Priority::Notice,
        Priority::Informational,
        Priority::Debug,
    ];

    /// Parses a priority as Falco does: case-insensitive, with `info` as an alias.
    pub fn parse(s: &str) -> Option<Priority> {
        let l = s.trim().to_ascii_lowercase();
        Some(match l.as_str() {
            "emergency" => Priority::Emergency,
            "alert" => Priority::Alert,
            "critical" => Priority::Critical,
            "error" => Priority::Error,
            "warning" => Priority::Warning,
            "notice" => Priority::Notice,
            "informational" | "info" => Priority::Informational,
            "debug" => Priority::Debug,
            _ => return None,
        })
    }

    /// The spelling used in alerts (`Warning`, `Informational`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Priority::Emergency => "Emergency",
            Priority::Alert => "Alert",
            Priority::Critical => "Critical",
            Priority::Error => "Error",
            Priority::Warning => "Warning",
            Priority::Notice => "Notice",
            Priority::Informational => "Informational",
            Priority::Debug => "Debug",
        }
    }

    /// `priority: warning` in the config keeps this priority and everything more severe.
    pub fn passes(self, threshold: Priority) -> bool {
        self <= threshold
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rendered alert. Field values are already rendered to text (or `None`
/// for `<NA>`, which JSON shows as `null`), so sinks never touch events.
#[derive(Debug, Clone, PartialEq)]
pub struct Alert {
    /// Event time, nanoseconds since the epoch.
    pub time_ns: u64,
    pub rule: String,
    pub priority: Priority,
    /// `syscall`, `k8s_audit`, ...
    pub source: String,
    pub hostname: String,
    /// The full text line: `<time>: <Priority> <rendered output>`, as Falco prints it.
    pub output: String,
    /// Fields referenced by the output, in order of first appearance, with rendered values.
    pub output_fields: Vec<(String, OutputValue)>,
    pub tags: Vec<String>,
}

/// A value in `output_fields`, typed the way Falco's JSON types it.
#[derive(Debug, Clone, PartialEq)]
pub enum OutputValue {
    Null,
    Str(String),
    U64(u64),
    I64(i64),
    Bool(bool),
    /// A list field (`ka.user.groups`): a JSON array of its rendered elements.
    List(Vec<String>),
}
