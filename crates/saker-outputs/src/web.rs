//! `/healthz`, `/metrics` (Prometheus/OpenMetrics text) and `/versions`.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

use crate::metrics::{Metrics, METRICS_CONTENT_TYPE};
use crate::OutputsError;

/// What the web server exposes (falco.yaml `webserver.*`).
#[derive(Debug, Clone)]
pub struct WebOptions {
    pub healthz_path: String,
    /// Serve `/metrics` (`webserver.prometheus_metrics_enabled`).
    pub prometheus: bool,
}

impl WebOptions {
    pub fn from_config(c: &saker_config::Webserver) -> WebOptions {
        WebOptions {
            healthz_path: c.k8s_healthz_endpoint.clone(),
            prometheus: c.prometheus_metrics_enabled,
        }
    }
}

/// The listen address from `webserver.listen_address`/`listen_port`.
pub fn web_addr(c: &saker_config::Webserver) -> Result<SocketAddr, OutputsError> {
    let ip: std::net::IpAddr = c.listen_address.parse().map_err(|_| OutputsError::Setup {
        output: "webserver",
        message: format!("listen_address '{}' is not an IP address", c.listen_address),
    })?;
    Ok(SocketAddr::new(ip, c.listen_port))
}

#[derive(Clone)]
struct WebState {
    metrics: Arc<Metrics>,
    health: Arc<AtomicBool>,
}

async fn healthz(State(s): State<WebState>) -> impl IntoResponse {
    let (code, body) = if s.health.load(Ordering::Relaxed) {
        (StatusCode::OK, "{\"status\": \"ok\"}")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "{\"status\": \"unavailable\"}",
        )
    };
    (code, [(header::CONTENT_TYPE, "application/json")], body)
}

/// Falco's `/versions` keys that rules artifacts state requirements against: falcoctl's
/// follower reads them before it installs a new `falco-rules` version.
pub fn versions_json() -> String {
    let (major, minor, patch) = saker_rules::load::ENGINE_VERSION;
    serde_json::json!({
        "engine_version": minor.to_string(),
        "engine_version_semver": format!("{major}.{minor}.{patch}"),
        "saker_version": env!("CARGO_PKG_VERSION"),
    })
    .to_string()
}

async fn versions() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        versions_json(),
    )
}

async fn metrics(State(s): State<WebState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
        s.metrics.encode(),
    )
}

/// Serves until the listener fails. `health` false makes `/healthz` answer 503.
pub async fn serve_web(
    listener: tokio::net::TcpListener,
    metrics_: Arc<Metrics>,
    health: Arc<AtomicBool>,
    opts: WebOptions,
) -> std::io::Result<()> {
    // axum rejects routes without a leading slash; falco.yaml values may lack it.
    let hp = if opts.healthz_path.starts_with('/') {
        opts.healthz_path.clone()
    } else {
        format!("/{}", opts.healthz_path)
    };
    let mut app = Router::new().route(&hp, get(healthz));
    if hp != "/versions" {
        app = app.route("/versions", get(versions));
    }
    if opts.prometheus && hp != "/metrics" {
        app = app.route("/metrics", get(metrics));
    }
    let app = app.with_state(WebState {
        metrics: metrics_,
        health,
    });
    axum::serve(listener, app).await
}
