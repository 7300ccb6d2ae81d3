//! One audit event: the parsed JSON (kept whole, fields read it lazily) and its compact text.

use std::sync::OnceLock;

use serde_json::Value as Json;

/// A Kubernetes audit `Event`.
#[derive(Debug)]
pub struct AuditEvent {
    /// The event object.
    pub json: Json,
    /// The event re-serialized compactly in its original key order (`evt.plugininfo`).
    pub payload: String,
    /// `stageTimestamp`, ns since the epoch.
    pub time_ns: u64,
    /// `evt.num`, set by whoever numbers the stream.
    pub num: u64,
    /// Lazily computed views, shared by every rule that reads them.
    pub(crate) pretty: OnceLock<String>,
    pub(crate) query: OnceLock<Option<Vec<(String, String)>>>,
}

impl AuditEvent {
    pub fn new(json: Json, payload: String, time_ns: u64) -> AuditEvent {
        AuditEvent {
            json,
            payload,
            time_ns,
            num: 0,
            pretty: OnceLock::new(),
            query: OnceLock::new(),
        }
    }

    /// The view rules evaluate; `hostname` is `evt.hostname`, `first_ns` the stream's first
    /// event time (for `evt.reltime`).
    pub fn view<'a>(&'a self, hostname: &'a str, first_ns: u64) -> AuditView<'a> {
        AuditView {
            ev: self,
            hostname,
            first_ns,
        }
    }

    /// `auditID`, when present (for log lines).
    pub fn audit_id(&self) -> Option<&str> {
        self.json.get("auditID").and_then(Json::as_str)
    }
}

/// An [`AuditEvent`] as the rules engine sees it.
pub struct AuditView<'a> {
    pub ev: &'a AuditEvent,
    pub hostname: &'a str,
    pub first_ns: u64,
}

impl saker_fields::EventView for AuditView<'_> {
    /// Plugin events have no syscall type; rules of this source are not type-indexed.
    fn event_type(&self) -> u16 {
        0
    }

    fn extract(&self, field: &saker_fields::FieldRef) -> Option<saker_fields::Value<'_>> {
        crate::extract::extract(self, field)
    }
}
