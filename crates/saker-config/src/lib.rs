//! saker.yaml: Falco's `falco.yaml` key names, `-o key=value` overrides,
//! warnings for unknown keys and errors that name the offending path.
//!
//! ```no_run
//! let loaded = saker_config::load(None, &["webserver.listen_port=9000".to_string()])?;
//! for w in &loaded.warnings { eprintln!("{w}"); }
//! assert_eq!(loaded.config.webserver.listen_port, 9000);
//! # Ok::<(), saker_config::ConfigError>(())
//! ```

mod compat;
mod model;
mod overrides;

use std::path::{Path, PathBuf};

pub use compat::{buffer_sizes, parse_interval, LogLevel, BUF_SIZE_PRESETS};
pub use model::*;
pub use overrides::{apply_override, substitute_env};

/// Where the config is looked for when `-c` is not given.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/saker/saker.yaml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: invalid YAML: {source}")]
    Yaml {
        path: String,
        source: serde_norway::Error,
    },
    #[error("invalid -o override '{arg}': {reason}")]
    BadOverride { arg: String, reason: String },
    /// A value of the wrong type or out of range; `path` is the dotted key.
    #[error("config error at '{path}': {message}")]
    BadValue { path: String, message: String },
}

/// A loaded configuration with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    /// "unknown config key 'a.b' (ignored)", "falco.yaml key 'x' is not supported and has no
    /// effect" and similar.
    pub warnings: Vec<String>,
    /// The file read, `None` when defaults were used.
    pub source: Option<PathBuf>,
    /// Every config file merged, the main one first, then `config_files` entries in order.
    pub files: Vec<PathBuf>,
    /// `config_files` directories read (watched for new files).
    pub folders: Vec<PathBuf>,
}

/// Loads `path` (or [`DEFAULT_CONFIG_PATH`] if it exists, else defaults), merges the files of
/// `config_files` into it, then applies the `key=value` overrides in order.
pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Loaded, ConfigError> {
    let (text, source) = match path {
        Some(p) => (read(p)?, Some(p.to_path_buf())),
        None if Path::new(DEFAULT_CONFIG_PATH).is_file() => {
            let p = Path::new(DEFAULT_CONFIG_PATH);
            (read(p)?, Some(p.to_path_buf()))
        }
        None => (String::new(), None),
    };
    let name = source
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "<defaults>".into());
    build(&text, &name, source.as_deref(), overrides)
}

fn read(p: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
        path: p.to_path_buf(),
        source,
    })
}

fn parse_root(text: &str, name: &str) -> Result<serde_norway::Value, ConfigError> {
    let mut root: serde_norway::Value = if text.trim().is_empty() {
        serde_norway::Value::Mapping(Default::default())
    } else {
        serde_norway::from_str(text).map_err(|source| ConfigError::Yaml {
            path: name.to_string(),
            source,
        })?
    };
    if root.is_null() {
        root = serde_norway::Value::Mapping(Default::default());
    }
    if !root.is_mapping() {
        return Err(ConfigError::BadValue {
            path: "<root>".into(),
            message: format!("{name}: the config must be a mapping of keys"),
        });
    }
    Ok(root)
}

/// Parses config text (`name` is used in messages) and applies overrides.
pub fn from_yaml_str(text: &str, name: &str, overrides: &[String]) -> Result<Loaded, ConfigError> {
    build(text, name, None, overrides)
}

fn is_config_files_override(o: &str) -> bool {
    o.split_once('=')
        .is_some_and(|(k, _)| k.trim() == "config_files" || k.trim().starts_with("config_files["))
}

fn build(
    text: &str,
    name: &str,
    main: Option<&Path>,
    overrides: &[String],
) -> Result<Loaded, ConfigError> {
    let mut root = parse_root(text, name)?;
    // As Falco does: `-o config_files=...` first, then the included files, then the other `-o`.
    let (cf, rest): (Vec<&String>, Vec<&String>) =
        overrides.iter().partition(|o| is_config_files_override(o));
    for o in cf {
        apply_override(&mut root, o)?;
    }
    let mut files: Vec<PathBuf> = main.map(Path::to_path_buf).into_iter().collect();
    let mut folders = Vec::new();
    compat::merge_config_files(&mut root, main, &mut files, &mut folders)?;
    let (config, mut warnings, root) = typed(root, &rest)?;
    validate(&config)?;
    warnings.extend(
        config
            .append_output
            .iter()
            .enumerate()
            .filter(|(_, a)| a.is_empty())
            .map(|(i, _)| {
                format!("append_output[{i}] adds nothing (no extra_output, extra_fields or suggested_output); ignored")
            }),
    );
    warnings.extend(
        compat::unsupported_keys(&root, &config)
            .into_iter()
            .map(|k| format!("falco.yaml key '{k}' is not supported and has no effect")),
    );
    Ok(Loaded {
        config,
        warnings,
        source: main.map(Path::to_path_buf),
        files,
        folders,
    })
}

