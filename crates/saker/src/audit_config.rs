//! The audit input from Falco's plugin configuration: the `plugins` entries named `k8saudit`
//! or `k8saudit-eks` (and `json`), selected by `load_plugins`, with their `open_params` and
//! `init_config`, so that a Falco user's values (and the Falco chart's) carry over.
//! `library_path` has no meaning for a built-in source and is not read.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use serde_json::Value as Json;

/// Where audit events come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A file or directory read once to the end (k8saudit `open_params` without scheme).
    File(PathBuf),
    /// The API server's audit webhook.
    Webhook {
        addr: SocketAddr,
        path: String,
        tls: bool,
    },
    /// EKS: the cluster's audit streams in CloudWatch Logs.
    Eks(EksConfig),
}

pub use saker_k8saudit::eks::EksConfig;

#[derive(Debug, Clone, PartialEq)]
pub struct AuditConfig {
    pub input: Option<Input>,
    pub max_event_size: usize,
    pub webhook_max_batch_size: usize,
    pub ssl_certificate: PathBuf,
    /// `init_config` keys Saker reads but that change nothing (logged once at start).
    pub inert_keys: Vec<String>,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            input: None,
            max_event_size: saker_k8saudit::DEFAULT_MAX_EVENT_SIZE,
            webhook_max_batch_size: 12_582_912,
            ssl_certificate: PathBuf::from("/etc/falco/falco.pem"),
            inert_keys: Vec::new(),
        }
    }
}

/// Where the EKS poller keeps its checkpoint unless `init_config.checkpoint_file` says
/// otherwise (the chart mounts a volume there).
pub const DEFAULT_CHECKPOINT: &str = "/var/lib/saker/k8saudit-eks-checkpoint.json";

/// `init_config` as Falco takes it: a YAML map, a JSON object in a string, or empty.
fn init_config(
    p: &serde_norway::Value,
    name: &str,
) -> anyhow::Result<serde_json::Map<String, Json>> {
    let v = match p.get("init_config") {
        None | Some(serde_norway::Value::Null) => return Ok(Default::default()),
        Some(serde_norway::Value::String(s)) if s.trim().is_empty() => {
            return Ok(Default::default())
        }
        Some(serde_norway::Value::String(s)) => serde_json::from_str::<Json>(s)
            .with_context(|| format!("plugins[{name}].init_config is not valid JSON"))?,
        Some(other) => {
            serde_json::to_value(other).with_context(|| format!("plugins[{name}].init_config"))?
        }
    };
    match v {
        Json::Object(m) => Ok(m),
        _ => bail!("plugins[{name}].init_config must be a map"),
    }
}

fn uint(m: &serde_json::Map<String, Json>, plugin: &str, key: &str) -> anyhow::Result<Option<u64>> {
    match m.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) => n.as_u64().map(Some).ok_or_else(|| {
            anyhow!("plugins[{plugin}].init_config.{key} must be a non-negative integer")
        }),
        Some(Json::String(s)) => s.parse().map(Some).map_err(|_| {
            anyhow!("plugins[{plugin}].init_config.{key} must be a non-negative integer, not {s:?}")
        }),
        Some(_) => bail!("plugins[{plugin}].init_config.{key} must be a non-negative integer"),
    }
}

fn string(m: &serde_json::Map<String, Json>, key: &str) -> Option<String> {
    m.get(key)
        .and_then(Json::as_str)
        .map(str::to_string)
        .filter(|s| !s.is_empty())
}

