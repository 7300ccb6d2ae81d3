use super::*;
use saker_types::Priority;

fn load_str(text: &str, ov: &[&str]) -> Result<Loaded, ConfigError> {
    let ov: Vec<String> = ov.iter().map(|s| s.to_string()).collect();
    from_yaml_str(text, "test.yaml", &ov)
}

#[test]
fn defaults_when_empty() {
    let l = load_str("", &[]).unwrap();
    let c = l.config;
    assert!(l.warnings.is_empty());
    assert_eq!(c.priority, Priority::Debug);
    assert!(c.stdout_output.enabled);
    assert!(!c.json_output);
    assert!(c.json_include_output_property);
    assert_eq!(c.webserver.listen_address, "127.0.0.1");
    assert_eq!(c.webserver.listen_port, 8765);
    assert_eq!(c.outputs_queue.capacity, 10_000);
    assert_eq!(
        c.rules_paths(),
        vec![
            PathBuf::from("/etc/saker/saker_rules.yaml"),
            PathBuf::from("/etc/saker/rules.d")
        ]
    );
}

#[test]
fn falco_keys_parse() {
    let text = r#"
rules_files: [/a.yaml, /b.d]
json_output: true
json_include_tags_property: false
priority: WARNING
rule_matching: all
file_output: {enabled: true, keep_alive: true, filename: /tmp/x.txt}
http_output:
  enabled: true
  url: http://localhost:2801/
  custom_headers: {X-Token: abc}
webserver: {enabled: true, listen_port: 9100, prometheus_metrics_enabled: true}
syscall_event_drops: {actions: [log, alert], rate: 0.5, max_burst: 3}
base_syscalls: {custom_set: [openat, "!kill"], repair: true}
rules:
  - disable: {rule: "*"}
  - enable: {tag: network}
"#;
    let l = load_str(text, &[]).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let c = l.config;
    assert_eq!(
        c.rules_paths(),
        vec![PathBuf::from("/a.yaml"), PathBuf::from("/b.d")]
    );
    assert!(c.json_output && !c.json_include_tags_property);
    assert_eq!(c.priority, Priority::Warning);
    assert_eq!(c.rule_matching, RuleMatching::All);
    assert!(c.file_output.keep_alive);
    assert_eq!(
        c.http_output
            .custom_headers
            .get("X-Token")
            .map(String::as_str),
        Some("abc")
    );
    assert_eq!(c.webserver.listen_port, 9100);
    assert_eq!(c.syscall_event_drops.max_burst, 3);
    assert_eq!(c.base_syscalls.custom_set, vec!["openat", "!kill"]);
    assert_eq!(c.rules.len(), 2);
    assert_eq!(
        c.rules[1],
        RuleSelection::Enable(RuleSelector {
            rule: None,
            tag: Some("network".into())
        })
    );
}

#[test]
fn overrides_nested_lists_and_types() {
    let l = load_str(
        "webserver: {listen_port: 8765}\nrules_files: [/x.yaml]\n",
        &[
            "http_output.enabled=true",
            "http_output.url=http://h:1/p?a=b",
            "webserver.listen_port=9000",
            "rules_files[1]=/y.yaml",
            "cloudwatch_output.metrics={enabled: true, namespace: N}",
            "base_syscalls.custom_set=[a, b]",
            "priority=info",
        ],
    )
    .unwrap();
    let c = l.config;
    assert!(c.http_output.enabled);
    assert_eq!(c.http_output.url, "http://h:1/p?a=b");
    assert_eq!(c.webserver.listen_port, 9000);
    assert_eq!(
        c.rules_paths(),
        vec![PathBuf::from("/x.yaml"), PathBuf::from("/y.yaml")]
    );
    assert!(c.cloudwatch_output.metrics.enabled);
    assert_eq!(c.cloudwatch_output.metrics.namespace, "N");
    assert_eq!(c.base_syscalls.custom_set, vec!["a", "b"]);
    assert_eq!(c.priority, Priority::Informational);
}