/// Applies the overrides and converts. An override whose YAML value does not fit its key's type
/// (`program_output.program=jq '{text: .output}'` parses as a map) is taken as a plain string.
fn typed(
    base: serde_norway::Value,
    overrides: &[&String],
) -> Result<(Config, Vec<String>, serde_norway::Value), ConfigError> {
    let mut literal = vec![false; overrides.len()];
    loop {
        let mut root = base.clone();
        for (o, &lit) in overrides.iter().zip(&literal) {
            overrides::apply_override_as(&mut root, o, lit)?;
        }
        substitute_env(&mut root);
        match from_value(root.clone()) {
            Ok((c, w)) => return Ok((c, w, root)),
            Err(ConfigError::BadValue { path, message }) => {
                let retry = overrides.iter().enumerate().rev().find(|(i, o)| {
                    !literal[*i]
                        && overrides::parses_as_non_string(o)
                        && overrides::override_path(o).as_deref() == Some(path.as_str())
                });
                match retry {
                    Some((i, _)) => literal[i] = true,
                    None => return Err(ConfigError::BadValue { path, message }),
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Typed conversion: unknown keys become warnings, type errors carry the path.
fn from_value(root: serde_norway::Value) -> Result<(Config, Vec<String>), ConfigError> {
    let mut unknown = Vec::new();
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(root, &mut track);
    let res: Result<Config, _> = serde_ignored::deserialize(de, |p| unknown.push(p.to_string()));
    match res {
        Ok(c) => Ok((
            c,
            unknown
                .into_iter()
                .map(|k| format!("unknown config key '{k}' (ignored)"))
                .collect(),
        )),
        Err(e) => Err(ConfigError::BadValue {
            path: track.path().to_string(),
            message: e.to_string(),
        }),
    }
}

fn bad(path: &str, message: &str) -> ConfigError {
    ConfigError::BadValue {
        path: path.into(),
        message: message.into(),
    }
}

/// Cross-field checks Falco also makes (enabled outputs need their target).
fn validate(c: &Config) -> Result<(), ConfigError> {
    if c.rules_file.is_some() && c.rules_files.is_some() {
        return Err(bad(
            "rules_files",
            "both 'rules_files' and the legacy 'rules_file' are set; use only 'rules_files'",
        ));
    }
    if c.file_output.enabled && c.file_output.filename.is_empty() {
        return Err(bad(
            "file_output.filename",
            "file_output is enabled but no filename is set",
        ));
    }
    if c.program_output.enabled && c.program_output.program.is_empty() {
        return Err(bad(
            "program_output.program",
            "program_output is enabled but no program is set",
        ));
    }
    if c.http_output.enabled && c.http_output.url.is_empty() {
        return Err(bad(
            "http_output.url",
            "http_output is enabled but no url is set",
        ));
    }
    if c.cloudwatch_output.enabled && c.cloudwatch_output.log_group.is_empty() {
        return Err(bad(
            "cloudwatch_output.log_group",
            "cloudwatch_output is enabled but no log_group is set",
        ));
    }
    let cw = &c.cloudwatch_output;
    if cw.batch_max_events == 0 || cw.batch_max_events > 10_000 {
        return Err(bad(
            "cloudwatch_output.batch_max_events",
            "must be between 1 and 10000",
        ));
    }
    if cw.batch_max_bytes < 1024 || cw.batch_max_bytes > 1_048_576 {
        return Err(bad(
            "cloudwatch_output.batch_max_bytes",
            "must be between 1024 and 1048576",
        ));
    }
    if c.webserver
        .listen_address
        .parse::<std::net::IpAddr>()
        .is_err()
    {
        return Err(bad("webserver.listen_address", "must be an IP address"));
    }
    if !(0.0..=1.0).contains(&c.syscall_event_drops.threshold) {
        return Err(bad(
            "syscall_event_drops.threshold",
            "must be between 0 and 1",
        ));
    }
    let acts = &c.syscall_event_drops.actions;
    if acts.contains(&DropAction::Ignore)
        && (acts.contains(&DropAction::Log) || acts.contains(&DropAction::Alert))
    {
        return Err(bad(
            "syscall_event_drops.actions",
            "'ignore' cannot be combined with 'log' or 'alert'",
        ));
    }
    if c.syscall_event_timeouts.max_consecutives == 0 {
        return Err(bad(
            "syscall_event_timeouts.max_consecutives",
            "must be greater than 0",
        ));
    }
    if !c.outputs_queue.spool_dir.is_empty() && c.outputs_queue.spool_max_bytes < 65_536 {
        return Err(bad(
            "outputs_queue.spool_max_bytes",
            "must be at least 65536 when spool_dir is set",
        ));
    }
    if c.container_engines.hold_ms > 10_000 {
        return Err(bad(
            "container_engines.hold_ms",
            "must be at most 10000 (milliseconds)",
        ));
    }
    if c.outputs.rate < 0.0 || c.outputs.per_rule_rate < 0.0 {
        return Err(bad("outputs.rate", "rates must not be negative"));
    }
    compat::validate(c)
}

#[cfg(test)]
mod tests;