impl AuditConfig {
    pub fn from_config(cfg: &saker_config::Config) -> anyhow::Result<AuditConfig> {
        let mut out = AuditConfig::default();
        let named = |n: &str| {
            cfg.plugins
                .iter()
                .find(|p| p.get("name").and_then(serde_norway::Value::as_str) == Some(n))
        };
        let loaded = |n: &str| match &cfg.load_plugins {
            Some(l) => l.iter().any(|x| x == n),
            None => named(n).is_some(),
        };
        let k8s = loaded("k8saudit").then(|| named("k8saudit")).flatten();
        let eks = loaded("k8saudit-eks")
            .then(|| named("k8saudit-eks"))
            .flatten();
        if k8s.is_some() && eks.is_some() {
            bail!("plugins: k8saudit and k8saudit-eks both feed the k8s_audit source; load only one of them");
        }
        if let Some(p) = k8s {
            let m = init_config(p, "k8saudit")?;
            for k in m.keys() {
                match k.as_str() {
                    "maxEventSize" | "webhookMaxBatchSize" | "sslCertificate" => {}
                    "useAsync" => out.inert_keys.push("plugins[k8saudit].init_config.useAsync".into()),
                    other => bail!("plugins[k8saudit].init_config: unknown key {other:?} (known: maxEventSize, webhookMaxBatchSize, sslCertificate, useAsync)"),
                }
            }
            if let Some(v) = uint(&m, "k8saudit", "maxEventSize")? {
                out.max_event_size = v as usize;
            }
            if let Some(v) = uint(&m, "k8saudit", "webhookMaxBatchSize")? {
                out.webhook_max_batch_size = v as usize;
            }
            if let Some(v) = string(&m, "sslCertificate") {
                out.ssl_certificate = PathBuf::from(v);
            }
            let params = p
                .get("open_params")
                .and_then(serde_norway::Value::as_str)
                .unwrap_or("")
                .trim();
            out.input = Some(parse_open_params(params)?);
        }
        if let Some(p) = eks {
            let m = init_config(p, "k8saudit-eks")?;
            let mut e = EksConfig {
                cluster: p
                    .get("open_params")
                    .and_then(serde_norway::Value::as_str)
                    .unwrap_or("")
                    .trim()
                    .to_string(),
                region: string(&m, "region"),
                profile: string(&m, "profile"),
                polling_interval: Duration::from_secs(5),
                shift: Duration::from_secs(1),
                buffer_size: 200,
                max_event_size: saker_k8saudit::DEFAULT_MAX_EVENT_SIZE,
                // An empty string turns the checkpoint off (upstream behaviour).
                checkpoint_file: match m.get("checkpoint_file").and_then(Json::as_str) {
                    Some("") => None,
                    Some(p) => Some(PathBuf::from(p)),
                    None => Some(PathBuf::from(DEFAULT_CHECKPOINT)),
                },
                start_at_now: m
                    .get("start_at_now")
                    .and_then(Json::as_bool)
                    .unwrap_or(false),
            };
            if e.cluster.is_empty() {
                bail!("plugins[k8saudit-eks].open_params: cluster name can't be empty");
            }
            for k in m.keys() {
                match k.as_str() {
                    "region" | "profile" | "polling_interval" | "shift" | "buffer_size"
                    | "max_event_size" | "checkpoint_file" | "start_at_now" => {}
                    "use_async" => out.inert_keys.push("plugins[k8saudit-eks].init_config.use_async".into()),
                    other => bail!("plugins[k8saudit-eks].init_config: unknown key {other:?} (known: region, profile, polling_interval, shift, buffer_size, max_event_size, use_async, checkpoint_file, start_at_now)"),
                }
            }
            if let Some(v) = uint(&m, "k8saudit-eks", "polling_interval")? {
                e.polling_interval = Duration::from_secs(v.max(1));
            }
            // Seconds, as documented (upstream passes the value unscaled: nanoseconds).
            if let Some(v) = uint(&m, "k8saudit-eks", "shift")? {
                e.shift = Duration::from_secs(v);
            }
            if let Some(v) = uint(&m, "k8saudit-eks", "buffer_size")? {
                e.buffer_size = (v as usize).max(1);
            }
            if let Some(v) = uint(&m, "k8saudit-eks", "max_event_size")? {
                out.max_event_size = v as usize;
            }
            e.max_event_size = out.max_event_size;
            out.input = Some(Input::Eks(e));
        }
        Ok(out)
    }
}