#[test]
fn bad_override_syntax() {
    let e = load_str("", &["novalue"]).unwrap_err().to_string();
    assert_eq!(e, "invalid -o override 'novalue': expected key=value");
    let e = load_str("", &["rules_files[5]=/x"])
        .unwrap_err()
        .to_string();
    assert!(e.contains("index 5 is past the end"), "{e}");
}

#[test]
fn unknown_keys_warn_with_path() {
    let l = load_str(
        "jsonoutput: true\nwebserver: {enabled: true, listen_prot: 1}\n",
        &["http_output.bogus=1"],
    )
    .unwrap();
    let mut w = l.warnings.clone();
    w.sort();
    assert_eq!(
        w,
        vec![
            "unknown config key 'http_output.bogus' (ignored)",
            "unknown config key 'jsonoutput' (ignored)",
            "unknown config key 'webserver.listen_prot' (ignored)",
        ]
    );
    assert!(l.config.webserver.enabled);
}

#[test]
fn bad_values_name_path_and_type() {
    let e = load_str("webserver: {listen_port: abc}\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "config error at 'webserver.listen_port': invalid type: string \"abc\", expected u16"
        ),
        "{e}"
    );
    let e = load_str("", &["json_output=maybe"])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "config error at 'json_output': invalid type: string \"maybe\", expected a boolean"
        ),
        "{e}"
    );
    let e = load_str("priority: loud\n", &[]).unwrap_err().to_string();
    assert!(
        e.starts_with("config error at 'priority': Unknown priority \"loud\""),
        "{e}"
    );
    let e = load_str("webserver: {listen_port: 70000}\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("config error at 'webserver.listen_port':"),
        "{e}"
    );
    let e = load_str("syscall_event_drops: {actions: [log, explode]}\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with(
            "config error at 'syscall_event_drops.actions[1]': unknown variant `explode`"
        ),
        "{e}"
    );
}

#[test]
fn cross_field_errors() {
    let e = load_str("file_output: {enabled: true}\n", &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "config error at 'file_output.filename': file_output is enabled but no filename is set"
    );
    let e = load_str("rules_file: /a\nrules_files: [/b]\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("both 'rules_files' and the legacy 'rules_file'"),
        "{e}"
    );
    let e = load_str("webserver: {listen_address: localhost}\n", &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "config error at 'webserver.listen_address': must be an IP address"
    );
    let e = load_str("syscall_event_drops: {actions: [ignore, log]}\n", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("'ignore' cannot be combined"), "{e}");
}

#[test]
fn legacy_rules_file_single_string() {
    let c = load_str("rules_file: /only.yaml\n", &[]).unwrap().config;
    assert_eq!(c.rules_paths(), vec![PathBuf::from("/only.yaml")]);
}

#[test]
fn env_substitution_in_values() {
    std::env::set_var("SAKER_CFG_NODE", "node-7");
    let c = load_str(
        "cloudwatch_output: {log_stream: \"alerts-${SAKER_CFG_NODE}\"}\n",
        &[],
    )
    .unwrap()
    .config;
    assert_eq!(c.cloudwatch_output.log_stream, "alerts-node-7");
}

#[test]
fn invalid_yaml_and_missing_file() {
    let e = load_str("a: [\n", &[]).unwrap_err().to_string();
    assert!(e.starts_with("config file test.yaml: invalid YAML"), "{e}");
    let e = load(Some(Path::new("/nonexistent/saker.yaml")), &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("cannot read config file /nonexistent/saker.yaml"),
        "{e}"
    );
}

#[test]
fn file_discovery_with_c() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("s.yaml");
    std::fs::write(&p, "json_output: true\n").unwrap();
    let l = load(Some(&p), &["stdout_output.enabled=false".into()]).unwrap();
    assert_eq!(l.source.as_deref(), Some(p.as_path()));
    assert!(l.config.json_output);
    assert!(!l.config.stdout_output.enabled);
}

