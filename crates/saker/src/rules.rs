//! Which rules a run loads: config `rules_files` (or `-r`), the built-in
//! ruleset embedded in the binary, and rule selections from config and flags.

use std::path::{Path, PathBuf};

use anyhow::bail;
use saker_config::{Config, RuleMatching as CfgMatching, RuleSelection};
use saker_rules::engine::{AppendOutput, Engine, ExtraField, LoadOptions, RuleMatching, Selection};
use saker_rules::ruleset::Ruleset;

use crate::setup::Inputs;

/// Saker's own ruleset, shipped inside the binary.
pub const BUILTIN_RULES: &str = include_str!("../../../rules/saker_rules.yaml");
/// Where packages and the image install the same file; when absent the embedded copy is used.
pub const BUILTIN_RULES_PATH: &str = "/etc/saker/saker_rules.yaml";

/// A loaded ruleset and the files it came from; warnings are printed while loading.
pub struct Loaded {
    pub ruleset: Ruleset,
    /// The files (or `builtin`) that were loaded, for metrics and logs.
    pub sources: Vec<String>,
    /// Every rules file read (directories expanded), for sha256 metrics, `--support` and
    /// `watch_config_files`.
    pub files: Vec<PathBuf>,
    /// Rules directories named (watched for new files).
    pub folders: Vec<PathBuf>,
}

pub fn load_options(cfg: &Config, opts: &Inputs) -> LoadOptions {
    let mut selections = Vec::new();
    for s in &cfg.rules {
        let (sel, enable) = match s {
            RuleSelection::Enable(s) => (s, true),
            RuleSelection::Disable(s) => (s, false),
        };
        if let Some(r) = &sel.rule {
            selections.push(if enable {
                Selection::EnableRule(r.clone())
            } else {
                Selection::DisableRule(r.clone())
            });
        }
        if let Some(t) = &sel.tag {
            selections.push(if enable {
                Selection::EnableTag(t.clone())
            } else {
                Selection::DisableTag(t.clone())
            });
        }
    }
    // `--enable-rule X` means "only X" like Falco's `-D`/`-t` family: disable all first.
    if !opts.enable_rule.is_empty() || !opts.enable_tag.is_empty() {
        selections.push(Selection::DisableRule("*".into()));
    }
    selections.extend(opts.enable_rule.iter().cloned().map(Selection::EnableRule));
    selections.extend(opts.enable_tag.iter().cloned().map(Selection::EnableTag));
    selections.extend(
        opts.disable_rule
            .iter()
            .cloned()
            .map(Selection::DisableRule),
    );
    selections.extend(opts.disable_tag.iter().cloned().map(Selection::DisableTag));
    let append_output = cfg.append_output.iter().filter_map(append_output).collect();
    LoadOptions {
        append_output,
        min_priority: cfg.priority,
        rule_matching: match cfg.rule_matching {
            CfgMatching::First => RuleMatching::First,
            CfgMatching::All => RuleMatching::All,
        },
        selections,
        ..LoadOptions::default()
    }
}

/// One (typed, validated) `append_output` entry of the config, as the rules engine takes it;
/// `None` for an entry that adds nothing (the config loader warned about it).
fn append_output(a: &saker_config::AppendOutput) -> Option<AppendOutput> {
    if a.is_empty() {
        return None;
    }
    let extra_fields = a
        .extra_fields
        .iter()
        .map(|f| match f {
            saker_config::ExtraField::Field(name) => ExtraField::Field(name.clone()),
            saker_config::ExtraField::Format { key, format } => ExtraField::Format {
                key: key.clone(),
                format: format.clone(),
            },
        })
        .collect();
    Some(AppendOutput {
        match_source: a.matches.source.clone(),
        match_tags: a.matches.tags.clone(),
        match_rule: a.matches.rule.clone(),
        extra_output: a.extra_output.clone(),
        extra_fields,
        suggested_output: a.suggested_output,
    })
}

