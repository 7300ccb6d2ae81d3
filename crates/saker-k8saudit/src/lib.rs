//! The `k8s_audit` event source, compatible with Falco's k8saudit, k8saudit-eks and json
//! plugins: the audit event model, the `ka.*`/`json.*`/`jevt.*` fields, the payload grammar
//! shared by every input, and the inputs themselves (files, webhook, EKS CloudWatch Logs).

pub mod eks;
pub mod event;
pub mod extract;
pub mod payload;
pub mod reader;
pub mod webhook;

pub use event::{AuditEvent, AuditView};
pub use payload::{parse_payload, Parsed, DEFAULT_MAX_EVENT_SIZE};

/// The source name rules carry.
pub const SOURCE: &str = saker_fields::source::K8S_AUDIT;
/// `evt.pluginname` of the events (the upstream plugin whose fields Saker implements).
pub const PLUGIN_NAME: &str = "k8saudit";
