//! HTTP(S) POST of each alert: the JSON document Falcosidekick accepts when
//! `json_output` is on, else the text line. Failed posts are retried with
//! exponential backoff, then dropped and counted.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_ENCODING, CONTENT_TYPE};

use std::error::Error as _;

use std::collections::BTreeMap;

use saker_rules::Priority;

use super::{error_chain, SinkCtx};
use crate::report::Reason;
use crate::OutputsError;

/// `http_output` (falco.yaml).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    pub enabled: bool,
    pub url: String,
    pub user_agent: String,
    /// Skip server certificate verification.
    pub insecure: bool,
    pub ca_cert: String,
    pub ca_bundle: String,
    pub ca_path: String,
    pub mtls: bool,
    pub client_cert: String,
    pub client_key: String,
    pub echo: bool,
    pub compress_uploads: bool,
    pub keep_alive: bool,
    /// Extra request headers.
    pub custom_headers: BTreeMap<String, String>,
    pub timeout_ms: u64,
    /// Attempts after the first before the alert is dropped.
    pub retries: u32,
    pub backoff_ms: u64,
    pub min_priority: Option<Priority>,
}

/// The system CA directory, used unless `ca_path` names another.
pub const DEFAULT_CA_PATH: &str = "/etc/ssl/certs";

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            enabled: false,
            url: String::new(),
            user_agent: "saker".into(),
            insecure: false,
            ca_cert: String::new(),
            ca_bundle: String::new(),
            ca_path: DEFAULT_CA_PATH.into(),
            mtls: false,
            client_cert: "/etc/saker/certs/client/client.crt".into(),
            client_key: "/etc/saker/certs/client/client.key".into(),
            echo: false,
            compress_uploads: false,
            keep_alive: true,
            custom_headers: BTreeMap::new(),
            timeout_ms: 5000,
            retries: 5,
            backoff_ms: 200,
            min_priority: None,
        }
    }
}

/// Builds the client from `http_output` (CA file, mTLS, headers, insecure).
pub fn client(cfg: &HttpOptions) -> Result<reqwest::Client, OutputsError> {
    let setup = |what: &str, e: &dyn std::fmt::Display| OutputsError::Setup {
        output: "http",
        message: format!("{what}: {e}"),
    };
    let mut headers = HeaderMap::new();
    for (k, v) in &cfg.custom_headers {
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|e| setup(&format!("header name '{k}'"), &e))?;
        let value =
            HeaderValue::from_str(v).map_err(|e| setup(&format!("header value of '{k}'"), &e))?;
        headers.insert(name, value);
    }
    let mut b = reqwest::Client::builder()
        .user_agent(cfg.user_agent.clone())
        .timeout(Duration::from_millis(cfg.timeout_ms.max(1)))
        .default_headers(headers)
        .danger_accept_invalid_certs(cfg.insecure);
    if !cfg.keep_alive {
        b = b.pool_max_idle_per_host(0);
    }
    for ca in [&cfg.ca_cert, &cfg.ca_bundle] {
        if ca.is_empty() {
            continue;
        }
        let pem = std::fs::read(ca).map_err(|e| setup(&format!("reading CA file {ca}"), &e))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| setup(&format!("CA file {ca}"), &e))?;
        for c in certs {
            b = b.add_root_certificate(c);
        }
    }
    for c in ca_path_roots(&cfg.ca_path)? {
        b = b.add_root_certificate(c);
    }
    if cfg.mtls {
        let mut pem = std::fs::read(&cfg.client_cert)
            .map_err(|e| setup(&format!("reading client_cert {}", cfg.client_cert), &e))?;
        pem.push(b'\n');
        pem.extend(
            std::fs::read(&cfg.client_key)
                .map_err(|e| setup(&format!("reading client_key {}", cfg.client_key), &e))?,
        );
        let id =
            reqwest::Identity::from_pem(&pem).map_err(|e| setup("client certificate/key", &e))?;
        b = b.identity(id);
    }
    b.build().map_err(|e| setup("building the HTTP client", &e))
}