/// Loads the rules a run uses. `-r` replaces the configured files. A missing `-r` path is an
/// error (as Falco's "Could not open file"); a missing `rules_files` entry of the config is
/// skipped with a warning (Falco skips it silently).
pub fn load(cfg: &Config, opts: &Inputs) -> anyhow::Result<Loaded> {
    let mut lo = load_options(cfg, opts);
    // `static.<name>` fields for conditions and outputs.
    lo.static_fields = cfg.static_fields.clone();
    lo.append_output.extend(static_fields_output(cfg));
    if opts.rules.is_empty() {
        let paths = cfg.rules_paths();
        let configured = cfg.rules_files.is_some() || cfg.rules_file.is_some();
        let mut kept = Vec::new();
        for p in paths {
            let builtin = p == Path::new(BUILTIN_RULES_PATH);
            if p.exists() || builtin {
                kept.push(p);
            } else if configured {
                tracing::warn!("rules file {} does not exist, skipped", p.display());
            }
        }
        if kept.is_empty() {
            bail!(
                "no rules file to load: none of the rules_files entries exists; set rules_files or use -r"
            );
        }
        load_paths(&kept, lo, false)
    } else {
        load_paths(&opts.rules, lo, true)
    }
}

/// `static_fields`: every rule's output gets ` static_<name>=<value>` and its `output_fields`
/// `static.<name>`, as Falco's suggested output does with static fields.
fn static_fields_output(cfg: &Config) -> Option<AppendOutput> {
    if cfg.static_fields.is_empty() {
        return None;
    }
    let mut extra = String::new();
    let mut fields = Vec::new();
    for (k, v) in &cfg.static_fields {
        if !extra.is_empty() {
            extra.push(' ');
        }
        extra.push_str(&format!("static_{}={}", k.replace('.', "_"), v));
        fields.push(ExtraField::Format {
            key: format!("static.{k}"),
            format: v.clone(),
        });
    }
    Some(AppendOutput {
        match_source: None,
        match_tags: Vec::new(),
        match_rule: None,
        extra_output: Some(extra),
        extra_fields: fields,
        suggested_output: false,
    })
}

