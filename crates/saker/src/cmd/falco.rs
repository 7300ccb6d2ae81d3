//! `saker` / `saker run` with Falco's flags, checked in Falco's order: the informational flags
//! print and exit, `-V` validates, `-L`/`-l` describe, `--support` reports, `--dry-run` stops
//! before the probe, `-e` (or `engine.kind: replay`) replays a capture, else live detection.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use saker_config::Config;
use saker_rules::errors::results_to_json;
use saker_rules::ruleset::Ruleset;
use serde_json::json;

use crate::cli::{FalcoFlags, RunArgs};
use crate::setup::{load_config, Inputs};

/// The Falco release whose rules language, falco.yaml keys and CLI Saker follows.
pub const FALCO_COMPAT_VERSION: &str = "0.44.0";

pub fn run(a: &RunArgs) -> anyhow::Result<i32> {
    let f = &a.falco;
    crate::logging::set_verbose(f.verbose);
    if f.page_size {
        println!("Your system page size is: {} bytes", page_size());
        return Ok(0);
    }
    let syscall_off = check_sources(f)?;
    if f.all_events {
        tracing::warn!(
            "-A has no effect: the events ignored by default (-i) are not captured by Saker's probe"
        );
    }
    let mut opts = a.rules.inputs();
    if f.unbuffered {
        opts.options.push("buffered_outputs=false".into());
    }
    let cfg = load_config(&opts)?;
    let json = f.json || cfg.json_output;
    let informational = f.version
        || f.ignored_events
        || f.list_events
        || f.list.is_some()
        || f.describe_all
        || f.describe.is_some()
        || f.support;
    if informational {
        // Printing commands end quietly when piped into `head` (no sink is running yet).
        // SAFETY: restoring the default disposition of a signal has no preconditions.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    if f.version {
        print_version(json);
        return Ok(0);
    }
    if f.ignored_events {
        print_ignored();
        return Ok(0);
    }
    let format = output_format(f)?;
    if f.list_events {
        crate::cmd::list_events::run(format);
        return Ok(0);
    }
    if let Some(src) = &f.list {
        return crate::cmd::list_fields::run_falco(src, f.names_only, format);
    }
    if !f.validate.is_empty() {
        return validate(&f.validate, &cfg, &opts, f, json);
    }
    if f.describe_all || f.describe.is_some() {
        let loaded = crate::rules::load(&cfg, &opts)?;
        print_described(&loaded.ruleset, f.describe.as_deref(), json)?;
        return Ok(0);
    }
    if f.support {
        let loaded = crate::rules::load(&cfg, &opts)?;
        println!("{}", support(&cfg, &opts, &loaded.files)?);
        return Ok(0);
    }
    let syscall_off = syscall_off || cfg.engine.kind == "nodriver";
    if syscall_off
        && crate::audit_config::AuditConfig::from_config(&cfg)?
            .input
            .is_none()
    {
        bail!("the syscall source is disabled and no k8s_audit input is configured (plugins: k8saudit or k8saudit-eks): nothing to detect");
    }
    if f.dry_run {
        return dry_run(&cfg, &opts);
    }
    let _pid = f.pidfile.as_deref().map(PidFile::create).transpose()?;
    let capture = f.capture_file.clone().or_else(|| {
        (cfg.engine.kind == "replay").then(|| PathBuf::from(&cfg.engine.replay.capture_file))
    });
    if let Some(file) = capture {
        return crate::cmd::replay::run_rules_with(
            cfg,
            &crate::cmd::replay::ReplayArgs {
                rules: &opts,
                file: &file,
                filter: None,
                format: None,
                progress: false,
                prefilter: false,
                explain: false,
                duration: a.duration,
            },
        );
    }
    if syscall_off {
        return crate::audit::run_audit_only(&opts, cfg, a.duration);
    }
    crate::cmd::run::run(&opts, cfg, a.duration, a.stats)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
    Json,
}

fn output_format(f: &FalcoFlags) -> anyhow::Result<Format> {
    if f.markdown && f.format.is_some() {
        bail!("Cannot specify both --markdown and --format options together");
    }
    if f.markdown {
        tracing::warn!("--markdown is deprecated, use --format markdown instead.");
        return Ok(Format::Markdown);
    }
    match f.format.as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("") | Some("text") => Ok(Format::Text),
        Some("markdown") => Ok(Format::Markdown),
        Some("json") => Ok(Format::Json),
        Some(_) => bail!(
            "Invalid format '{}'. Valid values are: text, markdown, json",
            f.format.as_deref().unwrap_or_default()
        ),
    }
}

fn page_size() -> i64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) }
}

pub fn versions() -> serde_json::Value {
    let (a, b, c) = saker_rules::load::ENGINE_VERSION;
    json!({
        "saker_version": env!("CARGO_PKG_VERSION"),
        "falco_version": FALCO_COMPAT_VERSION,
        "engine_version": b.to_string(),
        "engine_version_semver": format!("{a}.{b}.{c}"),
        "driver": "saker modern eBPF probe (CO-RE, BTF)",
    })
}