/// The certificates of `http_output.ca_path`: a PEM file, or a directory whose PEM files are
/// all read (as curl's CAPATH; files that hold no certificate, such as OpenSSL's hash links
/// to CRLs, are skipped). Falco's default `/etc/ssl/certs` may be absent on minimal images,
/// so only a path the user chose must exist.
fn ca_path_roots(path: &str) -> Result<Vec<reqwest::Certificate>, OutputsError> {
    let err = |message: String| OutputsError::Setup {
        output: "http",
        message: format!("http_output.ca_path {path}: {message}"),
    };
    let default = DEFAULT_CA_PATH;
    if path.is_empty() || (path == default && !std::path::Path::new(path).exists()) {
        return Ok(Vec::new());
    }
    let meta = std::fs::metadata(path).map_err(|e| err(e.to_string()))?;
    if meta.is_file() {
        let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no PEM certificate in the file".into()));
        }
        return Ok(certs);
    }
    // Hash links and the bundle name the same files: read each real file once.
    let mut files = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(path).map_err(|e| err(e.to_string()))? {
        let p = entry.map_err(|e| err(e.to_string()))?.path();
        if let Ok(real) = std::fs::canonicalize(&p) {
            if real.is_file() {
                files.insert(real);
            }
        }
    }
    let mut out = Vec::new();
    for f in files {
        let Ok(pem) = std::fs::read(&f) else { continue };
        if !pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----") {
            continue;
        }
        out.extend(reqwest::Certificate::from_pem_bundle(&pem).unwrap_or_default());
    }
    if out.is_empty() {
        return Err(err("no PEM certificate in the directory".into()));
    }
    Ok(out)
}

pub async fn run(mut ctx: SinkCtx, cfg: HttpOptions, client: reqwest::Client) {
    let content_type = if ctx.fmt.json {
        "application/json"
    } else {
        "text/plain"
    };
    while let Some(a) = ctx.recv().await {
        let line = ctx.fmt.line(&a);
        let body: Vec<u8> = if cfg.compress_uploads {
            gzip(line.as_bytes())
        } else {
            line.into_bytes()
        };
        let mut attempt = 0u32;
        loop {
            let mut req = client.post(&cfg.url).header(CONTENT_TYPE, content_type);
            if cfg.compress_uploads {
                req = req.header(CONTENT_ENCODING, "gzip");
            }
            let res = req.body(body.clone()).send().await;
            let err = match res {
                Ok(r) if r.status().is_success() => {
                    if cfg.echo {
                        if let Ok(t) = r.text().await {
                            tracing::info!("{} output: response: {t}", ctx.name);
                        }
                    }
                    ctx.delivered(1);
                    break;
                }
                // A 4xx other than 408/429 will not get better by retrying.
                Ok(r) if r.status().is_client_error() && r.status() != 408 && r.status() != 429 => {
                    let why = format!("{} answered {}", cfg.url, r.status());
                    ctx.give_up(1, Reason::Rejected, &why);
                    break;
                }
                Ok(r) => format!("{} answered {}", cfg.url, r.status()),
                // reqwest's top-level text is vague ("error sending request for url"); the causes say why.
                Err(e) => format!(
                    "POST {}: {}",
                    cfg.url,
                    e.source().map_or_else(|| e.to_string(), error_chain)
                ),
            };
            if !ctx.retry_wait(&mut attempt, &err).await {
                let why = format!("{} attempts, last: {err}", attempt + 1);
                ctx.give_up(1, Reason::GaveUp, &why);
                break;
            }
        }
    }
}

/// `http_output.compress_uploads`: the body as one gzip member.
fn gzip(data: &[u8]) -> Vec<u8> {
    use std::io::Write as _;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    // Writing to a Vec cannot fail.
    enc.write_all(data).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}