/// The documented example must load without a single unknown-key warning,
/// so that it really documents the keys the code reads.
#[test]
fn example_config_documents_real_keys() {
    let text = include_str!("../../../saker.example.yaml");
    let l = load_str(text, &[]).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
}

/// The deploy config shipped in the image loads cleanly too.
#[test]
fn deploy_config_loads() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/saker.yaml");
    if let Ok(text) = std::fs::read_to_string(path) {
        let l = load_str(&text, &[]).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert!(l.config.json_output);
    } else {
        panic!("deploy/saker.yaml missing at {path}");
    }
}

#[test]
fn option_values_are_typed_by_key() {
    let l = load_str(
        "",
        &[
            "program_output.program=jq '{text: .output}' | curl -d @- https://x",
            "hostname=1234",
            "webserver.listen_port=9000",
            "json_output=true",
        ],
    )
    .unwrap();
    assert_eq!(
        l.config.program_output.program,
        "jq '{text: .output}' | curl -d @- https://x"
    );
    assert_eq!(l.config.hostname.as_deref(), Some("1234"));
    assert_eq!(l.config.webserver.listen_port, 9000);
    assert!(l.config.json_output);
    // A bool key still refuses a non-bool.
    let e = load_str("", &["json_output=maybe"]).unwrap_err();
    assert!(e.to_string().contains("json_output"), "{e}");
}

#[test]
fn config_files_strategies() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir(d.join("conf.d")).unwrap();
    std::fs::write(
        d.join("conf.d/a.yaml"),
        "rules_files: [/b.yaml]\npriority: error\n",
    )
    .unwrap();
    std::fs::write(d.join("over.yaml"), "rules_files: [/c.yaml]\n").unwrap();
    std::fs::write(d.join("add.yaml"), "priority: debug\njson_output: true\n").unwrap();
    let main = d.join("main.yaml");
    std::fs::write(
        &main,
        format!(
            "rules_files: [/a.yaml]\nconfig_files:\n  - {0}/conf.d\n  - /nonexistent.yaml\n  - {{path: {0}/add.yaml, strategy: add-only}}\n",
            d.display()
        ),
    )
    .unwrap();
    let l = load(Some(&main), &[]).unwrap();
    assert_eq!(
        l.config.rules_paths(),
        vec![PathBuf::from("/a.yaml"), PathBuf::from("/b.yaml")],
        "append: lists are appended"
    );
    assert_eq!(
        l.config.priority,
        Priority::Error,
        "add-only keeps priority"
    );
    assert!(l.config.json_output, "add-only adds new keys");
    assert_eq!(l.files.len(), 3);
    let o = format!(
        "config_files=[{{path: {}/over.yaml, strategy: override}}]",
        d.display()
    );
    let l = load(Some(&main), &[o]).unwrap();
    assert_eq!(l.config.rules_paths(), vec![PathBuf::from("/c.yaml")]);
    std::fs::write(d.join("conf.d/b.yaml"), "config_files: [/x]\n").unwrap();
    let e = load(Some(&main), &[]).unwrap_err();
    assert!(e.to_string().contains("included config file"), "{e}");
}