fn print_version(json: bool) {
    if json {
        println!("{}", versions());
        return;
    }
    let (a, b, c) = saker_rules::load::ENGINE_VERSION;
    println!("Saker version: {}", env!("CARGO_PKG_VERSION"));
    println!("Falco compatibility: {FALCO_COMPAT_VERSION} (rules, falco.yaml, CLI)");
    println!("Engine:        {a}.{b}.{c}");
    println!("Driver:        saker modern eBPF probe (CO-RE, BTF)");
}

/// Falco's -i: syscalls ignored for performance. Saker's equivalent: every syscall the event
/// table knows that the probe never captures.
fn print_ignored() {
    let captured: std::collections::BTreeSet<&str> =
        saker_probe::SYSCALLS.iter().map(|d| d.name).collect();
    let mut names: Vec<&str> = saker_event::table::all_names()
        .filter(|n| saker_event::table::syscall_code(n).is_some() && !captured.contains(n))
        .collect();
    names.sort_unstable();
    names.dedup();
    println!("Ignored syscall(s):");
    for n in names {
        println!("- {n}");
    }
    println!();
}

/// `-V`: every file is loaded in order into one engine; exit 1 when any fails. Text: one
/// summary per file on stdout (errors with it); warnings go to stderr. JSON: Falco's document.
fn validate(
    files: &[PathBuf],
    cfg: &Config,
    opts: &Inputs,
    f: &FalcoFlags,
    json: bool,
) -> anyhow::Result<i32> {
    tracing::info!(
        "Validating rules file(s): {}",
        files
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let lo = crate::rules::load_options(cfg, opts);
    let (ok, results) = match saker_rules::validate::validate(files, lo.clone()) {
        Ok(x) => x,
        // Falco's -V ends with status 1 on an unreadable file too.
        Err(e) => {
            tracing::error!("{e}");
            return Ok(1);
        }
    };
    let describe = (ok && (f.describe_all || f.describe.is_some()))
        .then(|| crate::rules::load_paths(files, lo, true))
        .transpose()?;
    if json {
        let mut doc: serde_json::Value = serde_json::from_str(&results_to_json(&results))?;
        if let Some(l) = &describe {
            if let Some(o) = doc.as_object_mut() {
                o.insert(
                    "falco_describe_results".into(),
                    describe_json(&l.ruleset, f.describe.as_deref())?,
                );
            }
        }
        println!("{doc}");
    } else {
        let mut summary = Vec::new();
        for r in &results {
            eprint!("{}", r.to_text());
            summary.push(r.summary());
        }
        println!("{}", summary.join("\n"));
        if let Some(l) = &describe {
            println!();
            print_described(&l.ruleset, f.describe.as_deref(), false)?;
        }
    }
    Ok(if ok { 0 } else { 1 })
}

fn wrap(text: &str, indent: usize, line_len: usize) -> String {
    let mut out = String::new();
    let mut len = 0;
    for word in text.split_whitespace() {
        if len + word.len() < line_len - indent {
            len += word.len() + 1;
        } else {
            out.push('\n');
            out.push_str(&" ".repeat(indent));
            len = word.len() + 1;
        }
        out.push_str(word);
        out.push(' ');
    }
    out
}

fn selected_rules<'a>(
    rs: &'a Ruleset,
    name: Option<&str>,
) -> anyhow::Result<Vec<&'a saker_rules::ruleset::RuleInfo>> {
    let all: Vec<_> = rs.rules().map(|(_, i)| i).collect();
    match name {
        None => Ok(all),
        Some(n) => {
            let found: Vec<_> = all.into_iter().filter(|i| i.name == n).collect();
            if found.is_empty() {
                bail!("Rule '{n}' is not loaded");
            }
            Ok(found)
        }
    }
}

fn describe_json(rs: &Ruleset, name: Option<&str>) -> anyhow::Result<serde_json::Value> {
    let rules: Vec<serde_json::Value> = selected_rules(rs, name)?
        .into_iter()
        .map(|r| {
            json!({
                "info": {
                    "name": r.name,
                    "condition": r.condition,
                    "priority": r.priority.as_str(),
                    "output": r.output,
                    "description": r.desc,
                    "enabled": r.enabled,
                    "source": r.source,
                    "capture": r.capture,
                    "capture_duration": r.capture_duration,
                    "tags": r.tags,
                },
                "details": {
                    "exception_fields": r.exception_fields,
                    "condition_compiled": r.condition,
                    "output_compiled": r.output,
                }
            })
        })
        .collect();
    Ok(json!({ "rules": rules }))
}

