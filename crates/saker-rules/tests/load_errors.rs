//! One test per LOAD_ERR code and message the loader emits, plus the
//! mis-indented rule message and the result formats.

mod common;
use common::*;
use saker_rules::engine::{Engine, LoadOptions};
use saker_rules::errors::{results_to_json, ErrorCode};

const RULE: &str =
    "- rule: r\n  desc: d\n  condition: evt.type = open\n  output: o\n  priority: WARNING\n";

#[test]
fn file_read_error() {
    let mut eng = Engine::new(LoadOptions::default());
    let res = eng.load_file(std::path::Path::new("/nonexistent/rules.yaml"));
    assert_eq!(res.errors[0].code, ErrorCode::FileRead);
    assert_eq!(res.errors[0].code.code(), "LOAD_ERR_FILE_READ");
    assert!(
        res.errors[0]
            .message
            .starts_with("Could not open file /nonexistent/rules.yaml for reading"),
        "{}",
        res.errors[0].message
    );
    assert!(!eng.ok());
}

#[test]
fn yaml_parse_error_has_position() {
    let (_, res) = load("- rule: x\n  desc: [unclosed\n");
    let e = &res.errors[0];
    assert_eq!(e.code, ErrorCode::YamlParse);
    assert_eq!(e.code.short(), "YAML parse error");
    let loc = e.ctx.last().unwrap();
    assert_eq!(loc.name, "test.yaml");
    assert!(loc.pos.line >= 1, "{loc:?}");
}

#[test]
fn misindented_rule_gets_an_explanation() {
    let text = "- rule: Shell in container\n    desc: a shell\n    condition: evt.type = execve\n";
    let (_, res) = load(text);
    let e = &res.errors[0];
    assert_eq!(e.code, ErrorCode::YamlParse);
    assert!(
        e.message.starts_with(
            "rule 'Shell in container': key 'desc' is indented deeper than 'rule:' on the line above"
        ),
        "{}",
        e.message
    );
    // Falco's chain for a YAML syntax error: the file, then the mark.
    let kinds: Vec<&str> = e
        .ctx
        .locations
        .iter()
        .map(|l| l.item_type.as_str())
        .collect();
    assert_eq!(kinds, ["rules content", "value for"]);
    assert_eq!(
        e.hint.as_deref(),
        Some("keys of an item must be aligned with `rule:`; move 'desc:' to column 3")
    );
    let line = e.to_string();
    assert!(
        line.starts_with("test.yaml:2:5: error: rule 'Shell in container': key 'desc'"),
        "{line}"
    );
    assert!(
        line.ends_with(
            "(hint: keys of an item must be aligned with `rule:`; move 'desc:' to column 3)"
        ),
        "{line}"
    );
}

#[test]
fn rule_value_as_nested_mapping_is_explained() {
    let (_, res) = load("- rule:\n    desc: d\n    condition: evt.type=open\n");
    let e = &res.errors[0];
    assert_eq!(e.code, ErrorCode::YamlValidate);
    assert_eq!(e.message, "Value is not a scalar value");
    assert_eq!(
        e.hint.as_deref(),
        Some("the keys under `rule:` are indented deeper than `rule:`, so YAML reads them as a nested mapping; keys of an item must be aligned with `rule:`")
    );
}

#[test]
fn yaml_validate_messages() {
    let cases: &[(&str, &str)] = &[
        ("a: b\n", "Rules content is not yaml array of objects"),
        ("- just a string\n", "Unexpected element type. Each element should be a yaml associative array."),
        ("- rule: r\n  desc: d\n  output: o\n  priority: INFO\n", "Item has no mapping for key 'condition'"),
        ("- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: loud\n", "Invalid priority"),
        ("- rule: r\n  desc: ''\n  condition: evt.type=open\n  output: o\n  priority: info\n", "Value must be non-empty"),
        ("- rule: r\n  desc:\n  condition: evt.type=open\n  output: o\n  priority: info\n", "Mapping for key 'desc' is empty"),
        ("- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: info\n  enabled: maybe\n", "Can't decode YAML scalar value"),
        ("- list: l\n", "Item has no mapping for key 'items'"),
        ("- list: l\n  items: [[a]]\n", "sequence value is not scalar"),
        ("- list: l\n  items:\n", "Value is not a sequence"),
        ("- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: info\n  tags: a\n", "Value is not a sequence"),
        ("7\n", "Rules content is not yaml"),
        ("- required_engine_version: abc\n", "Unable to parse engine version 'abc' as a semver string. Expected \"x.y.z\" semver format."),
        ("- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: info\n  exceptions:\n    - name: e\n      values: [a]\n", "Item has no mapping for key 'fields'"),
        ("- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: info\n  capture_duration: -5\n", "Can't decode YAML scalar value"),
        ("- required_plugin_versions:\n    - x\n", "Plugin version must be a mapping"),
        ("- macro: m\n", "Item has no mapping for key 'condition'"),
        ("- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: info\n  exceptions: {a: b}\n", "Rule exceptions must be a sequence"),
        ("- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: info\n  exceptions: [x]\n", "Rule exception must be a mapping"),
        ("- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: info\n  exceptions:\n    - name: e\n      fields: proc.name\n      values: x\n", "Rule exception values must be a sequence"),
        ("- required_plugin_versions: x\n", "Value of required_plugin_versions must be a sequence"),
    ];
    for (text, msg) in cases {
        let (code, m) = load_err(text);
        assert_eq!(
            (code, m.as_str()),
            (ErrorCode::YamlValidate, *msg),
            "{text}"
        );
    }
}