#[test]
fn falco_values_refused_or_checked() {
    let w = load_str("capture: {enabled: true}\nfalco_libs: {snaplen: 80}\n", &[])
        .unwrap()
        .warnings;
    assert_eq!(
        w,
        vec!["falco.yaml key 'falco_libs.snaplen' is not supported and has no effect"]
    );
    let e = load_str("capture: {enabled: true, mode: some}\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("capture.mode") && e.contains("'some' is not a valid mode (rules, all_rules)"),
        "{e}"
    );
    let e = load_str("capture: {enabled: true, scope: pod}\n", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("capture.scope")
            && e.contains("'pod' is not a valid scope (host, container, process_tree)"),
        "{e}"
    );
    let c = load_str("capture: {scope: process_tree}\n", &[])
        .unwrap()
        .config;
    assert_eq!(c.capture.scope.as_deref(), Some("process_tree"));
    // Inert when the feature is off, as in Falco.
    assert!(load_str(
        "capture: {enabled: false}\nhttp_output: {max_consecutive_timeouts: 5}\n",
        &[]
    )
    .unwrap()
    .warnings
    .is_empty());
    let e = load_str("engine: {kind: ebpf}\n", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("'ebpf' is not supported"), "{e}");
    let e = load_str("engine: {kind: replay}\n", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("engine.replay.capture_file"), "{e}");
    let e = load_str("engine: {modern_ebpf: {buf_size_preset: 0}}\n", &[]).unwrap_err();
    assert!(e.to_string().contains("between 1 and 10"));
    let e = load_str("metrics: {interval: 10ms}\n", &[]).unwrap_err();
    assert!(e.to_string().contains("shorter than 100ms"));
    let e = load_str("log_level: verbose\n", &[]).unwrap_err();
    assert!(e.to_string().contains("Unknown log level 'verbose'"));
}

#[test]
fn shutdown_timeout_and_spool_keys() {
    use std::time::Duration;
    let c = load_str("", &[]).unwrap().config;
    assert_eq!(c.outputs.shutdown_timeout, Duration::from_secs(10));
    assert!(c.outputs_queue.spool_dir.is_empty());
    assert_eq!(c.outputs_queue.spool_max_bytes, 256 << 20);
    for (v, want) in [
        ("3", Duration::from_secs(3)),
        ("0.5", Duration::from_millis(500)),
        ("250ms", Duration::from_millis(250)),
        ("2m", Duration::from_secs(120)),
        ("7s", Duration::from_secs(7)),
    ] {
        let o = format!("outputs.shutdown_timeout={v}");
        let l = load_str("", &[o.as_str()]).unwrap();
        assert!(l.warnings.is_empty(), "{:?}", l.warnings);
        assert_eq!(l.config.outputs.shutdown_timeout, want, "{v}");
    }
    let e = load_str("outputs: {shutdown_timeout: 10h}", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("config error at 'outputs.shutdown_timeout': invalid duration \"10h\""),
        "{e}"
    );
    let l = load_str(
        "outputs_queue: {spool_dir: /var/lib/saker/spool, spool_max_bytes: 1048576}",
        &[],
    )
    .unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.config.outputs_queue.spool_dir, "/var/lib/saker/spool");
    assert_eq!(l.config.outputs_queue.spool_max_bytes, 1 << 20);
    let e = load_str("outputs_queue: {spool_dir: /x, spool_max_bytes: 100}", &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "config error at 'outputs_queue.spool_max_bytes': must be at least 65536 when spool_dir is set"
    );
}

#[test]
fn container_engines_hold_ms() {
    let l = load_str("", &[]).unwrap();
    assert_eq!(l.config.container_engines.hold_ms, DEFAULT_HOLD_MS);
    let l = load_str(
        "container_engines:\n  hold_ms: 300\n  podman: {enabled: true, sockets: [/run/p.sock]}\n",
        &[],
    )
    .unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert_eq!(l.config.container_engines.hold_ms, 300);
    let podman = l.config.container_engines.get("podman").unwrap();
    assert!(podman.enabled);
    assert_eq!(
        podman.sockets,
        vec![std::path::PathBuf::from("/run/p.sock")]
    );
    assert!(l.config.container_engines.get("hold_ms").is_none());
    let l = load_str("", &["container_engines.hold_ms=0"]).unwrap();
    assert_eq!(l.config.container_engines.hold_ms, 0);
    let e = load_str("container_engines: {hold_ms: 20000}", &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        e,
        "config error at 'container_engines.hold_ms': must be at most 10000 (milliseconds)"
    );
    assert!(load_str("container_engines: {hold_ms: soon}", &[]).is_err());
}