/// k8saudit's `open_params`: a path, or `http(s)://HOST:PORT/PATH` (an empty HOST means all
/// interfaces, as upstream and the Falco chart's `http://:9765/k8s-audit`).
pub fn parse_open_params(p: &str) -> anyhow::Result<Input> {
    if p.is_empty() {
        bail!("plugins[k8saudit].open_params is empty: give a file, a directory or http://HOST:PORT/PATH");
    }
    let Some((scheme, rest)) = p.split_once("://") else {
        let path = PathBuf::from(p);
        if !path.exists() {
            bail!("plugins[k8saudit].open_params: {p}: no such file or directory");
        }
        return Ok(Input::File(path));
    };
    let tls = match scheme {
        "http" => false,
        "https" => true,
        "file" => bail!("plugins[k8saudit].open_params: follow mode (file://) is not supported by Saker yet; give the path without scheme to read it once"),
        other => bail!("plugins[k8saudit].open_params: scheme {other:?} is not supported"),
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => bail!("plugins[k8saudit].open_params {p:?}: the URL needs a path, e.g. /k8s-audit"),
    };
    let (host, port) = hostport
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("plugins[k8saudit].open_params {p:?}: the URL needs a port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| anyhow!("plugins[k8saudit].open_params {p:?}: bad port {port:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: std::net::IpAddr = if host.is_empty() {
        std::net::Ipv4Addr::UNSPECIFIED.into()
    } else if host == "localhost" {
        std::net::Ipv4Addr::LOCALHOST.into()
    } else {
        host.parse()
            .map_err(|_| anyhow!("plugins[k8saudit].open_params {p:?}: HOST must be an IP address, localhost or empty"))?
    };
    Ok(Input::Webhook {
        addr: SocketAddr::new(ip, port),
        path: path.to_string(),
        tls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(yaml: &str) -> saker_config::Config {
        saker_config::from_yaml_str(yaml, "t", &[]).unwrap().config
    }

    #[test]
    fn falco_chart_values_carry_over() {
        let c = AuditConfig::from_config(&cfg(
            "plugins:\n  - name: k8saudit\n    library_path: libk8saudit.so\n    init_config:\n      maxEventSize: 1000\n      webhookMaxBatchSize: 2000\n    open_params: \"http://:9765/k8s-audit\"\n  - name: json\n    library_path: libjson.so\n    init_config: \"\"\nload_plugins: [k8saudit, json]\n",
        ))
        .unwrap();
        assert_eq!(
            c.input,
            Some(Input::Webhook {
                addr: "0.0.0.0:9765".parse().unwrap(),
                path: "/k8s-audit".into(),
                tls: false
            })
        );
        assert_eq!((c.max_event_size, c.webhook_max_batch_size), (1000, 2000));
        // Not in load_plugins: no input.
        let off = AuditConfig::from_config(&cfg(
            "plugins:\n  - name: k8saudit\n    open_params: \"http://:9765/k8s-audit\"\nload_plugins: []\n",
        ))
        .unwrap();
        assert_eq!(off.input, None);
    }

    #[test]
    fn eks_values_and_errors() {
        let c = AuditConfig::from_config(&cfg(
            "plugins:\n  - name: k8saudit-eks\n    init_config: '{\"region\":\"eu-west-1\",\"shift\":10,\"polling_interval\":\"2\",\"use_async\":false}'\n    open_params: prod\n",
        ))
        .unwrap();
        let Some(Input::Eks(e)) = c.input else {
            panic!()
        };
        assert_eq!(
            (e.cluster.as_str(), e.region.as_deref()),
            ("prod", Some("eu-west-1"))
        );
        assert_eq!(
            (e.shift, e.polling_interval),
            (Duration::from_secs(10), Duration::from_secs(2))
        );
        assert_eq!(
            c.inert_keys,
            vec!["plugins[k8saudit-eks].init_config.use_async".to_string()]
        );
        let err = |y: &str| AuditConfig::from_config(&cfg(y)).unwrap_err().to_string();
        assert_eq!(
            err("plugins:\n  - name: k8saudit-eks\n"),
            "plugins[k8saudit-eks].open_params: cluster name can't be empty"
        );
        assert!(err(
            "plugins:\n  - name: k8saudit-eks\n    open_params: c\n    init_config: {shfit: 1}\n"
        )
        .contains("unknown key \"shfit\""));
        assert!(
            err("plugins:\n  - name: k8saudit\n    open_params: \"ftp://x:1/a\"\n")
                .contains("scheme \"ftp\" is not supported")
        );
        assert!(
            err("plugins:\n  - name: k8saudit\n    open_params: /nonexistent/audit.json\n")
                .contains("no such file")
        );
        assert!(err("plugins:\n  - {name: k8saudit, open_params: \"http://:1/a\"}\n  - {name: k8saudit-eks, open_params: c}\n").contains("load only one"));
    }
}