#[test]
fn override_validation_messages() {
    let base = RULE;
    let cases: &[(&str, &str)] = &[
        ("- rule: r\n  condition: and proc.name=x\n  override:\n    condition: merge\n", "Invalid override operation for key 'condition': 'merge'. Allowed values are: append replace "),
        ("- rule: r\n  priority: INFO\n  override:\n    priority: append\n", "Key 'priority' cannot be appended to, use 'replace' instead"),
        ("- rule: r\n  source: k8s\n  override:\n    source: replace\n", "Key 'source' cannot be replaced"),
        ("- rule: r\n  override:\n    output: append\n", "An append override for 'output' was specified but 'output' is not defined"),
        ("- rule: r\n  override:\n    desc: replace\n", "An replace override for 'desc' was specified but 'desc' is not defined"),
        ("- rule: r\n  condition: and proc.name=x\n  priority: INFO\n  override:\n    condition: append\n", "Unexpected key 'priority': no corresponding entry under 'override' is defined."),
        ("- rule: r\n  condition: and proc.name=x\n  append: true\n  override:\n    condition: append\n", "Keys 'override' and 'append: true' cannot be used together. Add an 'append' entry (e.g. 'condition: append') under 'override' instead."),
        ("- list: l\n  items: [a]\n  override:\n    items: prepend\n", "Invalid override operation for key 'items': 'prepend'. Allowed values are: append replace "),
    ];
    for (text, msg) in cases {
        let (code, m) = load_err(&format!("{base}{text}"));
        assert_eq!(
            (code, m.as_str()),
            (ErrorCode::YamlValidate, *msg),
            "{text}"
        );
    }
}

#[test]
fn validate_messages() {
    let cases: &[(&str, &str)] = &[
        ("- rule: r\n  condition: and proc.name=x\n  append: true\n", "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists"),
        ("- rule: r\n  condition: and proc.name=x\n  override:\n    condition: append\n", "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists"),
        ("- rule: r\n  priority: INFO\n  override:\n    priority: replace\n", "An 'override.<key>: replace' to a rule was requested but no rule by that name already exists"),
        ("- rule: r\n  enabled: false\n", "Rule has 'enabled' key but no rule by that name already exists"),
        ("- macro: m\n  condition: and x\n  append: true\n", "Macro uses 'append' or 'override.condition: append' but no macro by that name already exists"),
        ("- list: l\n  items: [a]\n  override:\n    items: append\n", "List uses 'append' or 'override.items: append' but no list by that name already exists"),
        ("- required_engine_version: 0.99.0\n", "Rules require engine version 0.99.0, but engine version is 0.63.0"),
        ("- required_engine_version: 99\n", "Rules require engine version 0.99.0, but engine version is 0.63.0"),
        ("- rule: r\n  desc: d\n  condition: evt.type=open and undefined_macro\n  output: o\n  priority: info\n", "Undefined macro 'undefined_macro' used in filter."),
        ("- macro: a\n  condition: b\n- macro: b\n  condition: proc.name=x\n", "Undefined macro 'b' used in filter."),
        // A macro cannot see itself (its index is not below its own visibility)...
        ("- macro: a\n  condition: proc.name=x and a\n", "Undefined macro 'a' used in filter."),
        // ...but redefinitions can build a loop.
        ("- macro: a\n  condition: proc.name=x\n- macro: b\n  condition: a\n- macro: a\n  condition: b\n", "reference loop in macro 'a'"),
    ];
    for (text, msg) in cases {
        let (code, m) = load_err(text);
        assert_eq!((code, m.as_str()), (ErrorCode::Validate, *msg), "{text}");
    }
}