#[test]
fn append_output_is_typed() {
    let l = load_str(
        "append_output:\n\
         - match: {source: syscall, tags: [container], rule: A}\n\
         \x20 extra_output: \"pid=%proc.pid\"\n\
         \x20 extra_fields: [proc.name, {home: \"%proc.cwd\"}]\n\
         - suggested_output: true\n",
        &[],
    )
    .unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    let a = &l.config.append_output;
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].matches.source.as_deref(), Some("syscall"));
    assert_eq!(a[0].matches.tags, ["container"]);
    assert_eq!(a[0].matches.rule.as_deref(), Some("A"));
    assert_eq!(a[0].extra_output.as_deref(), Some("pid=%proc.pid"));
    assert_eq!(
        a[0].extra_fields,
        [
            ExtraField::Field("proc.name".into()),
            ExtraField::Format {
                key: "home".into(),
                format: "%proc.cwd".into()
            }
        ]
    );
    assert!(a[1].suggested_output && a[1].matches == AppendMatch::default());
}

#[test]
fn bad_append_output_entries_are_named() {
    let err = |y: &str| load_str(y, &[]).unwrap_err().to_string();
    let e = err("append_output:\n- extra_fields: [{a: x, b: y}]\n");
    assert!(
        e.starts_with("config error at 'append_output[0].extra_fields[0]': an extra_fields entry is a field name or one `key: \"format\"` pair"),
        "{e}"
    );
    let e = err("append_output:\n- extra_output: x\n- match: {tags: container}\n");
    assert!(
        e.starts_with("config error at 'append_output[1].match.tags': invalid type"),
        "{e}"
    );
    let e = err("append_output:\n- suggested_output: maybe\n");
    assert!(
        e.starts_with("config error at 'append_output[0].suggested_output':"),
        "{e}"
    );
    let w = load_str(
        "append_output:\n- extra_output: x\n  mach: {rule: A}\n- match: {rule: B}\n",
        &[],
    )
    .unwrap()
    .warnings;
    assert_eq!(
        w,
        [
            "unknown config key 'append_output.0.mach' (ignored)",
            "append_output[1] adds nothing (no extra_output, extra_fields or suggested_output); ignored"
        ]
    );
}

#[test]
fn engine_workers() {
    let l = load_str("", &[]).unwrap();
    assert_eq!(l.config.engine.workers, 0);
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    // Auto splits from AUTO_SPLIT_CPUS CPUs only; 1 and 2 are what they say on any machine.
    assert!(!l.config.engine.split(2));
    assert!(l.config.engine.split(AUTO_SPLIT_CPUS));
    assert_eq!(AUTO_SPLIT_CPUS, 4);
    // Live detection splits only when asked.
    assert!(!l.config.engine.split_live());
    let l = load_str("engine: {workers: 2}\n", &[]).unwrap();
    assert!(l.warnings.is_empty(), "{:?}", l.warnings);
    assert!(l.config.engine.split(1));
    assert!(l.config.engine.split_live());
    let c = load_str("engine: {workers: 2}\n", &["engine.workers=1"])
        .unwrap()
        .config;
    assert_eq!(c.engine.workers, 1);
    assert!(!c.engine.split(64));
    assert!(!c.engine.split_live());
    assert_eq!(
        load_str("", &["engine.workers=3"])
            .unwrap_err()
            .to_string(),
        "config error at 'engine.workers': must be 0 (auto), 1 (one thread) or 2 (decoding on its own thread), not 3"
    );
    assert_eq!(
        load_str("engine: {workers: -1}\n", &[])
            .unwrap_err()
            .to_string(),
        "config error at 'engine.workers': invalid value: integer `-1`, expected u32"
    );
    assert_eq!(
        load_str("", &["engine.workers=many"])
            .unwrap_err()
            .to_string(),
        "config error at 'engine.workers': invalid type: string \"many\", expected u32"
    );
}