/// `-L` / `-l RULE`: Falco's two columns (name, wrapped description), or JSON.
fn print_described(rs: &Ruleset, name: Option<&str>, json: bool) -> anyhow::Result<()> {
    if json {
        println!("{}", describe_json(rs, name)?);
        return Ok(());
    }
    println!("{:<50} Description", "Rule");
    println!("{:<50} -----------", "----");
    for r in selected_rules(rs, name)? {
        println!("{:<50} {}\n", r.name, wrap(&r.desc, 51, 110));
    }
    Ok(())
}

pub fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    let d = sha2::Sha256::digest(data);
    d.iter().map(|b| format!("{b:02x}")).collect()
}

fn uname() -> serde_json::Value {
    // SAFETY: uname fills the zeroed struct; the fields are NUL-terminated C strings.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return serde_json::Value::Null;
    }
    let s = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    json!({
        "sysname": s(&u.sysname),
        "nodename": s(&u.nodename),
        "release": s(&u.release),
        "version": s(&u.version),
        "machine": s(&u.machine),
    })
}

/// The kernel release (`uname -r`).
pub fn kernel_release() -> String {
    uname()["release"].as_str().unwrap_or_default().to_string()
}

/// `--support`: one JSON document with versions, kernel, command line, the merged config and
/// every loaded rules file (content and sha256).
fn support(cfg: &Config, opts: &Inputs, rules_files: &[PathBuf]) -> anyhow::Result<String> {
    let loaded = saker_config::load(opts.config.as_deref(), &opts.options)?;
    let mut config_files = Vec::new();
    for p in &loaded.files {
        let data = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        config_files.push(json!({"name": p.display().to_string(), "sha256": sha256_hex(&data)}));
    }
    let mut rules = Vec::new();
    for p in rules_files {
        let data = std::fs::read(p).with_context(|| format!("reading {}", p.display()))?;
        rules.push(json!({
            "name": p.display().to_string(),
            "sha256": sha256_hex(&data),
            "variants": [{"content": String::from_utf8_lossy(&data)}],
        }));
    }
    let config_text = match &loaded.source {
        Some(p) => std::fs::read_to_string(p).unwrap_or_default(),
        None => String::new(),
    };
    let doc = json!({
        "version": env!("CARGO_PKG_VERSION"),
        "system_info": uname(),
        "engine_info": versions(),
        "cmdline": std::env::args().collect::<Vec<_>>().join(" "),
        "config": config_text,
        "config_files": config_files,
        "engine_kind": cfg.engine.kind,
        "rules_files": rules,
    });
    Ok(doc.to_string())
}

/// `--dry-run`: config and rules are loaded and checked, the probe selection computed, and
/// nothing is opened (no root needed).
fn dry_run(cfg: &Config, opts: &Inputs) -> anyhow::Result<i32> {
    let loaded = crate::rules::load(cfg, opts)?;
    let pc = crate::setup::probe_config(&loaded.ruleset, cfg)?;
    let (sel, missing) = pc.selected();
    if cfg.webserver.enabled {
        crate::outputs_cfg::web_addr(cfg)?;
    }
    tracing::info!(
        "dry run: config OK, {} rules enabled from {}, {} syscalls selected{}",
        loaded.ruleset.enabled().len(),
        loaded.sources.join(", "),
        sel.len(),
        if missing.is_empty() {
            String::new()
        } else {
            format!(" (not captured by the probe: {})", missing.join(", "))
        }
    );
    Ok(0)
}

/// `-P`: the pid file exists while Saker runs.
struct PidFile(PathBuf);

impl PidFile {
    fn create(p: &Path) -> anyhow::Result<PidFile> {
        std::fs::write(p, format!("{}\n", std::process::id()))
            .with_context(|| format!("writing pid file {}", p.display()))?;
        Ok(PidFile(p.to_path_buf()))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The event sources Saker knows. Returns whether the syscall source is off; the k8s_audit
/// source runs when its input is configured (`plugins`).
const SOURCES: &[&str] = &["syscall", "k8s_audit"];

fn check_sources(f: &FalcoFlags) -> anyhow::Result<bool> {
    if !f.enable_source.is_empty() && !f.disable_source.is_empty() {
        bail!("--enable-source and --disable-source cannot be used together");
    }
    for s in f.enable_source.iter().chain(&f.disable_source) {
        if !SOURCES.contains(&s.as_str()) {
            bail!(
                "unknown event source {s:?} in --enable-source/--disable-source (known: {})",
                SOURCES.join(", ")
            );
        }
    }
    Ok(f.disable_source.iter().any(|s| s == "syscall")
        || (!f.enable_source.is_empty() && !f.enable_source.iter().any(|s| s == "syscall")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_lines_within_the_column() {
        let w = wrap(&"word ".repeat(40), 51, 110);
        for line in w.lines() {
            assert!(line.trim_end().len() <= 110, "{line:?}");
        }
        assert!(w.lines().count() > 1);
        assert!(w.lines().nth(1).unwrap().starts_with(&" ".repeat(51)));
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