#[test]
fn rule_legacy_append_needs_condition_or_exceptions() {
    // The missing rule is reported first.
    let (code, m) = load_err("- rule: r\n  append: true\n  output: x\n");
    assert_eq!(
        (code, m.as_str()),
        (
            ErrorCode::Validate,
            "Rule uses 'append' or 'override.<key>: append' but no rule by that name already exists"
        )
    );
    let (code, m) = load_err(&format!("{RULE}- rule: r\n  append: true\n  output: x\n"));
    assert_eq!(
        (code, m.as_str()),
        (
            ErrorCode::Validate,
            "Appended rule must have exceptions or condition property"
        )
    );
}

#[test]
fn redefinition_with_other_source() {
    let text = format!("{RULE}- rule: r\n  desc: d\n  condition: ka.verb=get\n  output: o\n  priority: info\n  source: k8s_audit\n");
    let (code, m) = load_err(&text);
    assert_eq!(
        (code, m.as_str()),
        (
            ErrorCode::Validate,
            "Rule has been re-defined with a different source"
        )
    );
}

#[test]
fn exception_validation_errors() {
    let ex = |body: &str| {
        format!("- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: info\n  exceptions:\n{body}")
    };
    let cases: &[(&str, &str)] = &[
        ("    - name: e\n      fields: ~\n      values: [a]\n", "Rule exception item must have fields property with a list of fields"),
        ("    - name: e\n      fields: []\n      values: [a]\n", "Rule exception item must have fields property with a list of fields"),
        ("    - name: e\n      fields: [proc.name]\n      comps: =\n", "Fields and comps lists must have equal length"),
        ("    - name: e\n      fields: proc.nmae\n", "'proc.nmae' is not a supported filter field"),
        ("    - name: e\n      fields: [proc.name, fd.name]\n      comps: [=]\n", "Fields and comps lists must have equal length"),
        ("    - name: e\n      fields: [proc.name]\n      comps: [like]\n", "'like' is not a supported comparison operator"),
        ("    - name: e\n      fields: [proc.nmae]\n", "'proc.nmae' is not a supported filter field"),
        ("    - name: e\n      fields: proc.name\n      comps: =\n", "When fields is a single value, comps must be one of (in, pmatch, intersects) or a modifier operator (e.g. startswith oneof)"),
        ("    - name: e\n      fields: proc.name\n      comps: [in]\n", "Fields and comps must both be strings"),
        ("    - name: e\n      fields: proc.name\n      values: [[a, b]]\n", "Expected values array to contain a list of strings"),
        ("    - name: e\n      fields: [proc.name, fd.name]\n      values: [[a]]\n", "Fields and values lists must have equal length"),
    ];
    for (body, msg) in cases {
        let (code, m) = load_err(&ex(body));
        assert_eq!((code, m.as_str()), (ErrorCode::Validate, *msg), "{body}");
    }
    // Appends: fields on an existing exception, or a new one without values.
    let base = ex("    - name: e\n      fields: [proc.name]\n      values: [[a]]\n");
    let (code, m) = load_err(&format!("{base}- rule: r\n  exceptions:\n    - name: e\n      fields: [fd.name]\n      values: [[b]]\n  override:\n    exceptions: append\n"));
    assert_eq!(
        (code, m.as_str()),
        (
            ErrorCode::Validate,
            "Can not append exception fields to existing exception, only values"
        )
    );
    let (code, m) = load_err(&format!("{base}- rule: r\n  exceptions:\n    - name: new\n      fields: [fd.name]\n  override:\n    exceptions: append\n"));
    assert_eq!(
        (code, m.as_str()),
        (
            ErrorCode::Validate,
            "Rule exception must have values property with a list of values"
        )
    );
}

#[test]
fn compile_condition_errors() {
    let rule = |cond: &str| {
        format!("- rule: r\n  desc: d\n  condition: {cond}\n  output: o\n  priority: info\n")
    };
    let (code, m) = load_err(&rule("evt.type = open and"));
    assert_eq!(code, ErrorCode::CompileCondition);
    assert!(!m.is_empty());
    let (code, m) = load_err(&rule("evt.type = open and proc.nmae = x"));
    assert_eq!(
        (code, m.as_str()),
        (
            ErrorCode::CompileCondition,
            "filter_check called with nonexistent field proc.nmae"
        )
    );
    // Macros are parsed too.
    let (code, _) = load_err("- macro: m\n  condition: proc.name in (a\n");
    assert_eq!(code, ErrorCode::CompileCondition);
}

