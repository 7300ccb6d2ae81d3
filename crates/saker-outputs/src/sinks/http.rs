//! HTTP(S) POST of each alert: the JSON document Falcosidekick accepts when
//! `json_output` is on, else the text line. Failed posts are retried with
//! exponential backoff, then dropped and counted.

use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

use std::error::Error as _;

use super::{error_chain, SinkCtx};
use crate::report::Reason;
use crate::OutputsError;

/// Builds the client from `http_output` (CA file, mTLS, headers, insecure).
pub fn client(cfg: &saker_config::HttpOutput) -> Result<reqwest::Client, OutputsError> {
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

pub async fn run(mut ctx: SinkCtx, cfg: saker_config::HttpOutput, client: reqwest::Client) {
    let content_type = if ctx.fmt.json {
        "application/json"
    } else {
        "text/plain"
    };
    while let Some(a) = ctx.recv().await {
        let body = ctx.fmt.line(&a);
        let mut attempt = 0u32;
        loop {
            let res = client
                .post(&cfg.url)
                .header(CONTENT_TYPE, content_type)
                .body(body.clone())
                .send()
                .await;
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
