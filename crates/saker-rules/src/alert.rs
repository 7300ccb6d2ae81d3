//! What a matching rule produces, handed to the outputs stage.

/// Lives in saker-types because the configuration names priorities too.
pub use saker_types::Priority;

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