#[test]
fn compile_condition_error_context_names_the_expression() {
    let (_, res) = load(
        "- rule: r\n  desc: d\n  condition: evt.type = open and\n  output: o\n  priority: info\n",
    );
    let locs = &res.errors[0].ctx.locations;
    let kinds: Vec<&str> = locs.iter().map(|l| l.item_type.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "rules content",
            "rule",
            "rule condition",
            "condition expression"
        ]
    );
    assert_eq!(locs[1].item_name, "r");
    // Falco names the expression after the condition, in the position's `name`.
    assert_eq!(locs[3].item_name, "");
    assert_eq!(locs[3].name, "\"evt.type = open and\"");
    assert_eq!(locs[2].pos.line, 2);
    assert_eq!(locs[2].pos.column, 13);
    // The parser stops after `and` (index 19, line 1, column 20 counted
    // from 1); Falco adds that to the YAML mark of the condition.
    assert_eq!(
        (locs[3].pos.line, locs[3].pos.column, locs[3].pos.offset),
        (3, 33, 33 + 19)
    );
}

#[test]
fn compile_output_error() {
    let opts = LoadOptions {
        suggested_output: false,
        ..Default::default()
    };
    let (_, res) = load_with(
        "- rule: r\n  desc: d\n  condition: evt.type=open\n  output: 100%\n  priority: info\n",
        opts,
    );
    let e = &res.errors[0];
    assert_eq!(
        (e.code, e.message.as_str()),
        (
            ErrorCode::CompileOutput,
            "invalid formatting syntax: formatting cannot end with a %"
        )
    );
}

#[test]
fn skip_if_unknown_filter_downgrades_to_warning() {
    let (eng, res) = load_ok("- rule: r\n  desc: d\n  condition: evt.type=open and proc.nmae=x\n  output: o\n  priority: info\n  skip-if-unknown-filter: true\n");
    assert!(res
        .warnings
        .iter()
        .any(|w| w.code.code() == "LOAD_UNKNOWN_FILTER"));
    assert_eq!(eng.ruleset().counts().0, 0);
}

#[test]
fn first_error_stops_the_file() {
    let (_, res) = load("- rule: a\n  desc: d\n  output: o\n  priority: info\n- rule: b\n  desc: d\n  output: o\n  priority: info\n");
    assert_eq!(res.errors.len(), 1);
    assert_eq!(res.errors[0].ctx.item().unwrap().item_name, "a");
}

#[test]
fn json_and_text_forms() {
    let (_, res) =
        load("- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: loud\n");
    let json: serde_json::Value =
        serde_json::from_str(&results_to_json(std::slice::from_ref(&res))).unwrap();
    let r = &json["falco_load_results"][0];
    assert_eq!(r["name"], "test.yaml");
    assert_eq!(r["successful"], false);
    let e = &r["errors"][0];
    assert_eq!(e["code"], "LOAD_ERR_YAML_VALIDATE");
    assert_eq!(
        e["codedesc"],
        "Error validating internal structure of YAML file"
    );
    assert_eq!(e["message"], "Invalid priority");
    let locs = e["context"]["locations"].as_array().unwrap();
    let last = locs.last().unwrap();
    assert_eq!(last["item_type"], "rule priority");
    assert_eq!(last["position"]["line"], 4);
    assert_eq!(last["position"]["column"], 12);
    assert_eq!(e["context"]["snippet"], "  priority: loud\n            ^\n");
    let keys: Vec<&String> = r.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "errors",
            "name",
            "schema_valid",
            "schema_warnings",
            "successful",
            "warnings"
        ]
    );
    assert_eq!(
        res.to_text().lines().next().unwrap(),
        "test.yaml:5:13: error: rule 'r': Invalid priority"
    );
    assert!(
        res.to_text().starts_with(
        "test.yaml:5:13: error: rule 'r': Invalid priority\n      priority: loud\n                ^\n    = LOAD_ERR_YAML_VALIDATE (Error validating internal structure of YAML file)\n"
        ),
        "{}",
        res.to_text()
    );
    // Falco's schema only knows upper-case priorities.
    assert_eq!(r["schema_valid"], false);
    assert_eq!(
        r["schema_warnings"][0],
        "failed for <root>[0][priority]: Failed to match against any enum values."
    );
    // The text form keeps the innermost schema problem only.
    assert!(res.to_text().ends_with(
        "LOAD_ERR_YAML_VALIDATE (Error validating internal structure of YAML file)\ntest.yaml: schema warning: failed for <root>[0][priority]: Failed to match against any enum values.\n"
    ), "{}", res.to_text());
    assert_eq!(res.summary(), "test.yaml: Invalid");
}