/// Rules files of a path: a directory's `*.yaml`/`*.yml` regular files in name order, else the
/// path itself.
fn expand(p: &Path) -> Vec<PathBuf> {
    if !p.is_dir() {
        return vec![p.to_path_buf()];
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(p)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.is_file() && f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

pub fn load_paths(paths: &[PathBuf], lo: LoadOptions, explicit: bool) -> anyhow::Result<Loaded> {
    let mut eng = Engine::new(lo);
    let mut results = Vec::new();
    let mut sources = Vec::new();
    let mut files = Vec::new();
    let mut folders = Vec::new();
    for p in paths {
        if p == Path::new(BUILTIN_RULES_PATH) && !p.exists() {
            results.push(eng.load_text("builtin:saker_rules.yaml", BUILTIN_RULES));
            sources.push("builtin".to_string());
            continue;
        }
        if !p.exists() {
            // Default locations (rules.d) may be absent; a path the user named may not.
            if explicit && !is_default_dir(p) {
                bail!("rules file {} does not exist", p.display());
            }
            continue;
        }
        if p.is_dir() {
            folders.push(p.clone());
        }
        files.extend(expand(p));
        results.extend(eng.load_path(p));
        sources.push(p.display().to_string());
    }
    for r in results
        .iter()
        .filter(|r| r.successful() && !r.warnings.is_empty())
    {
        tracing::warn!("warnings loading rules:\n{}", r.to_text().trim_end());
    }
    if !eng.ok() {
        let mut msg = String::new();
        for r in results.iter().filter(|r| !r.successful()) {
            msg.push_str(&r.to_text());
        }
        bail!("rules failed to load:\n{}", msg.trim_end());
    }
    Ok(Loaded {
        ruleset: eng.ruleset(),
        sources,
        files,
        folders,
    })
}

fn is_default_dir(p: &Path) -> bool {
    p == Path::new("/etc/saker/rules.d")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_rules_load_when_the_installed_copy_is_absent() {
        let cfg = Config::default();
        let l = load(&cfg, &Inputs::default()).unwrap();
        assert_eq!(l.sources[0], "builtin");
        assert!(
            l.ruleset.enabled().len() >= 20,
            "built-in ruleset too small"
        );
    }

    #[test]
    fn a_missing_configured_rules_file_is_skipped() {
        let dir = std::env::temp_dir().join(format!("saker-skip-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("r.yaml");
        std::fs::write(
            &f,
            "- rule: A\n  desc: a\n  condition: evt.type=open\n  output: a\n  priority: INFO\n",
        )
        .unwrap();
        let cfg = saker_config::from_yaml_str(
            &format!("rules_files: [/nonexistent/x.yaml, {}]\n", f.display()),
            "t",
            &[],
        )
        .unwrap()
        .config;
        let l = load(&cfg, &Inputs::default()).unwrap();
        assert_eq!(l.sources, vec![f.display().to_string()]);
        assert_eq!(l.files, vec![f.clone()]);
        let none = saker_config::from_yaml_str("rules_files: [/nonexistent/x.yaml]\n", "t", &[])
            .unwrap()
            .config;
        let e = load(&none, &Inputs::default()).err().unwrap();
        assert!(e.to_string().contains("no rules file to load"), "{e}");
    }

    #[test]
    fn static_fields_reach_output_and_fields() {
        let cfg = saker_config::from_yaml_str("static_fields: {cluster: prod}\n", "t", &[])
            .unwrap()
            .config;
        let a = static_fields_output(&cfg).unwrap();
        assert_eq!(a.extra_output.as_deref(), Some("static_cluster=prod"));
        assert!(
            matches!(&a.extra_fields[0], ExtraField::Format { key, format } if key == "static.cluster" && format == "prod")
        );
    }

    #[test]
    fn a_missing_rules_file_named_by_the_user_is_an_error() {
        let opts = Inputs {
            rules: vec!["/nonexistent/rules.yaml".into()],
            ..Default::default()
        };
        let e = load(&Config::default(), &opts).err().unwrap();
        assert!(e
            .to_string()
            .contains("/nonexistent/rules.yaml does not exist"));
    }

    #[test]
    fn append_output_from_config_reaches_alerts() {
        let cfg = saker_config::from_yaml_str(
            "append_output:\n  - match: {rule: A}\n    extra_output: \"extra=%proc.name\"\n",
            "t",
            &[],
        )
        .unwrap()
        .config;
        let lo = load_options(&cfg, &Inputs::default());
        assert_eq!(lo.append_output.len(), 1);
        assert_eq!(lo.append_output[0].match_rule.as_deref(), Some("A"));
        assert_eq!(
            lo.append_output[0].extra_output.as_deref(),
            Some("extra=%proc.name")
        );
    }

    #[test]
    fn enable_rule_keeps_only_the_named_rules() {
        let dir = std::env::temp_dir().join(format!("saker-sel-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("r.yaml");
        std::fs::write(
            &f,
            "- rule: A\n  desc: a\n  condition: evt.type=open\n  output: a\n  priority: INFO\n\
             - rule: B\n  desc: b\n  condition: evt.type=close\n  output: b\n  priority: INFO\n",
        )
        .unwrap();
        let opts = Inputs {
            rules: vec![f],
            enable_rule: vec!["B".into()],
            ..Default::default()
        };
        let l = load(&Config::default(), &opts).unwrap();
        let names: Vec<_> = l
            .ruleset
            .enabled()
            .iter()
            .map(|&i| l.ruleset.info(i).name.clone())
            .collect();
        assert_eq!(names, vec!["B".to_string()]);
    }
}
