//! saker.yaml: Falco's `falco.yaml` key names, `-o key=value` overrides,
//! warnings for unknown keys and errors that name the offending path.
//!
//! ```no_run
//! let loaded = saker_config::load(None, &["webserver.listen_port=9000".to_string()])?;
//! for w in &loaded.warnings { eprintln!("{w}"); }
//! assert_eq!(loaded.config.webserver.listen_port, 9000);
//! # Ok::<(), saker_config::ConfigError>(())
//! ```

mod model;
mod overrides;

use std::path::{Path, PathBuf};

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
    /// "unknown config key 'a.b' (ignored)" and similar.
    pub warnings: Vec<String>,
    /// The file read, `None` when defaults were used.
    pub source: Option<PathBuf>,
}

/// Loads `path` (or [`DEFAULT_CONFIG_PATH`] if it exists, else defaults),
/// then applies the `key=value` overrides in order.
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
    let mut loaded = from_yaml_str(&text, &name, overrides)?;
    loaded.source = source;
    Ok(loaded)
}

fn read(p: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
        path: p.to_path_buf(),
        source,
    })
}

/// Parses config text (`name` is used in messages) and applies overrides.
pub fn from_yaml_str(text: &str, name: &str, overrides: &[String]) -> Result<Loaded, ConfigError> {
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
            message: "the config must be a mapping of keys".into(),
        });
    }
    for o in overrides {
        apply_override(&mut root, o)?;
    }
    substitute_env(&mut root);
    let (config, warnings) = from_value(root)?;
    validate(&config)?;
    Ok(Loaded {
        config,
        warnings,
        source: None,
    })
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
    if c.outputs.rate < 0.0 || c.outputs.per_rule_rate < 0.0 {
        return Err(bad("outputs.rate", "rates must not be negative"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