#[test]
fn plugin_requirements_are_checked_after_all_files() {
    let text = "- required_plugin_versions:\n    - name: cloudtrail\n      version: 0.1.0\n      alternatives:\n        - name: cloudtrail-ng\n          version: 0.2.0\n    - name: container\n      version: 0.4.0\n";
    let mut eng = Engine::new(LoadOptions::default());
    assert!(eng.load_text("p.yaml", text).successful());
    let e = eng.check_plugin_requirements().unwrap_err();
    assert_eq!(e.code, ErrorCode::Validate);
    assert_eq!(
        e.message,
        "Plugin requirement not satisfied, must load one of: cloudtrail (>= 0.1.0), cloudtrail-ng (>= 0.2.0)"
    );
    // A loaded alternative with a compatible version satisfies it; another major does not.
    let opts = LoadOptions {
        plugins: vec![
            ("container".into(), "0.7.0".into()),
            ("cloudtrail-ng".into(), "0.3.1".into()),
        ],
        ..Default::default()
    };
    let mut eng = Engine::new(opts);
    assert!(eng.load_text("p.yaml", text).successful());
    assert!(eng.check_plugin_requirements().is_ok());
    let opts = LoadOptions {
        plugins: vec![("container".into(), "1.0.0".into())],
        ..Default::default()
    };
    let mut eng = Engine::new(opts);
    assert!(eng
        .load_text(
            "p.yaml",
            "- required_plugin_versions:\n    - name: container\n      version: 0.4.0\n"
        )
        .successful());
    assert_eq!(
        eng.check_plugin_requirements().unwrap_err().message,
        "Plugin 'container' version '1.0.0' is not compatible with required plugin version '0.4.0'"
    );
    // Invalid versions are rejected when read.
    let (code, m) = load_err("- required_plugin_versions:\n    - name: x\n      version: one\n");
    assert_eq!(
        (code, m.as_str()),
        (
            ErrorCode::Validate,
            "Invalid required version 'one' for plugin 'x'"
        )
    );
}

#[test]
fn validate_reports_every_file_and_fails_if_one_fails() {
    let dir = std::env::temp_dir().join(format!("saker-validate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.yaml");
    let bad = dir.join("bad.yaml");
    let needs = dir.join("needs.yaml");
    std::fs::write(&good, RULE).unwrap();
    std::fs::write(&bad, "- rule: x\n  desc: d\n").unwrap();
    std::fs::write(
        &needs,
        "- required_plugin_versions:\n    - name: cloudtrail\n      version: 0.1.0\n",
    )
    .unwrap();
    let (ok, res) =
        saker_rules::validate::validate(std::slice::from_ref(&good), LoadOptions::default())
            .unwrap();
    assert!(ok);
    assert_eq!(res[0].summary(), format!("{}: Ok", good.display()));
    let (ok, res) =
        saker_rules::validate::validate(&[good.clone(), bad.clone()], LoadOptions::default())
            .unwrap();
    assert!(!ok);
    assert!(res[0].successful());
    assert_eq!(
        res[1].errors[0].message,
        "Item has no mapping for key 'condition'"
    );
    // Like `falco -V`: an unreadable file or an unmet plugin requirement gives
    // no results at all.
    let missing = dir.join("missing.yaml");
    let e =
        saker_rules::validate::validate(&[good.clone(), missing.clone()], LoadOptions::default())
            .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("Could not open file {} for reading", missing.display())
    );
    let e = saker_rules::validate::validate(&[good, needs], LoadOptions::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "Plugin requirement not satisfied, must load one of: cloudtrail (>= 0.1.0)"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn misindented_key_after_another_key_is_explained() {
    let text = "- list: l\n  items: [a]\n\n- rule: Write below etc\n  desc: writes\n      condition: evt.type = open\n  output: o\n  priority: ERROR\n";
    let (_, res) = load(text);
    let e = &res.errors[0];
    assert_eq!(e.code, ErrorCode::YamlParse);
    assert!(
        e.message.starts_with(
            "rule 'Write below etc': key 'condition' is indented deeper than 'desc:' on the line above"
        ),
        "{}",
        e.message
    );
    assert_eq!(
        e.to_string().split(": key").next().unwrap(),
        "test.yaml:6:7: error: rule 'Write below etc'"
    );
    assert_eq!(
        e.hint.as_deref(),
        Some("keys of an item must be aligned with `rule:`; move 'condition:' to column 3")
    );
}
