//! Falco's advisory rules-file schema check (`falco --rule-schema`), run on
//! every YAML document it loads. The result only feeds `schema_valid` and
//! `schema_warnings` of the validation result; it never fails a load.
//!
//! Falco checks the documents with a JSON-schema library in its weak-typing
//! mode (a YAML scalar passes as a string; as a boolean only when it is
//! `true`/`false`; as an integer when it parses whole). This module checks the
//! same constraints in the same order and words each problem the same way:
//! `failed for <path>: <reason>`, innermost problem first.

use super::yaml::{Node, NodeKind};

const TYPE: &str = "Value type not permitted by 'type' constraint.";

/// The status lines for one document: `["ok"]`, or one line per problem.
pub fn validate(doc: &Node) -> Vec<String> {
    let mut v = Validator { errs: Vec::new() };
    if v.root(doc, "<root>") {
        vec!["ok".into()]
    } else {
        v.errs
    }
}

/// A property of an object schema.
#[derive(Clone, Copy)]
enum S {
    Str,
    Bool,
    Int,
    Priority,
    Override,
    OverriddenItem,
    ListItems,
    Tags,
    Exceptions,
    PluginVersions,
    Alternatives,
    /// `{}`: anything.
    Any,
}

/// The properties of each object schema, in the library's (sorted) order.
const FALCO_RULE: &[(&str, S)] = &[
    ("append", S::Bool),
    ("capture", S::Bool),
    ("capture_duration", S::Int),
    ("condition", S::Str),
    ("desc", S::Str),
    ("enabled", S::Bool),
    ("exceptions", S::Exceptions),
    ("items", S::ListItems),
    ("list", S::Str),
    ("macro", S::Str),
    ("output", S::Str),
    ("override", S::Override),
    ("priority", S::Priority),
    ("required_engine_version", S::Str),
    ("required_plugin_versions", S::PluginVersions),
    ("rule", S::Str),
    ("skip-if-unknown-filter", S::Bool),
    ("source", S::Str),
    ("tags", S::Tags),
    ("warn_evttypes", S::Bool),
];
const EXCEPTION: &[(&str, S)] = &[
    ("comps", S::Any),
    ("fields", S::Any),
    ("name", S::Str),
    ("values", S::Any),
];
const OVERRIDE: &[(&str, S)] = &[
    ("capture", S::OverriddenItem),
    ("capture_duration", S::OverriddenItem),
    ("condition", S::OverriddenItem),
    ("desc", S::OverriddenItem),
    ("enabled", S::OverriddenItem),
    ("exceptions", S::OverriddenItem),
    ("items", S::OverriddenItem),
    ("output", S::OverriddenItem),
    ("priority", S::OverriddenItem),
    ("skip-if-unknown-filter", S::OverriddenItem),
    ("tags", S::OverriddenItem),
    ("warn_evttypes", S::OverriddenItem),
];
const PLUGIN_VERSION: &[(&str, S)] = &[
    ("alternatives", S::Alternatives),
    ("name", S::Str),
    ("version", S::Str),
];
const ALTERNATIVE: &[(&str, S)] = &[("name", S::Str), ("version", S::Str)];

const PRIORITIES: &[&str] = &[
    "EMERGENCY",
    "ALERT",
    "CRITICAL",
    "ERROR",
    "WARNING",
    "NOTICE",
    "INFO",
    "INFORMATIONAL",
    "DEBUG",
];

struct Validator {
    errs: Vec<String>,
}

fn is_scalar(n: &Node) -> bool {
    matches!(n.kind, NodeKind::Scalar(_))
}

fn is_seq(n: &Node) -> bool {
    matches!(n.kind, NodeKind::Seq(_))
}

fn is_map(n: &Node) -> bool {
    matches!(n.kind, NodeKind::Map(_))
}

/// Weak typing: a mapping, or an empty sequence.
fn maybe_object(n: &Node) -> bool {
    match &n.kind {
        NodeKind::Map(_) => true,
        NodeKind::Seq(s) => s.is_empty(),
        _ => false,
    }
}

/// Weak typing: `true` or `false` written as a scalar.
fn maybe_bool(n: &Node) -> bool {
    matches!(&n.kind, NodeKind::Scalar(s) if s == "true" || s == "false")
}

/// Weak typing: a scalar that reads whole as a signed 64-bit integer
/// (leading blanks and a sign allowed, nothing after the digits).
fn maybe_integer(n: &Node) -> bool {
    let NodeKind::Scalar(s) = &n.kind else {
        return false;
    };
    let t = s.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let digits = t.strip_prefix(['+', '-']).unwrap_or(t);
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && t.parse::<i64>().is_ok()
}

