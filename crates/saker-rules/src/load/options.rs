//! Engine options: priority threshold, `rule_matching`, rule selections and
//! `append_output` (§1.14, §4.3, §7).

use crate::Priority;

/// `rule_matching` (§7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RuleMatching {
    #[default]
    First,
    All,
}

impl RuleMatching {
    /// Case-insensitive `first` / `all`.
    pub fn parse(s: &str) -> Option<RuleMatching> {
        match s.to_ascii_lowercase().as_str() {
            "first" => Some(RuleMatching::First),
            "all" => Some(RuleMatching::All),
            _ => None,
        }
    }
}

/// One `rules:` selection of `falco.yaml` (or the equivalent CLI flags), applied in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Selection {
    /// Rule name pattern with `*` wildcards.
    EnableRule(String),
    DisableRule(String),
    EnableTag(String),
    DisableTag(String),
}

/// How rules are loaded and selected.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// Rules less severe than this are not added to the ruleset (`priority` key).
    pub min_priority: Priority,
    pub rule_matching: RuleMatching,
    pub selections: Vec<Selection>,
    /// Append Falco's suggested container fields to every syscall rule output (§4.3).
    pub suggested_output: bool,
    /// Extra formats appended to every output after `append_output` (`-p`).
    pub extra_output: Vec<String>,
    /// `append_output` entries of `falco.yaml`, in config order (§4.3).
    pub append_output: Vec<AppendOutput>,
    /// Event sources whose rules compile; others warn `LOAD_UNKNOWN_SOURCE` and are skipped.
    pub sources: Vec<String>,
    /// Plugins considered loaded for `required_plugin_versions` (name, version).
    /// Saker provides the container plugin's fields natively.
    pub plugins: Vec<(String, String)>,
    /// `static_fields`: `static.<name>` string fields with a fixed value.
    pub static_fields: std::collections::BTreeMap<String, String>,
}

/// Defaults follow the shipped `falco.yaml` (suggested output on).
impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            min_priority: Priority::Debug,
            rule_matching: RuleMatching::First,
            selections: Vec::new(),
            suggested_output: true,
            extra_output: Vec::new(),
            append_output: Vec::new(),
            sources: vec!["syscall".into(), "k8s_audit".into()],
            plugins: builtin_plugins(),
            static_fields: Default::default(),
        }
    }
}

/// Plugins Saker provides natively, with the upstream version whose behaviour it implements:
/// the container plugin's fields, and the k8s_audit source (k8saudit's fields and inputs,
/// k8saudit-eks's CloudWatch polling, the json plugin's `json.*`/`jevt.*`). The cloud
/// variants (aks, gke) feed the same source with the same fields, so rules requiring them
/// are satisfied too.
pub fn builtin_plugins() -> Vec<(String, String)> {
    [
        ("container", "0.7.0"),
        ("k8saudit", "0.18.0"),
        ("k8saudit-eks", "0.12.0"),
        ("k8saudit-aks", "0.6.0"),
        ("k8saudit-gke", "0.9.0"),
        ("json", "0.7.4"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect()
}

/// The suffix `suggested_output: true` appends with the container plugin (§4.3).
pub const SUGGESTED_OUTPUT: &str = "container_id=%container.id container_name=%container.name container_image_repository=%container.image.repository container_image_tag=%container.image.tag k8s_pod_name=%k8s.pod.name k8s_ns_name=%k8s.ns.name";

/// One `append_output` entry: what it matches and what it adds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppendOutput {
    /// `match.source`: the rule's source must be equal.
    pub match_source: Option<String>,
    /// `match.tags`: the rule must carry all of them.
    pub match_tags: Vec<String>,
    /// `match.rule`: exact rule name.
    pub match_rule: Option<String>,
    /// Appended to the output (after one space).
    pub extra_output: Option<String>,
    /// Extra `output_fields` keys (JSON only; the message is unchanged).
    pub extra_fields: Vec<ExtraField>,
    /// Append the suggested container fields.
    pub suggested_output: bool,
}

impl AppendOutput {
    pub fn matches(&self, rule: &str, source: &str, tags: &[String]) -> bool {
        self.match_source.as_deref().is_none_or(|s| s == source)
            && self.match_rule.as_deref().is_none_or(|r| r == rule)
            && self.match_tags.iter().all(|t| tags.contains(t))
    }
}

/// An `extra_fields` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraField {
    /// `- key: "format"`: a text value rendered from a format (`<NA>` for missing).
    Format { key: String, format: String },
    /// `- field.name`: the typed value of one field.
    Field(String),
}
