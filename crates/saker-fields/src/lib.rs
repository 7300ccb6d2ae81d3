//! The field vocabulary of Saker.
//!
//! Rules compile field names (`proc.name`, `fd.sip`, `proc.aname[2]`) against the
//! [`registry`], and evaluate them through [`EventView`], which the state crate
//! implements over a real event and its process/fd tables. Keeping this crate
//! tiny and dependency-free lets both sides grow independently.

use std::borrow::Cow;
use std::net::IpAddr;

mod registry;
pub use registry::FIELDS;

/// Field flags (bit set in [`FieldInfo::flags`]).
pub mod flags {
    /// Transformers (`tolower(...)`) are rejected on this field.
    pub const NO_TRANSFORMER: u32 = 1 << 0;
    /// The field cannot be the right-hand side of a field-to-field comparison.
    pub const NO_RHS: u32 = 1 << 1;
    /// Without an index the field yields every strict ancestor; a comparison is
    /// true if *any* ancestor satisfies it, including `!=`.
    pub const ANY_ANCESTOR: u32 = 1 << 2;
    /// The field yields both sides of a connection: `=`/`in` match either side,
    /// `!=` is true only when neither side matches.
    pub const ANY_SIDE: u32 = 1 << 3;
    /// The field is list-valued.
    pub const LIST: u32 = 1 << 4;
    /// With [`LIST`]: an index selects elements but the field stays a list
    /// (k8s audit fields: `ka.req.pod.containers.image[0]` is still `in`-only).
    pub const KEEP_LIST: u32 = 1 << 5;
}

/// Event source names (rules' `source` key).
pub mod source {
    pub const SYSCALL: &str = "syscall";
    pub const K8S_AUDIT: &str = "k8s_audit";
}

/// Generic `evt.*` fields that plugin sources (k8s_audit) also serve.
const PLUGIN_EVT_FIELDS: &[&str] = &[
    "evt.num",
    "evt.time",
    "evt.time.s",
    "evt.time.iso8601",
    "evt.datetime",
    "evt.datetime.s",
    "evt.rawtime",
    "evt.rawtime.s",
    "evt.rawtime.ns",
    "evt.reltime",
    "evt.reltime.s",
    "evt.reltime.ns",
    "evt.outputtime",
    "evt.source",
    "evt.hostname",
    "evt.is_async",
    "evt.asynctype",
    "evt.pluginname",
    "evt.plugininfo",
];

impl FieldInfo {
    /// Whether rules of `source` may use this field. `ka.*`/`json.*`/`jevt.*` belong to
    /// k8s_audit only; k8s_audit serves those plus a few generic `evt.*` fields. Unknown
    /// sources are treated as syscall.
    pub fn in_source(&self, source: &str) -> bool {
        let audit_only = matches!(self.class(), "ka" | "json" | "jevt");
        if source == source::K8S_AUDIT {
            audit_only || PLUGIN_EVT_FIELDS.contains(&self.name)
        } else {
            !audit_only
        }
    }
}

/// Value types, following libsinsp's families closely enough for operator checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FieldType {
    /// Text (CHARBUF, FSPATH, ...). Compared bytewise.
    Str,
    /// Raw bytes (BYTEBUF).
    Buf,
    U64,
    U32,
    I64,
    Bool,
    Ip,
    IpNet,
    Port,
    /// Nanoseconds since the epoch.
    AbsTime,
    /// Nanoseconds.
    RelTime,
}

impl FieldType {
    pub fn is_numeric(self) -> bool {
        matches!(
            self,
            FieldType::U64
                | FieldType::U32
                | FieldType::I64
                | FieldType::Port
                | FieldType::AbsTime
                | FieldType::RelTime
        )
    }

    /// The name used by `list-fields` and error messages (libsinsp spelling).
    pub fn name(self) -> &'static str {
        match self {
            FieldType::Str => "CHARBUF",
            FieldType::Buf => "BYTEBUF",
            FieldType::U64 => "UINT64",
            FieldType::U32 => "UINT32",
            FieldType::I64 => "INT64",
            FieldType::Bool => "BOOL",
            FieldType::Ip => "IPADDR",
            FieldType::IpNet => "IPNET",
            FieldType::Port => "PORT",
            FieldType::AbsTime => "ABSTIME",
            FieldType::RelTime => "RELTIME",
        }
    }
}