/// The key as the YAML library gives it as a string.
fn key_text(k: &Node) -> String {
    match &k.kind {
        NodeKind::Scalar(s) => s.clone(),
        NodeKind::Null => "null".into(),
        _ => String::new(),
    }
}

impl Validator {
    fn push(&mut self, ctx: &str, desc: &str) {
        self.errs.push(format!("failed for {ctx}: {desc}"));
    }

    /// `{type: array, items: FalcoRule}`.
    fn root(&mut self, n: &Node, ctx: &str) -> bool {
        let mut ok = true;
        if !is_seq(n) {
            self.push(ctx, TYPE);
            ok = false;
        }
        ok &= self.items(n, ctx, |v, it, c| v.object(it, c, FALCO_RULE, &[], 0));
        ok
    }

    /// Every element of an array against `each`.
    fn items(
        &mut self,
        n: &Node,
        ctx: &str,
        each: impl Fn(&mut Self, &Node, &str) -> bool,
    ) -> bool {
        let NodeKind::Seq(items) = &n.kind else {
            return true;
        };
        let mut ok = true;
        for (i, it) in items.iter().enumerate() {
            if !each(self, it, &format!("{ctx}[{i}]")) {
                self.push(ctx, &format!("Failed to validate item #{i} in array."));
                ok = false;
            }
        }
        ok
    }

    /// `{type: object, minProperties, properties, additionalProperties: false, required}`.
    fn object(
        &mut self,
        n: &Node,
        ctx: &str,
        props: &[(&str, S)],
        required: &[&str],
        min_props: usize,
    ) -> bool {
        let mut ok = true;
        if !is_map(n) {
            self.push(ctx, TYPE);
            ok = false;
        }
        let entries: &[(Node, Node)] = match &n.kind {
            NodeKind::Map(e) => e,
            _ => &[],
        };
        if maybe_object(n) && entries.len() < min_props {
            self.push(
                ctx,
                &format!("Object should have no fewer than {min_props} properties."),
            );
            ok = false;
        }
        if maybe_object(n) {
            let mut matched = Vec::new();
            for (name, schema) in props {
                let Some((_, v)) = entries.iter().find(|(k, _)| key_text(k) == *name) else {
                    continue;
                };
                matched.push(*name);
                if !self.value(v, &format!("{ctx}[{name}]"), *schema) {
                    self.push(
                        ctx,
                        &format!(
                            "Failed to validate against schema associated with property name '{name}'."
                        ),
                    );
                    ok = false;
                }
            }
            if matched.len() != entries.len() {
                let unwanted = entries
                    .iter()
                    .map(|(k, _)| key_text(k))
                    .find(|k| !matched.contains(&k.as_str()))
                    .unwrap_or_default();
                self.push(ctx, &format!("Object contains a property that could not be validated using 'properties' or 'additionalProperties' constraints: '{unwanted}'."));
                ok = false;
            }
        }
        if maybe_object(n) {
            for r in required {
                if !entries.iter().any(|(k, _)| key_text(k) == *r) {
                    self.push(ctx, &format!("Missing required property '{r}'."));
                    ok = false;
                }
            }
        }
        ok
    }

    fn typed(&mut self, ok: bool, ctx: &str) -> bool {
        if !ok {
            self.push(ctx, TYPE);
        }
        ok
    }

    fn enumerated(&mut self, n: &Node, ctx: &str, values: &[&str]) -> bool {
        let hit = matches!(&n.kind, NodeKind::Scalar(s) if values.contains(&s.as_str()));
        if !hit {
            self.push(ctx, "Failed to match against any enum values.");
        }
        hit
    }

    fn value(&mut self, n: &Node, ctx: &str, s: S) -> bool {
        match s {
            S::Any => true,
            S::Str => self.typed(is_scalar(n), ctx),
            S::Bool => self.typed(maybe_bool(n), ctx),
            S::Int => self.typed(maybe_integer(n), ctx),
            S::Priority | S::OverriddenItem => {
                let values = if matches!(s, S::Priority) {
                    PRIORITIES
                } else {
                    &["append", "replace"]
                };
                let t = self.typed(is_scalar(n), ctx);
                let e = self.enumerated(n, ctx, values);
                t && e
            }
            S::Override => self.object(n, ctx, OVERRIDE, &[], 1),
            S::ListItems => {
                let t = self.typed(is_seq(n), ctx);
                let i = self.items(n, ctx, |v, it, c| v.list_item(it, c));
                t && i
            }
            S::Tags => {
                let t = self.typed(is_seq(n), ctx);
                let i = self.items(n, ctx, |v, it, c| v.value(it, c, S::Str));
                t && i
            }
            S::Exceptions => {
                let t = self.typed(is_seq(n), ctx);
                let i = self.items(n, ctx, |v, it, c| v.object(it, c, EXCEPTION, &["name"], 0));
                t && i
            }
            S::PluginVersions => {
                let t = self.typed(is_seq(n), ctx);
                let i = self.items(n, ctx, |v, it, c| {
                    v.object(it, c, PLUGIN_VERSION, &["name", "version"], 0)
                });
                t && i
            }
            S::Alternatives => {
                let t = self.typed(is_seq(n), ctx);
                let i = self.items(n, ctx, |v, it, c| {
                    v.object(it, c, ALTERNATIVE, &["name", "version"], 0)
                });
                t && i
            }
        }
    }

    /// A list item: `anyOf: [{type: integer}, {type: string}]`. Problems with
    /// each alternative are reported only when none fits.
    fn list_item(&mut self, n: &Node, ctx: &str) -> bool {
        if maybe_integer(n) || is_scalar(n) {
            return true;
        }
        for i in 0..2 {
            self.push(ctx, TYPE);
            self.push(
                ctx,
                &format!("Failed to validate against child schema #{i}."),
            );
        }
        self.push(
            ctx,
            "Failed to validate against any schemas allowed by anyOf constraint.",
        );
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::yaml::parse_documents;

    fn check(text: &str) -> Vec<String> {
        parse_documents(text)
            .unwrap()
            .iter()
            .flat_map(validate)
            .collect()
    }

    #[test]
    fn valid_rules_pass() {
        let t = "- required_engine_version: 0.57.0\n- list: l\n  items: [a, 1]\n- macro: m\n  condition: x\n- rule: r\n  desc: d\n  condition: m\n  output: o\n  priority: WARNING\n  enabled: false\n  capture_duration: 10\n  tags: [a]\n  exceptions:\n    - name: e\n      fields: [a]\n      values: [[b]]\n  override:\n    desc: replace\n";
        assert_eq!(check(t), ["ok"]);
    }

    #[test]
    fn problems_are_reported_innermost_first_in_property_order() {
        let t = "- rule: r\n  priority: Warning\n  enabled: yes\n  typo: 1\n";
        assert_eq!(
            check(t),
            [
                "failed for <root>[0][enabled]: Value type not permitted by 'type' constraint.",
                "failed for <root>[0]: Failed to validate against schema associated with property name 'enabled'.",
                "failed for <root>[0][priority]: Failed to match against any enum values.",
                "failed for <root>[0]: Failed to validate against schema associated with property name 'priority'.",
                "failed for <root>[0]: Object contains a property that could not be validated using 'properties' or 'additionalProperties' constraints: 'typo'.",
                "failed for <root>: Failed to validate item #0 in array.",
            ]
        );
    }

    #[test]
    fn nested_objects_and_any_of() {
        let t = "- list: l\n  items: [[a]]\n- rule: r\n  exceptions:\n    - fields: a\n  override: {}\n";
        assert_eq!(
            check(t),
            [
                "failed for <root>[0][items][0]: Value type not permitted by 'type' constraint.",
                "failed for <root>[0][items][0]: Failed to validate against child schema #0.",
                "failed for <root>[0][items][0]: Value type not permitted by 'type' constraint.",
                "failed for <root>[0][items][0]: Failed to validate against child schema #1.",
                "failed for <root>[0][items][0]: Failed to validate against any schemas allowed by anyOf constraint.",
                "failed for <root>[0][items]: Failed to validate item #0 in array.",
                "failed for <root>[0]: Failed to validate against schema associated with property name 'items'.",
                "failed for <root>: Failed to validate item #0 in array.",
                "failed for <root>[1][exceptions][0]: Missing required property 'name'.",
                "failed for <root>[1][exceptions]: Failed to validate item #0 in array.",
                "failed for <root>[1]: Failed to validate against schema associated with property name 'exceptions'.",
                "failed for <root>[1][override]: Object should have no fewer than 1 properties.",
                "failed for <root>[1]: Failed to validate against schema associated with property name 'override'.",
                "failed for <root>: Failed to validate item #1 in array.",
            ]
        );
    }

    #[test]
    fn weak_integers_and_documents() {
        assert!(maybe_integer(&Node {
            kind: NodeKind::Scalar(" -12".into()),
            pos: Default::default()
        }));
        assert!(!maybe_integer(&Node {
            kind: NodeKind::Scalar("12 ".into()),
            pos: Default::default()
        }));
        assert_eq!(
            check("a: b\n"),
            ["failed for <root>: Value type not permitted by 'type' constraint."]
        );
        // One status per document.
        assert_eq!(
            check("- list: l\n  items: []\n---\n- rule: r\n"),
            ["ok", "ok"]
        );
    }
}