/// Which argument a field accepts in `field[arg]` (or `evt.arg.NAME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgKind {
    None,
    IndexOptional,
    IndexRequired,
    KeyOptional,
    KeyRequired,
    IndexOrKeyRequired,
}

#[derive(Debug)]
pub struct FieldInfo {
    pub name: &'static str,
    pub ty: FieldType,
    pub arg: ArgKind,
    pub flags: u32,
    pub desc: &'static str,
}

impl FieldInfo {
    pub fn has(&self, flag: u32) -> bool {
        self.flags & flag != 0
    }
    /// The field class, i.e. the part before the first dot (`proc`, `fd`, ...).
    pub fn class(&self) -> &'static str {
        self.name.split('.').next().unwrap_or(self.name)
    }
}

/// Index of a field in [`FIELDS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldId(pub u16);

impl FieldId {
    pub fn info(self) -> &'static FieldInfo {
        &FIELDS[self.0 as usize]
    }
    pub fn name(self) -> &'static str {
        self.info().name
    }
}

/// Looks a field up by its exact name (without `[arg]`).
pub fn lookup(name: &str) -> Option<FieldId> {
    use std::collections::HashMap;
    use std::sync::OnceLock;
    static INDEX: OnceLock<HashMap<&'static str, FieldId>> = OnceLock::new();
    INDEX
        .get_or_init(|| {
            FIELDS
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name, FieldId(i as u16)))
                .collect()
        })
        .get(name)
        .copied()
}

/// A parsed field argument.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FieldArg {
    None,
    Index(u32),
    Key(String),
}

/// A resolved field reference, as handed to [`EventView::extract`].
/// `evt.arg.NAME` is `{ id: evt.arg, arg: Key(NAME) }`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FieldRef {
    pub id: FieldId,
    pub arg: FieldArg,
}

impl FieldRef {
    pub fn new(id: FieldId, arg: FieldArg) -> Self {
        FieldRef { id, arg }
    }
    pub fn info(&self) -> &'static FieldInfo {
        self.id.info()
    }
}

/// An extracted value. Text is bytes: paths and command lines need not be UTF-8.
#[derive(Debug, Clone, PartialEq)]
pub enum Value<'a> {
    Str(Cow<'a, [u8]>),
    Buf(Cow<'a, [u8]>),
    U64(u64),
    I64(i64),
    Bool(bool),
    Ip(IpAddr),
    /// Address and prefix length.
    Net(IpAddr, u8),
    /// Multi-valued fields: ancestors (`proc.aname`), both connection sides (`fd.ip`), lists.
    List(Vec<Value<'a>>),
}

impl<'a> Value<'a> {
    pub fn str(s: &'a str) -> Self {
        Value::Str(Cow::Borrowed(s.as_bytes()))
    }
    pub fn string(s: String) -> Value<'static> {
        Value::Str(Cow::Owned(s.into_bytes()))
    }
    pub fn into_owned(self) -> Value<'static> {
        match self {
            Value::Str(s) => Value::Str(Cow::Owned(s.into_owned())),
            Value::Buf(b) => Value::Buf(Cow::Owned(b.into_owned())),
            Value::U64(v) => Value::U64(v),
            Value::I64(v) => Value::I64(v),
            Value::Bool(v) => Value::Bool(v),
            Value::Ip(v) => Value::Ip(v),
            Value::Net(a, p) => Value::Net(a, p),
            Value::List(l) => Value::List(l.into_iter().map(Value::into_owned).collect()),
        }
    }
}

/// What rules need from an event: its type (for rule indexing) and field values.
///
/// `extract` returns `None` for a *missing* value (§3.10 of the rules spec):
/// every comparison on it is false and outputs print `<NA>`.
pub trait EventView {
    /// The event type id (Falco/PPM numbering) for rule indexing.
    fn event_type(&self) -> u16;
    fn extract(&self, field: &FieldRef) -> Option<Value<'_>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_names_are_unique_and_found() {
        let mut seen = std::collections::HashSet::new();
        for f in FIELDS {
            assert!(seen.insert(f.name), "duplicate field {}", f.name);
            assert_eq!(lookup(f.name).unwrap().name(), f.name);
        }
        assert!(lookup("proc.namex").is_none());
    }
}
